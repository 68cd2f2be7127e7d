"""A small PromQL evaluator for alert tests: the handful of constructs our simple alerts use, evaluated
over recorded series at one-minute steps, with an alert's `for:` applied.

Parsing is promql-parser's (the dev extra); evaluation follows Prometheus' instant-query rules for
what is here: selectors with =, !=, =~, !~ (anchored regexes); comparisons against a number (as
filters, or 0/1 with `bool`); `and`, `or`, `unless` with `on (...)` / `ignoring (...)`; `absent()`;
parentheses. Anything else raises NotImplementedError, so a rule that outgrows it fails loudly
rather than being evaluated wrongly. (promtool would do all of PromQL, but is a Go build of all of
Prometheus; this is enough for rules without range functions or aggregation.)
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import promql_parser as pp

Labels = frozenset[tuple[str, str]]
Vector = dict[Labels, float]

_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
    ">=": operator.ge,
    "<=": operator.le,
}


@dataclass(frozen=True)
class Series:
    """One recorded series: its labels (with __name__) and a value per minute (None: no sample)."""

    labels: Mapping[str, str]
    values: Sequence[float | None]


def _matches(op: str, value: str, wanted: str) -> bool:
    if op == "MatchOp.Equal":
        return value == wanted
    if op == "MatchOp.NotEqual":
        return value != wanted
    if op == "MatchOp.Re":
        return re.fullmatch(wanted, value) is not None
    if op == "MatchOp.NotRe":
        return re.fullmatch(wanted, value) is None
    raise NotImplementedError(op)


def _select(node: Any, series: Sequence[Series], step: int) -> Vector:
    out: Vector = {}
    for s in series:
        if step >= len(s.values) or s.values[step] is None:
            continue
        labels = dict(s.labels)
        if node.name and labels.get("__name__") != node.name:
            continue
        if all(_matches(str(m.op), labels.get(m.name, ""), m.value) for m in node.matchers.matchers):
            out[frozenset(labels.items())] = float(s.values[step])  # type: ignore[arg-type]
    return out


def _drop_name(labels: Labels) -> Labels:
    return frozenset((k, v) for k, v in labels if k != "__name__")


def _signature(labels: Labels, matching: Any) -> Labels:
    if matching is None:
        return _drop_name(labels)
    names = set(matching.labels)
    if str(matching.type) == "LabelModifierType.Include":
        return frozenset((k, v) for k, v in labels if k in names)
    return frozenset((k, v) for k, v in labels if k not in names and k != "__name__")


def evaluate(expr: Any, series: Sequence[Series], step: int) -> Vector | float:
    """The value of `expr` at minute `step`: an instant vector (labels -> value) or a number."""
    kind = type(expr).__name__
    if kind == "NumberLiteral":
        return float(expr.val)
    if kind == "ParenExpr":
        return evaluate(expr.expr, series, step)
    if kind == "VectorSelector":
        return _select(expr, series, step)
    if kind == "Call" and expr.func.name == "absent":
        arg = evaluate(expr.args[0], series, step)
        if not isinstance(arg, dict):
            raise NotImplementedError("absent() of a number")
        return {} if arg else {frozenset(): 1.0}
    if kind == "BinaryExpr":
        return _binary(expr, series, step)
    raise NotImplementedError(f"{kind}: {expr}")


def _binary(expr: Any, series: Sequence[Series], step: int) -> Vector | float:
    op = str(expr.op)
    lhs, rhs = evaluate(expr.lhs, series, step), evaluate(expr.rhs, series, step)
    modifier = expr.modifier
    if op in _COMPARISONS:
        as_bool = modifier is not None and modifier.return_bool
        compare = _COMPARISONS[op]
        if isinstance(lhs, dict) and not isinstance(rhs, dict):
            if as_bool:
                return {_drop_name(k): float(compare(v, rhs)) for k, v in lhs.items()}
            return {k: v for k, v in lhs.items() if compare(v, rhs)}
        raise NotImplementedError(f"comparison {op} of these operands: {expr}")
    if op in {"and", "or", "unless"}:
        if not isinstance(lhs, dict) or not isinstance(rhs, dict):
            raise NotImplementedError(f"{op} needs two vectors")
        matching = modifier.matching if modifier is not None else None
        right = {_signature(k, matching) for k in rhs}
        if op == "and":
            return {k: v for k, v in lhs.items() if _signature(k, matching) in right}
        if op == "unless":
            return {k: v for k, v in lhs.items() if _signature(k, matching) not in right}
        left = {_signature(k, matching) for k in lhs}
        return {**lhs, **{k: v for k, v in rhs.items() if _signature(k, matching) not in left}}
    raise NotImplementedError(f"operator {op}")


def firing(rule: Mapping[str, Any], series: Sequence[Series], minutes: int) -> list[set[Labels]]:
    """Per minute, the label sets the alert fires for: its expression returned them at every step of
    the last `for:` (whole minutes), as Prometheus' rule manager does at one-minute evaluations."""
    hold = _minutes(str(rule.get("for", "0m")))
    expr = pp.parse(rule["expr"])
    active: dict[Labels, int] = {}
    out: list[set[Labels]] = []
    for step in range(minutes):
        result = evaluate(expr, series, step)
        if not isinstance(result, dict):
            raise NotImplementedError("an alert expression must give a vector")
        now = {_drop_name(k) for k in result}
        active = {k: active.get(k, step) for k in now}
        out.append({k for k, since in active.items() if step - since >= hold})
    return out


def _minutes(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([mh])", duration)
    if match is None:
        raise NotImplementedError(f"for: {duration}")
    return int(match[1]) * (60 if match[2] == "h" else 1)
