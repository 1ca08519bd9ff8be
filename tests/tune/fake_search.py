"""A stand-in tune stage for engine tests without Ray: its "search" picks the values in the trial
config's `pick` and writes them to best.json like `vtp.stages.tune:run` does."""

import json
from pathlib import Path


def run(ctx):
    pick = dict(ctx.config["trial"]["pick"])
    (Path(ctx.run_dir) / "best.json").write_text(json.dumps({"config": pick, "value": 0.0}))
    return {"best": pick}
