"""A job target for tests/cluster/test_local_warm.py: reports the process it ran in."""

import json
import os
import sys

PRELOAD = ("tests.cluster.warm_preloaded",)


def run(ctx):
    import tests.cluster.warm_preloaded as pre

    print(f"hello from {ctx.key}")  # to the run's worker.log
    if ctx.config.get("fail"):
        raise RuntimeError("asked to fail")
    info = {"pid": os.getpid(), "ppid": os.getppid(), "sid": os.getsid(0), "imported_by": pre.IMPORTED_BY,
            "omp": os.environ.get("OMP_NUM_THREADS"), "stdin_is_null": os.path.samestat(os.fstat(0), os.stat(os.devnull)),
            "argv": sys.argv[1:]}
    (ctx.run_dir / "proc.json").write_text(json.dumps(info))
    return info
