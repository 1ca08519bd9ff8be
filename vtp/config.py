"""Typed, frozen configs loaded from plain data (YAML/JSON), with errors that say where.

Every config in the project is a frozen dataclass. `from_dict` builds one from a mapping,
rejecting unknown keys and wrong types with the file and the dotted key path in the message
(submitit's unknown-parameter error lists every valid name; so does ours). No code is ever
executed: YAML goes through a `yaml.SafeLoader` only.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value is missing, unknown, or of the wrong type or range.

    `where` is the file (or another source such as "command line"), `key` the dotted path.
    """

    def __init__(self, where: str | Path | None, key: str, message: str):
        self.where = str(where) if where is not None else "<config>"
        self.key = key or "<root>"
        super().__init__(f"{self.where}: {self.key}: {message}")


class _Loader(yaml.SafeLoader):
    """SafeLoader (no tags that construct objects) that reads 1e8 as a float."""


# YAML 1.1 reads 1e8 and 1.0e9 as strings (its floats need a dot and a signed exponent); sweeps
# are full of such numbers, so read every decimal exponent form as a float.
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _duplicate_key(node: yaml.Node | None, path: str = "") -> tuple[str, int, int] | None:
    """The first key written twice in one mapping (YAML itself keeps the last silently)."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden by explicit keys
                continue
            name = str(key_node.value)
            here = f"{path}.{name}" if path else name
            if name in seen:
                return here, key_node.start_mark.line + 1, seen[name]
            seen[name] = key_node.start_mark.line + 1
            found = _duplicate_key(value_node, here)
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _duplicate_key(item, f"{path}[{i}]")
            if found:
                return found
    return None


def parse_yaml(text: str) -> Any:
    """One YAML document, read safely (a command-line value, say); may raise yaml.YAMLError."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 -- _Loader is a SafeLoader subclass


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file safely, rejecting duplicate keys; every error names the file (and key)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(path, "", f"cannot read file ({e.strerror})") from None
    loader = _Loader(text)
    try:  # what yaml.load does, with the duplicate check between composing and constructing
        node = loader.get_single_node()
        duplicate = _duplicate_key(node)
        if duplicate:
            key, line, first = duplicate
            raise ConfigError(path, key, f"duplicate key (line {line}; first at line {first})")
        return loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as e:
        raise ConfigError(path, "", f"invalid YAML: {e}") from None
    finally:
        loader.dispose()


def _join(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


@functools.cache
def _shape(tp: Any) -> tuple[Any, tuple[Any, ...], bool]:
    # (origin, args, is a dataclass) of an annotation, once per annotation: the planner converts
    # every field of ~10k configs, and typing's introspection was half of plan's time.
    return typing.get_origin(tp), typing.get_args(tp), dataclasses.is_dataclass(tp)


def _convert(tp: Any, value: Any, *, where: Any, key: str) -> Any:
    """Check/convert `value` against the annotation `tp`."""
    origin, args, is_dataclass = _shape(tp)
    if tp is Any:
        return value
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, where=where, key=key)
            except ConfigError as e:
                errors.append(e)
        if len(errors) == 1:  # Optional[X]: the inner error names the exact key, keep it
            raise errors[0]
        expected = " or ".join(_type_name(a) for a in args)
        raise ConfigError(where, key, f"expected {expected}, got {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(where, key, f"expected one of {list(args)}, got {value!r}")
        return value
    if is_dataclass:
        return from_dict(tp, value, where=where, key=key)
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigError(where, key, f"expected a list, got {value!r}")
        item_tp = args[0] if args else Any
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            item_tp = args[0]
        elif origin is tuple and args:
            if len(args) != len(value):
                raise ConfigError(where, key, f"expected {len(args)} items, got {len(value)}")
            return tuple(_convert(a, v, where=where, key=_join(key, i)) for i, (a, v) in enumerate(zip(args, value)))
        return tuple(_convert(item_tp, v, where=where, key=_join(key, i)) for i, v in enumerate(value))
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConfigError(where, key, f"expected a mapping, got {value!r}")
        k_tp, v_tp = args if args else (Any, Any)
        return {
            _convert(k_tp, k, where=where, key=key): _convert(v_tp, v, where=where, key=_join(key, k))
            for k, v in value.items()
        }
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(where, key, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        # YAML reads 1e8 as a string and 1.0e8 as a float: accept whole numbers written either way.
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ConfigError(where, key, f"expected an integer, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise ConfigError(where, key, f"expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise ConfigError(where, key, f"expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(where, key, f"expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(where, key, f"expected a string, got {value!r}")
        return value
    if isinstance(tp, type):
        if not isinstance(value, tp):
            raise ConfigError(where, key, f"expected {_type_name(tp)}, got {value!r}")
        return value
    return value


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    # resolving string annotations costs ~1 ms a class; the planner builds thousands of configs
    return typing.get_type_hints(cls)


@functools.cache
def _init_fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.init}


def from_dict(cls: type[T], data: Any, *, where: str | Path | None = None, key: str = "") -> T:
    """Build the frozen dataclass `cls` from `data`, checking keys and types.

    Unknown keys are rejected with the list of valid ones; missing required keys are named.
    A dataclass may define `validate(self) -> None` raising ValueError for range checks; the
    message is re-raised as a ConfigError with the location.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(where, key, f"expected a mapping for {cls.__name__}, got {data!r}")
    hints = _type_hints(cls)
    fields = _init_fields(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(
            where, _join(key, unknown[0]), f"unknown key; valid keys are: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], where=where, key=_join(key, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(where, _join(key, name), f"required key missing for {cls.__name__}")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError:
            raise
        except ValueError as e:
            raise ConfigError(where, key, str(e)) from None
    return obj


def to_dict(obj: Any) -> Any:
    """The inverse of `from_dict`: plain data (lists, dicts) for JSON/YAML/MLflow params."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
