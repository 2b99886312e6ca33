"""Series arithmetic done in the server, per step: vector aggregations, binary operators with
PromQL's vector matching, and ``label_replace``.

Why separate from :mod:`.execute`: these combine already evaluated series and never touch the
store; their semantics are PromQL's as Loki implements them (``MergeBinOp``: a division or a
modulo by zero is NaN; a comparison filters, or gives 1/0 with ``bool``, keeping the value of the
vector side; ``and``/``or``/``unless`` select series by their matching labels).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

from logharbor.server.features.query.regex_re2 import compile_re2

from .nodes import COMPARISONS, SET_OPS, Binary, LabelReplace, LogQLError, Matching, VectorAgg, arith

__all__ = ["Labels", "Series", "aggregate", "binary_series", "label_replace", "scalar_binary"]

Labels = tuple[tuple[str, str], ...]
Series = dict[Labels, dict[int, float]]


def _key(labels: Labels, expr: VectorAgg) -> Labels:
    if expr.by is not None:
        return tuple((k, v) for k, v in labels if k in expr.by)
    if expr.without is not None:
        return tuple((k, v) for k, v in labels if k not in expr.without)
    return ()


def _stdvar(values: list[float]) -> float:
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)


_REDUCE: dict[str, Callable[[list[float]], float]] = {
    "sum": sum, "min": min, "max": max, "count": lambda v: float(len(v)), "avg": lambda v: sum(v) / len(v),
    "stdvar": _stdvar, "stddev": lambda v: math.sqrt(_stdvar(v)),
}


def aggregate(expr: VectorAgg, below: Series) -> Series:
    """A vector aggregation over already evaluated series (per evaluation time)."""
    if expr.op in ("sort", "sort_desc"):
        return below  # the order is the answer's (routes), a matrix is sorted by labels anyway
    if expr.op in ("topk", "bottomk", "approx_topk"):
        assert expr.param is not None
        chosen: Series = {}
        stamps = sorted({t for values in below.values() for t in values})
        for t in stamps:
            groups: dict[Labels, list[tuple[float, Labels]]] = {}
            for labels, values in below.items():
                if t in values:
                    groups.setdefault(_key(labels, expr), []).append((values[t], labels))
            for members in groups.values():
                members.sort(key=lambda m: m[0], reverse=expr.op != "bottomk")
                for value, labels in members[:expr.param]:
                    chosen.setdefault(labels, {})[t] = value
        return chosen
    collected: dict[Labels, dict[int, list[float]]] = {}
    for labels, values in below.items():
        target = collected.setdefault(_key(labels, expr), {})
        for t, value in values.items():
            target.setdefault(t, []).append(value)
    reduce = _REDUCE[expr.op]
    return {labels: {t: reduce(vs) for t, vs in per_t.items()} for labels, per_t in collected.items()}


def scalar_binary(op: str, series: Series, number: float, *, number_left: bool, is_bool: bool) -> Series:
    """``vector op number`` (or ``number op vector``): comparisons filter or give 1/0."""
    out: Series = {}
    for labels, values in series.items():
        kept: dict[int, float] = {}
        for t, v in values.items():
            a, b = (number, v) if number_left else (v, number)
            result = arith(op, a, b)
            if op in COMPARISONS and not is_bool:
                if result:
                    kept[t] = v
            else:
                kept[t] = result
        if kept:
            out[labels] = kept
    return out


def _signature(labels: Labels, m: Matching) -> Labels:
    if m.on is not None:
        return tuple((k, v) for k, v in labels if k in m.on)
    return tuple((k, v) for k, v in labels if k not in m.ignoring)


def _result_labels(left: Labels, right: Labels, m: Matching) -> Labels:
    """PromQL's resultMetric: one-to-one keeps the matching labels only (``on``) or drops the
    ignored ones; group_left/right keeps the many side and copies ``include`` from the one side."""
    base = dict(left if m.card != "one-to-many" else right)
    other = dict(right if m.card != "one-to-many" else left)
    if m.card == "one-to-one":
        if m.on is not None:
            base = {k: v for k, v in base.items() if k in m.on}
        else:
            base = {k: v for k, v in base.items() if k not in m.ignoring}
    for name in m.include:
        if name in other:
            base[name] = other[name]
        else:
            base.pop(name, None)
    return tuple(sorted(base.items()))


def binary_series(expr: Binary, left: Series, right: Series) -> Series:
    """Two vectors combined per time, series paired by their matching labels."""
    m = expr.matching
    times = sorted({t for vs in left.values() for t in vs} | {t for vs in right.values() for t in vs})
    out: Series = {}
    for t in times:
        lhs = {labels: vs[t] for labels, vs in left.items() if t in vs}
        rhs = {labels: vs[t] for labels, vs in right.items() if t in vs}
        if expr.op in SET_OPS:
            _set_op(expr.op, m, lhs, rhs, t, out)
            continue
        one, many = (rhs, lhs) if m.card != "one-to-many" else (lhs, rhs)
        by_sig: dict[Labels, tuple[Labels, float]] = {}
        for labels, v in one.items():
            sig = _signature(labels, m)
            if sig in by_sig:
                side = "right" if m.card != "one-to-many" else "left"
                raise LogQLError(f"found duplicate series for the match group {dict(sig)} on the {side} "
                                 "hand-side of the operation; many-to-many matching not allowed: matching "
                                 "labels must be unique on one side (use on/ignoring, or group_left/right)")
            by_sig[sig] = (labels, v)
        seen: set[Labels] = set()
        for labels, v in many.items():
            match = by_sig.get(_signature(labels, m))
            if match is None:
                continue
            other_labels, other_v = match
            a, b = (v, other_v) if m.card != "one-to-many" else (other_v, v)
            la, lb = (labels, other_labels) if m.card != "one-to-many" else (other_labels, labels)
            result = arith(expr.op, a, b)
            if expr.op in COMPARISONS and not expr.bool:
                if not result:
                    continue
                result = v if m.card != "one-to-one" else a
            out_labels = _result_labels(la, lb, m)
            if m.card == "one-to-one" and out_labels in seen:
                raise LogQLError("multiple matches for labels: many-to-one matching must be explicit "
                                 "(group_left/group_right)")
            seen.add(out_labels)
            out.setdefault(out_labels, {})[t] = result
    return out


def _set_op(op: str, m: Matching, lhs: dict[Labels, float], rhs: dict[Labels, float], t: int,
            out: Series) -> None:
    right_sigs = {_signature(labels, m) for labels in rhs}
    if op == "and":
        chosen = {k: v for k, v in lhs.items() if _signature(k, m) in right_sigs}
    elif op == "unless":
        chosen = {k: v for k, v in lhs.items() if _signature(k, m) not in right_sigs}
    else:
        left_sigs = {_signature(labels, m) for labels in lhs}
        chosen = dict(lhs)
        chosen.update({k: v for k, v in rhs.items() if _signature(k, m) not in left_sigs})
    for labels, v in chosen.items():
        out.setdefault(labels, {})[t] = v


_EXPAND = re.compile(r"\$(?:\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))")


def _expand(template: str, match: object) -> str:
    """Go's ``Regexp.Expand``: ``$1``, ``${1}``, ``$name``, ``$$``; an unknown group is empty."""
    groups = match.groupdict()  # type: ignore[attr-defined]

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(2)
        if name.isdigit():
            index = int(name)
            try:
                return match.group(index) or ""  # type: ignore[attr-defined]
            except IndexError:
                return ""
        return groups.get(name) or ""

    return _EXPAND.sub(one, template)


def label_replace(expr: LabelReplace, below: Series) -> Series:
    """PromQL's label_replace: where ``src`` matches the (anchored) regex, ``dst`` becomes the
    expanded replacement (an empty result removes ``dst``)."""
    regex = compile_re2(f"^(?:{expr.regex})$", dot_nl=False)
    out: Series = {}
    for labels, values in below.items():
        current = dict(labels)
        m = regex.search(current.get(expr.src, ""))
        if m is not None:
            value = _expand(expr.replacement, m)
            if value:
                current[expr.dst] = value
            else:
                current.pop(expr.dst, None)
        key = tuple(sorted(current.items()))
        out.setdefault(key, {}).update(values)
    return out
