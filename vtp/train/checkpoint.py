"""Tokenizer checkpoints: `<run_dir>/checkpoints/<k>.pt` + `<k>.json`.

The newest `.pt` file holds everything needed for an exact resume (model, EMA teacher, optimizer,
DINO/iBOT centers, step, RNG state) and the `spec` that rebuilds the module; once a newer checkpoint
is complete, an older one is trimmed to what downstream stages load (`spec`, `model`, `config`, the
step), as DINOv2 keeps full state for the last checkpoint only: the optimizer's moments and the
teacher are ~3/4 of the bytes, and a study keeps 9 checkpoints per tokenizer. `load_tokenizer`
needs only `spec` and `model`. The `.json` beside it is what downstream stages and the sweep read.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch

from vtp.models.tokenizer import VisualTokenizer, spec_from_dict


class CheckpointError(RuntimeError):
    """A checkpoint file is missing or unreadable; the message names the path."""


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def save_checkpoint(run_dir: str | Path, k: int, state: dict[str, Any], meta: dict[str, Any]) -> Path:
    """Write `<k>.pt` then `<k>.json` atomically (the json's presence marks a complete checkpoint)."""
    folder = checkpoint_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    pt, js = folder / f"{k}.pt", folder / f"{k}.json"
    torch.save(state, pt.with_suffix(".pt.tmp"))
    os.replace(pt.with_suffix(".pt.tmp"), pt)
    js.with_suffix(".json.tmp").write_text(json.dumps({"k": k, **meta}, indent=1))
    os.replace(js.with_suffix(".json.tmp"), js)
    return pt


WEIGHTS_ONLY = ("spec", "model", "config", "step")


def trim_older(run_dir: str | Path, k: int) -> None:
    """Trim every checkpoint older than `k` that still holds its resume state to WEIGHTS_ONLY.

    Its json then says `"weights_only": true`, so each file is read and rewritten once, not at every
    later checkpoint. Killed between the two writes, the next call rewrites the same file again.
    """
    folder = checkpoint_dir(run_dir)
    for js in folder.glob("*.json"):
        meta = json.loads(js.read_text()) if js.stem.isdigit() and int(js.stem) < k else {"weights_only": True}
        if meta.get("weights_only"):
            continue
        pt = folder / f"{js.stem}.pt"
        state = load_state(pt)
        torch.save({key: state[key] for key in WEIGHTS_ONLY if key in state}, pt.with_suffix(".pt.tmp"))
        os.replace(pt.with_suffix(".pt.tmp"), pt)
        js.with_suffix(".json.tmp").write_text(json.dumps({**meta, "weights_only": True}, indent=1))
        os.replace(js.with_suffix(".json.tmp"), js)


def latest_checkpoint(run_dir: str | Path) -> int | None:
    """The highest k with both files present, or None."""
    folder = checkpoint_dir(run_dir)
    ks = [int(p.stem) for p in folder.glob("*.json") if p.stem.isdigit() and (folder / f"{p.stem}.pt").exists()]
    return max(ks) if ks else None


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # a truncated or foreign file: say which
        raise CheckpointError(f"{path}: cannot read checkpoint ({e})") from e


def load_resume_state(path: str | Path, device: str | torch.device) -> dict[str, Any]:
    """A full checkpoint for resuming on `device`: read onto the CPU, the DINO/iBOT centres moved to
    `device`; model, teacher and optimizer states stay on the CPU (`load_state_dict` copies them onto
    the parameters' device) and so do the RNG states, which `torch.set_rng_state` and
    `torch.cuda.set_rng_state` accept only as CPU ByteTensors. Loading with map_location=<GPU>
    put them on the GPU and every requeued GPU job crashed at resume."""
    state = load_state(path, map_location="cpu")
    if state.get("centers") is not None:
        state["centers"] = {k: v.to(device) for k, v in state["centers"].items()}
    return state


RESUME = "resume"  # <run_dir>/resume.pt + resume.json: the rolling resume state, newest only


def save_resume_state(run_dir: str | Path, state: dict[str, Any], step: int) -> Path:
    """The rolling resume state written every few minutes between checkpoints (replaced, never
    accumulated: probes read only the numbered checkpoints)."""
    folder = Path(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    pt, js = folder / f"{RESUME}.pt", folder / f"{RESUME}.json"
    js.unlink(missing_ok=True)  # a kill between the two writes leaves no json: the pt is not trusted
    torch.save(state, pt.with_suffix(".pt.tmp"))
    os.replace(pt.with_suffix(".pt.tmp"), pt)
    js.with_suffix(".json.tmp").write_text(json.dumps({"step": step}))
    os.replace(js.with_suffix(".json.tmp"), js)
    return pt


def drop_resume_state(run_dir: str | Path) -> None:
    for suffix in (".json", ".pt"):
        (Path(run_dir) / f"{RESUME}{suffix}").unlink(missing_ok=True)


def resume_source(run_dir: str | Path) -> Path | None:
    """The newest complete full state: the rolling resume state if it is ahead of the newest
    checkpoint, else that checkpoint, else None."""
    k = latest_checkpoint(run_dir)
    best, best_step = None, -1
    if k is not None:
        meta = json.loads((checkpoint_dir(run_dir) / f"{k}.json").read_text())
        best, best_step = checkpoint_dir(run_dir) / f"{k}.pt", int(meta["step"])
    js = Path(run_dir) / f"{RESUME}.json"
    if js.is_file() and js.with_suffix(".pt").is_file():
        step = int(json.loads(js.read_text())["step"])
        if step > best_step:
            best = js.with_suffix(".pt")
    return best


def load_tokenizer(path: str | Path, map_location: str | torch.device = "cpu") -> VisualTokenizer:
    """The student tokenizer of a checkpoint `.pt` file, in eval mode."""
    state = load_state(path, map_location)
    model = VisualTokenizer(spec_from_dict(state["spec"]))
    model.load_state_dict(state["model"])
    return model.to(map_location).eval()


def spec_dict(model: VisualTokenizer) -> dict[str, Any]:
    return dataclasses.asdict(model.spec)
