"""Pure parts of the SLURM executor: sacct parsing, array-id expansion, chunking, MaxArraySize."""

import subprocess

from cluster.executors.slurm import chunks, expand_array_ids, max_array_size, parse_sacct

SACCT = """\
101|COMPLETED|12|billing=1,cpu=1,mem=1G,node=1
102_[2-4%2]|PENDING|0|
102_0|RUNNING|5|billing=8,cpu=8,gres/gpu=4,mem=64G,node=1
102_1|CANCELLED by 0|3|cpu=1
103|OUT_OF_MEMORY|7|cpu=1
104|TIMEOUT|600|cpu=1
105|NODE_FAIL|1|cpu=1
106|PREEMPTED|1|cpu=1
107|FAILED|2|cpu=1
108|SOMETHING_NEW|2|cpu=1
109|REQUEUED|3|cpu=1
109|PREEMPTED|4|cpu=1
109|COMPLETED|5|cpu=1
"""


def test_parse_sacct():
    t = parse_sacct(SACCT)
    assert t["101"].status == "completed" and t["101"].elapsed_s == 12
    assert [t[f"102_{i}"].status for i in (2, 3, 4)] == ["pending"] * 3
    assert t["102_0"].status == "running" and t["102_0"].gpus == 4
    assert (t["102_1"].status, t["102_1"].failure) == ("failed", "cancelled")
    assert [t[j].failure for j in ("103", "104", "105", "106", "107")] == [
        "oom", "timeout", "node_fail", "preempted", "error"]
    assert t["108"].status == "unknown"
    assert (t["109"].status, t["109"].requeues, t["109"].elapsed_s) == ("completed", 2, 12)


def test_expand_array_ids():
    assert expand_array_ids("7_[0-2,5%3]") == ["7_0", "7_1", "7_2", "7_5"]
    assert expand_array_ids("7_3") == ["7_3"] and expand_array_ids("8") == ["8"]


def test_chunks_respect_size():
    assert [len(c) for c in chunks(list(range(10)), 4)] == [4, 4, 2]


def test_max_array_size_reads_scontrol():
    def fake(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 0, stdout="MaxArraySize            = 5\nMaxJobCount = 10000\n")
    assert max_array_size(fake) == 5

    def missing(cmd, **kw):
        raise FileNotFoundError("scontrol")
    assert max_array_size(missing) == 1001
