"""The tracking layer under faults, on real MLflow (SQLite, and a real server where the fault is
the server's): a torn or corrupt buffer line, a full disk during an append, a metric name the
server refuses for good, a create_run whose reply is lost."""

import http.server
import os
import socket
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.tracking.helpers import records, steps_logged
from vtp.tracking import open_run, prepare_sweep, sync
from vtp.tracking.buffer import buffer_dir
from vtp.tracking.store import read_tracking


def test_a_torn_line_and_a_corrupt_line_are_skipped_and_counted(tmp_path):
    sweep = tmp_path / "sweep"
    prepare_sweep(sweep, name="torn", uri=None, runs=records(1))
    t = open_run(sweep, "run000", flush_every=10**9)
    t.log_metrics({"loss": 0.0}, step=0)
    path = buffer_dir(sweep, "run000") / "buffer.jsonl"
    with open(path, "ab") as f:
        f.write(b'{"k":"m","s":99,"t":1,"v":{"loss"')  # the worker was killed mid-write...
    t2 = open_run(sweep, "run000", flush_every=10**9)  # ...and its requeued job carries on
    t2.log_metrics({"loss": 1.0}, step=1)
    with open(path, "ab") as f:
        f.write(b"\n\x00\x00garbage\n")  # a block of a damaged disk
    t2.log_metrics({"loss": 2.0}, step=2)
    assert t2.close("FINISHED")
    assert t2.buffer.pending() == 0 and t2.buffer.corrupt() == 2
    assert steps_logged(read_tracking(sweep).uri, read_tracking(sweep).runs["run000"]) == [0, 1, 2]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs (root only): real ENOSPC."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)]).returncode:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(disk: Path) -> Path:
    path = disk / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return path


def test_a_full_disk_during_appends_loses_nothing(tmp_path, tiny_disk):
    sweep = tmp_path / "sweep"
    prepare_sweep(sweep, name="full", uri=None, runs=records(1))
    (sweep / "tracking").mkdir(exist_ok=True)
    (sweep / "tracking" / "run000").symlink_to(tiny_disk, target_is_directory=True)  # the buffer lives there
    t = open_run(sweep, "run000", flush_every=10**9, flush_interval_s=10**9)
    t.log_metrics({"loss": 0.0}, step=0)
    filler = fill(tiny_disk)  # another process fills the disk
    for step in range(1, 300):  # past the slack of the buffer file's last page: ENOSPC, must not raise
        t.log_metrics({"loss": float(step)}, step=step)
    assert t._held, "the disk never filled up"
    filler.unlink()  # room again
    for step in range(300, 302):
        t.log_metrics({"loss": float(step)}, step=step)
    assert not t._held
    assert t.close("FINISHED")
    assert steps_logged(read_tracking(sweep).uri, read_tracking(sweep).runs["run000"]) == list(range(302))


def test_a_full_disk_until_the_end_sends_the_held_points_directly(tmp_path, tiny_disk):
    sweep = tmp_path / "sweep"
    prepare_sweep(sweep, name="fullend", uri=None, runs=records(1))
    (sweep / "tracking").mkdir(exist_ok=True)
    (sweep / "tracking" / "run000").symlink_to(tiny_disk, target_is_directory=True)
    t = open_run(sweep, "run000", flush_every=10**9, flush_interval_s=10**9)
    fill(tiny_disk)
    for step in range(300):
        t.log_metrics({"loss": float(step)}, step=step)
    assert t._held, "the disk never filled up"
    t.close("FINISHED")  # the file's points wait for `sync`; the held ones are sent now
    (tiny_disk / "filler").unlink()
    sync(sweep)
    tracking = read_tracking(sweep)
    assert steps_logged(tracking.uri, tracking.runs["run000"]) == list(range(300))


@pytest.mark.mlflow_server
def test_a_metric_the_server_refuses_is_set_aside_and_the_rest_arrives(tmp_path, mlflow_server):
    sweep = tmp_path / "sweep"
    prepare_sweep(sweep, name="refused", uri=mlflow_server.uri, runs=records(1))
    t = open_run(sweep, "run000", flush_every=10**9)
    for step in range(3):
        t.log_metrics({"loss": float(step), "bad@name": 1.0}, step=step)
    assert t.close("FINISHED")  # not stuck on the refused name
    assert t.buffer.pending() == 0 and t.buffer.rejected() == 3
    tracking = read_tracking(sweep)
    assert steps_logged(tracking.uri, tracking.runs["run000"]) == [0, 1, 2]
    assert sync(sweep) == {}


class _DropFirstCreate(http.server.BaseHTTPRequestHandler):
    """Forwards to the real server; the reply to the first runs/create of a keyed run is dropped
    (the run is created, the client never hears of it), as when the network fails at that moment."""

    upstream = ""
    dropped = 0
    lock = threading.Lock()

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        req = urllib.request.Request(self.upstream + self.path, data=body or None, method=self.command,
                                     headers={k: v for k, v in self.headers.items() if k.lower() != "host"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                status, headers, data = r.status, r.headers.items(), r.read()
        except urllib.error.HTTPError as e:
            status, headers, data = e.code, e.headers.items(), e.read()
        with self.lock:
            # the first create of a run with a run key (the sweep's parent run comes before it)
            drop = self.path.endswith("/runs/create") and b"vtp.run_key" in body and type(self).dropped == 0
            if drop:
                type(self).dropped += 1
        if drop:
            self.connection.shutdown(socket.SHUT_RDWR)  # created upstream; the reply is lost
            return
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _forward

    def log_message(self, *args) -> None:
        pass


@pytest.mark.mlflow_server
def test_a_lost_create_run_reply_makes_no_second_run(tmp_path, mlflow_server):
    from mlflow.tracking import MlflowClient

    handler = type("Handler", (_DropFirstCreate,), {"upstream": mlflow_server.uri, "dropped": 0})
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        uri = f"http://127.0.0.1:{proxy.server_address[1]}"
        ids = prepare_sweep(Path(tmp_path / "sweep"), name="lost-create", uri=uri, runs=records(3))
    finally:
        proxy.shutdown()
    assert handler.dropped == 1
    c = MlflowClient(mlflow_server.uri)
    exp = c.get_experiment_by_name("lost-create").experiment_id
    runs = c.search_runs([exp])
    keys = [r.data.tags["vtp.run_key"] for r in runs if "vtp.run_key" in r.data.tags]
    assert sorted(keys) == ["run000", "run001", "run002"]  # one MLflow run per key
    assert len(runs) == 4  # and one parent run
    assert sorted(ids) == sorted(keys)


SERVER_SPEC = """
name: outage
axes: {seed: [0, 1]}
executor: {profile: local, options: {max_workers: 2, poll_s: 0.1}}
tracking: {uri: URI, experiment: EXPERIMENT}
stages:
  - name: main
    target: vtp.stages.smoke:run
    config: {steps: 20, seed: "${axes.seed}", sleep_s: 0.25, save_every: 5}
"""


@pytest.mark.mlflow_server
def test_server_down_across_the_runs_end_then_export(tmp_path, mlflow_server):
    """Runs end while the server is away: their points wait in the offline buffers; `export`
    refuses while they are unsent (with their count), and once the server is back it sends them
    itself: nothing missing, nothing doubled."""
    import pyarrow.parquet as pq

    from vtp.sweep.launcher import launch, wait
    from vtp.sweep.spec import load_sweep
    from vtp.tracking.export import UnsentPoints, curves_path, export_snapshot

    spec = tmp_path / "outage.yaml"
    spec.write_text(SERVER_SPEC.replace("URI", mlflow_server.uri).replace("EXPERIMENT", f"outage-{tmp_path.name}"))
    sweep = load_sweep(spec, [f"root={tmp_path / 'out'}"])
    launch(sweep)
    keys = list(read_tracking(sweep.folder).runs)
    states = [sweep.folder / "runs" / k / "smoke_state.json" for k in keys]
    deadline = __import__("time").time() + 60
    while not all(p.exists() for p in states):  # both run, and have logged
        assert __import__("time").time() < deadline
        __import__("time").sleep(0.1)
    mlflow_server.kill()
    try:
        st = wait(sweep.folder, timeout_s=120, poll_s=0.2)  # its sync finds the server away
        assert st.counts() == {"main": {"done": 2}}
        with pytest.raises(UnsentPoints, match=r"\d+ tracked items are still in the runs' offline buffers"):
            export_snapshot(sweep.folder, tmp_path / "snap.parquet")
    finally:
        mlflow_server.restart()
    out = export_snapshot(sweep.folder, tmp_path / "snap.parquet")  # syncs the buffers itself
    runs = pq.read_table(out).to_pylist()
    assert sorted(r["run_key"] for r in runs) == sorted(keys)
    assert {r["status"] for r in runs} == {"FINISHED"}
    curves = pq.read_table(curves_path(out)).to_pylist()
    for key in keys:
        assert [c["step"] for c in curves if c["run_key"] == key and c["metric"] == "x_frac"] == [5, 10, 15, 20]
