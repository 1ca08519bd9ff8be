"""Pure parts of the SLURM executor: sacct records (parsed by cluster.slurm_query) to engine
states, and chunking. The parsing itself is tested in tests/cluster/test_slurm_query.py."""

from cluster.executors.slurm import chunks, job_state
from cluster.slurm_query import parse_sacct

SACCT = """\
101|101|COMPLETED|0:0|00:00:12|billing=1,cpu=1,mem=1G,node=1|None|vtp1
102_[2-4%2]|102|PENDING|0:0|00:00:00||Priority|None assigned
102_0|103|RUNNING|0:0|00:00:05|billing=8,cpu=8,gres/gpu=4,mem=64G,node=1|None|vtp1
102_1|104|CANCELLED by 0|0:15|00:00:03|cpu=1|None|vtp1
105|105|OUT_OF_MEMORY|0:125|00:00:07|cpu=1|None|vtp1
106|106|TIMEOUT|0:0|00:10:00|cpu=1|None|vtp1
107|107|NODE_FAIL|0:0|00:00:01|cpu=1|None|vtp1
108|108|FAILED|1:0|00:00:02|cpu=1|None|vtp1
109|109|REQUEUED|0:0|00:00:03|cpu=1,gres/gpu=2|None|vtp1
109|109|COMPLETED|0:0|00:00:05|cpu=1,gres/gpu=2|None|vtp1
"""


def test_sacct_records_to_engine_states():
    t = {k: job_state(v) for k, v in parse_sacct(SACCT).items()}
    assert t["101"].status == "completed"
    assert [t[f"102_{i}"].status for i in (2, 3, 4)] == ["pending"] * 3
    assert t["102_0"].status == "running"
    assert (t["102_1"].status, t["102_1"].failure) == ("failed", "cancelled")
    assert [t[j].failure for j in ("105", "106", "107", "108")] == [
        "out_of_memory", "timeout", "node_failure", "error"]
    assert (t["109"].status, t["109"].requeues, t["109"].gpu_s) == ("completed", 1, 2 * (3 + 5))


def test_chunks_respect_size():
    assert [len(c) for c in chunks(list(range(10)), 4)] == [4, 4, 2]
