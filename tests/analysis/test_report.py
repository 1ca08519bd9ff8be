"""The report: golden Markdown (hashes and timestamps normalised) and a headless-Chromium render
that checks every embedded figure is actually shown."""

import difflib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from analysis.laws import LawSettings
from analysis.report import default_panels, write_report
from analysis.table import choose_columns, load_table

from .synth import write_snapshot

GOLDEN = Path(__file__).parent / "golden" / "report.md"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SETTINGS = LawSettings(n_boot=20, forms=("power", "loglinear"))


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    table = load_table(write_snapshot(tmp / "snapshot.parquet"))
    frame, cols = choose_columns(table)
    write_report(table, frame, cols, tmp / "out", settings=SETTINGS)
    return tmp / "out"


@pytest.fixture(scope="module")
def recon_report_dir(tmp_path_factory):
    """A snapshot whose eval rows carry the reconstruction metric (vtp.stages.eval's recon_fd)."""
    tmp = tmp_path_factory.mktemp("recon_report")
    table = load_table(write_snapshot(tmp / "snapshot.parquet", recon="recon_fd"))
    frame, cols = choose_columns(table)
    write_report(table, frame, cols, tmp / "out", settings=SETTINGS)
    return tmp / "out"


def normalise(md: str) -> str:
    md = re.sub(r"\b[0-9a-f]{64}\b", "<sha256>", md)
    md = re.sub(r"code version: .*", "code version: <version>", md)
    md = re.sub(r"libraries: .*", "libraries: <versions>", md)
    # the optimiser's final gradient norm is round-off (1e-16..1e-6, varies with BLAS threads and load)
    md = re.sub(r"grad \d[\d.e+-]*", "grad <g>", md)
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "<timestamp>", md)


def test_markdown_matches_golden(report_dir):
    got = normalise((report_dir / "report.md").read_text())
    if os.environ.get("VTP_UPDATE_GOLDEN"):
        GOLDEN.write_text(got)
    want = GOLDEN.read_text()
    diff = "\n".join(difflib.unified_diff(want.splitlines(), got.splitlines(), "golden", "got", lineterm=""))
    assert got == want, f"report.md differs from {GOLDEN} (VTP_UPDATE_GOLDEN=1 to accept):\n{diff}"


def test_report_outputs(report_dir):
    pngs = sorted(p.name for p in report_dir.glob("*.png"))
    assert pngs == ["data.png", "parameters.png", "training.png"]
    html = (report_dir / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3  # self-contained: no file references
    assert "Frechet distance (dinov2-s)" in html and "gFID" not in html
    fits = json.loads((report_dir / "fits.json").read_text())
    assert set(fits) == {"training", "parameters", "data"}


def test_reconstruction_panel_against_tokenizer_compute(recon_report_dir):
    pngs = sorted(p.name for p in recon_report_dir.glob("*.png"))
    assert pngs == ["data.png", "parameters.png", "reconstruction.png", "training.png"]
    html = (recon_report_dir / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 4
    # named for what it is: a distance over the generation metric's network, not rFID
    assert "reconstruction Frechet distance (dinov2-s)" in html and "rFID" not in html
    md = (recon_report_dir / "report.md").read_text()
    assert "## Reconstruction scaling (y = reconstruction Frechet distance (dinov2-s) (`metric.recon_fd`), " \
           "x = metric.tokenizer_flops)" in md
    fits = json.loads((recon_report_dir / "fits.json").read_text())
    assert set(fits) == {"training", "parameters", "data", "reconstruction"}
    series = fits["reconstruction"]["series"]
    # one line per tokenizer config, both families: 2 objectives x 5 (size, data) points of the grid
    assert len(series) == 10 and {s["family"] for s in series} == {"ae", "vtp"}


def test_reconstruction_panel_is_rfid_only_with_rfid(tmp_path):
    table = load_table(write_snapshot(tmp_path / "snapshot.parquet", recon="rfid"))
    frame, cols = choose_columns(table)
    panels = {p.name: p for p in default_panels(table, frame, cols)}
    assert panels["reconstruction"].columns.y == "metric.rfid" and panels["reconstruction"].columns.y_label == "rFID"
    # snapshots from before the metric was logged (docs/mini's) get no reconstruction panel
    plain = load_table(write_snapshot(tmp_path / "old.parquet"))
    assert "reconstruction" not in {p.name for p in default_panels(plain, *choose_columns(plain))}


CHECK_SCRIPT = """<script>
window.addEventListener('load', () => {
  const shown = [...document.images].map(i => i.complete && i.naturalWidth > 0 && i.getBoundingClientRect().width > 0);
  const pre = document.createElement('pre'); pre.id = 'imgcheck'; pre.textContent = JSON.stringify(shown);
  document.body.appendChild(pre);
});
</script></body>"""


def chromium_or_skip() -> str:
    """The Chromium binary; where it is missing, skip, except in CI (CI=true, or VTP_REQUIRE_CHROMIUM=1,
    which scripts/test.sh sets as root like VTP_REQUIRE_SLURM): there a missing browser fails."""
    if Path(CHROMIUM).exists():
        return CHROMIUM
    why = "needs Debian's chromium package (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true" or os.environ.get("VTP_REQUIRE_CHROMIUM") == "1":
        pytest.fail(f"chromium is required here (CI=true or VTP_REQUIRE_CHROMIUM=1) but missing: {why}", pytrace=False)
    pytest.skip(why)


@pytest.mark.parametrize("env, outcome", [({"CI": "true"}, pytest.fail.Exception),
                                          ({"VTP_REQUIRE_CHROMIUM": "1"}, pytest.fail.Exception),
                                          ({}, pytest.skip.Exception)])
def test_missing_chromium_fails_in_ci_and_skips_elsewhere(monkeypatch, env, outcome):
    monkeypatch.setattr(__import__(__name__, fromlist=["CHROMIUM"]), "CHROMIUM", "/nonexistent/chromium")
    for var in ("CI", "VTP_REQUIRE_CHROMIUM"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(outcome):
        chromium_or_skip()


@pytest.mark.parametrize("which, figures", [("report_dir", 3), ("recon_report_dir", 4)])
def test_html_renders_every_figure_in_chromium(request, which, figures, tmp_path):
    chromium = chromium_or_skip()
    report_dir = request.getfixturevalue(which)
    page = tmp_path / "check.html"
    page.write_text((report_dir / "report.html").read_text().replace("</body>", CHECK_SCRIPT))
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom",
           page.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    found = re.search(r'<pre id="imgcheck">(.*?)</pre>', proc.stdout)
    assert found, f"chromium gave no result (rc={proc.returncode}):\n{proc.stderr[-2000:]}"
    shown = json.loads(found.group(1))
    assert shown == [True] * figures, shown


def test_probe_controls_section_and_failing_configurations_left_out(tmp_path):
    """With the probe's controls in the snapshot, the report shows them per configuration, fits only
    the configurations whose probe passed, and says which were left out; the negative control is shown
    failing."""
    table = load_table(write_snapshot(tmp_path / "s.parquet", failing=(("vtp", "L", 1e6),)))
    frame, cols = choose_columns(table)
    _, summary = write_report(table, frame, cols, tmp_path / "out", settings=SETTINGS)
    md = (tmp_path / "out" / "report.md").read_text()
    assert "## Probe controls" in md
    assert "9 of 10 configurations pass" in summary[0] and "objective=vtp, params=L, data=1000000.0" in summary[0]
    assert "fails, as it should" in summary[0]
    controls = md.split("## Probe controls")[1].split("\n## ")[0]
    assert controls.count("| passes |") == 9 and "| fails |" in controls and "fails (as it should)" in controls
    fits = json.loads((tmp_path / "out" / "fits.json").read_text())
    names = [s["key"] for p in fits.values() for s in p["series"]]
    assert not any(n.get("axis.objective") == "vtp" and n.get("axis.params") == "L" for n in names)
    assert any(n.get("axis.objective") == "ae" and n.get("axis.params") == "L" for n in names)


def test_every_configuration_failing_fits_nothing_and_still_writes_the_report(tmp_path):
    everything = tuple((o, s, d) for o in ("ae", "vtp") for s, d in [("S", 1e6), ("B", 1e6), ("L", 1e6), ("B", 1e5), ("B", 1e7)])
    table = load_table(write_snapshot(tmp_path / "s.parquet", failing=everything, recon="recon_fd"))
    frame, cols = choose_columns(table)
    paths, summary = write_report(table, frame, cols, tmp_path / "out", settings=SETTINGS)
    assert "0 of 10 configurations pass" in summary[0]
    assert (tmp_path / "out" / "training.png").is_file() and (tmp_path / "out" / "report.html").is_file()
    fits = json.loads((tmp_path / "out" / "fits.json").read_text())
    assert all(p["series"] == [] for p in fits.values())
