"""The stage config reference (docs/stage-configs.md), generated from the config dataclasses.

Every key a built-in stage accepts in `stages[i].config`, with its type, default and the comment
written beside the field in the source, so the page cannot drift from what `plan` checks.
A test compares the committed page with this output.

    python -m vtp.stages.reference > docs/stage-configs.md
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import io
import sys
import tokenize
import typing
from typing import Any

from vtp.stages.configs import SCHEMAS

STAGE_NAMES = {  # target -> the stage name the shipped specs use
    "vtp.stages.tokenizer:run": "tokenizer",
    "vtp.stages.decoder:run": "decoder",
    "vtp.stages.extract:run": "extract",
    "vtp.stages.dit:run": "dit",
    "vtp.stages.eval:run": "eval",
}


def field_comments(cls: type) -> dict[str, str]:
    """field name -> the `# comment` on its line in the class body (empty when there is none)."""
    source = inspect.getsource(cls)
    comments: dict[str, str] = {}
    name_on_line: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        row = tok.start[0]
        if tok.type == tokenize.NAME and tok.start[1] == 4 and row not in name_on_line:
            name_on_line[row] = tok.string
        elif tok.type == tokenize.COMMENT and row in name_on_line:
            comments[name_on_line[row]] = tok.string.lstrip("# ").strip()
    return comments


def _type_text(tp: Any) -> str:
    text = getattr(tp, "__name__", None) if not typing.get_args(tp) else None
    return text or str(tp).replace("typing.", "").replace("NoneType", "None")


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
        if dataclasses.is_dataclass(value):
            return "(see below)"
    else:
        return "required"
    return f"`{value!r}`".replace("|", "\\|")


def _table(cls: type, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(cls)
    notes = field_comments(cls)
    rows, nested = [], []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        type_text = _type_text(tp).replace("|", "\\|")  # a union's bar would split the table cell
        note = notes.get(f.name, "").replace("|", "\\|")
        rows.append(f"| `{prefix}{f.name}` | `{type_text}` | {_default(f)} | {note} |")
        if dataclasses.is_dataclass(tp):
            nested.append((f"{prefix}{f.name}.", tp))
    for sub_prefix, sub in nested:
        rows += _table(sub, sub_prefix)
    return rows


def _schema(target: str) -> type:
    module, _, name = SCHEMAS[target].partition(":")
    return getattr(importlib.import_module(module), name)


def stage_config_reference() -> str:
    lines = [
        "# Stage config reference",
        "",
        "Generated from the config dataclasses by `python -m vtp.stages.reference > docs/stage-configs.md`",
        "(a test fails when this page and the code disagree). Every key below is what a built-in stage",
        "accepts under `stages[i].config` of a sweep spec; `vtp-sweep plan` checks each run's resolved",
        "config against it and names the spec file and key of any unknown key or bad value.",
        "",
    ]
    for target, stage in STAGE_NAMES.items():
        cls = _schema(target)
        doc = inspect.getdoc(cls) or ""
        first = doc.split("\n\n")[0].replace("\n", " ") if doc and not doc.startswith(cls.__name__ + "(") else ""
        lines += [f"## `{stage}` (`{target}`, `{SCHEMAS[target]}`)", ""]
        if first:
            lines += [first, ""]
        lines += ["| key | type | default | notes |", "|---|---|---|---|", *_table(cls), ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(stage_config_reference())
