"""`${...}` interpolation and a tiny safe arithmetic evaluator for derived values.

A spec can never execute code: expressions are parsed with `ast` and only a whitelist of nodes is
walked (numbers, strings, names bound by interpolation, + - * / // ** unary minus, min/max, and
comparisons with `a if cond else b`, so a value can follow a string axis:
`"1.0 if ${axes.objective} == 'ae' else 0.125"`, and `and` / `or` / `not` between conditions, as a
stage's `when:` needs). No eval/exec.
"""

from __future__ import annotations

import ast
import functools
import operator
import re
from collections.abc import Mapping
from typing import Any

REF = re.compile(r"\$\{([^}]*)\}")
_BINOPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
_FUNCS = {"min": min, "max": max}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}


# Bounds that keep `plan` instant whatever a spec says: `10 ** 10 ** 10` or `'x' * 10 ** 9` would
# otherwise hang the loader (or eat the memory) before any value is checked.
MAX_EXPONENT = 256
MAX_INT_BITS = 4096
MAX_TEXT = 10_000


class ExprError(ValueError):
    """An expression or reference that cannot be resolved; the caller adds file and key path."""


def lookup(ref: str, scope: Mapping[str, Mapping[str, Any]]) -> Any:
    """Resolve `section.name` (e.g. `axes.params`) in `scope`; errors list the valid names."""
    section, _, name = ref.strip().partition(".")
    if section not in scope or not name:
        raise ExprError(f"unknown reference ${{{ref}}}; expected one of: "
                        + ", ".join(f"${{{s}.NAME}}" for s in scope))
    values = scope[section]
    if name not in values:
        raise ExprError(f"unknown reference ${{{ref}}}; {section} has: {', '.join(sorted(values)) or '(none)'}")
    return values[name]


def interpolate(value: Any, scope: Mapping[str, Mapping[str, Any]]) -> Any:
    """Replace references inside plain data. A string that is exactly one `${ref}` takes the
    referenced value with its type; references inside longer strings are formatted as text."""
    if isinstance(value, str):
        whole = REF.fullmatch(value)
        if whole:
            return lookup(whole.group(1), scope)
        return REF.sub(lambda m: str(lookup(m.group(1), scope)), value)
    if isinstance(value, Mapping):
        return {k: interpolate(v, scope) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [interpolate(v, scope) for v in value]
    return value


def has_ref(value: Any) -> bool:
    """Whether plain data holds any `${...}` (values without one are used as they are)."""
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, Mapping):
        return any(has_ref(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(has_ref(v) for v in value)
    return False


@functools.lru_cache(maxsize=1024)  # a pure function of the text: parse each expression once per process
def _compile(text: str) -> tuple[ast.expr, tuple[str, ...]]:
    refs: list[str] = []

    def bind(m: re.Match) -> str:
        refs.append(m.group(1))
        return f"_ref{len(refs) - 1}"

    source = REF.sub(bind, text)
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        raise ExprError(f"not an arithmetic expression: {text!r}") from None
    return tree.body, tuple(refs)


def evaluate(text: str, scope: Mapping[str, Mapping[str, Any]]) -> Any:
    """Evaluate an arithmetic expression whose operands may be `${ref}` references."""
    body, refs = _compile(text)
    names = {f"_ref{i}": lookup(ref, scope) for i, ref in enumerate(refs)}
    return _walk(body, names, text)


def _check_size(op: ast.operator, left: Any, right: Any, text: str) -> None:
    """Refuse, before computing, a power or a repetition whose result would be huge."""
    if isinstance(op, ast.Pow) and isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT \
            and isinstance(left, (int, float)) and abs(left) not in (0, 1):
        raise ExprError(f"exponent {right!r} too large in {text!r} (at most {MAX_EXPONENT})")
    if isinstance(op, ast.Mult):
        text_side, count = (left, right) if isinstance(left, str) else (right, left)
        if isinstance(text_side, str) and isinstance(count, int) and len(text_side) * count > MAX_TEXT:
            raise ExprError(f"repeated text too long in {text!r} (at most {MAX_TEXT} characters)")


def _walk(node: ast.AST, names: Mapping[str, Any], text: str) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, str)) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        left, right = _walk(node.left, names, text), _walk(node.comparators[0], names, text)
        try:
            return _COMPARE[type(node.ops[0])](left, right)
        except TypeError as e:
            raise ExprError(f"cannot compare in {text!r}: {e}") from None
    if isinstance(node, ast.BoolOp):  # every operand is walked, so a typo in any fails at load
        values = [_walk(v, names, text) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _walk(node.operand, names, text)
    if isinstance(node, ast.IfExp):  # both branches are walked, so a typo in either fails at load
        test, body, orelse = (_walk(n, names, text) for n in (node.test, node.body, node.orelse))
        return body if test else orelse
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _walk(node.left, names, text), _walk(node.right, names, text)
        _check_size(node.op, left, right, text)
        try:
            out = _BINOPS[type(node.op)](left, right)
        except (TypeError, ZeroDivisionError, OverflowError) as e:
            raise ExprError(f"cannot compute {text!r}: {e}") from None
        if isinstance(out, int) and out.bit_length() > MAX_INT_BITS:
            raise ExprError(f"result too large in {text!r} (more than {MAX_INT_BITS} bits)")
        return out
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _walk(node.operand, names, text)
        return -v if isinstance(node.op, ast.USub) else v
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCS
            and node.args and not node.keywords):
        args = [_walk(a, names, text) for a in node.args]
        if len(args) < 2:
            raise ExprError(f"{node.func.id}() takes two or more values in {text!r}, got {len(args)}")
        try:
            return _FUNCS[node.func.id](*args)
        except TypeError as e:
            raise ExprError(f"cannot compute {text!r}: {e}") from None
    if isinstance(node, ast.Name):
        raise ExprError(f"unknown name {node.id!r} in {text!r}; refer to values as ${{axes.NAME}}, "
                        "${fixed.NAME} or ${derived.NAME}; functions: min, max")
    raise ExprError(f"not allowed in an expression: {ast.unparse(node)!r} in {text!r} "
                    "(allowed: numbers, strings, ${refs}, + - * / // **, min, max, one comparison, a if c else b, "
                    "and, or, not)")
