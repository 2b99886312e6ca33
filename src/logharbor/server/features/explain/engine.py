"""``explain``: which field values set the focus records apart from the baseline.

Given the sets of :mod:`.sets`, the passes of :mod:`.passes` count values in both; every value
is tested with the statistics of :mod:`.stats` and the answer lists them strongest first, with
counts, shares and lift, what the numbers did (p50/p95), which message templates are new or grew,
the combination of top values most of the focus shares, and what was left out and why.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from logharbor import exactjson
from logharbor.server.engine.store.base import Store, StoreError
from logharbor.server.engine.store.patterns import group_ids, pattern_info
from logharbor.server.features.query import ast
from logharbor.server.features.query.errors import QueryError
from logharbor.server.features.query.fields import resolve_field
from logharbor.server.features.query.fieldstats import display_name, referenced_fields
from logharbor.server.features.query.printer import to_text
from logharbor.server.scopes import Scope

from . import passes
from .sets import Mode, Sets, build_sets
from .stats import DEFAULT_ALPHA, Categorical, Numeric

__all__ = ["ALWAYS_LEFT_OUT", "ExplainRequest", "explain", "filter_text"]

#: fields never compared, and why
ALWAYS_LEFT_OUT = {
    "message": "free text, one value per record: its templates are compared instead (patterns)",
    "trace_id": "an id: one value per trace",
    "span_id": "an id: one value per span",
    "request_id": "an id: one value per request",
    "timestamp": "the time: the windows are what is compared",
    "observed_timestamp": "the time the server received the record",
}
#: a sampled field is left out when it has more distinct values than this in the sample …
_HIGH_CARDINALITY = 50
#: … and they are more than this share of its sampled values (mostly unique: ids, times, urls)
_UNIQUE_SHARE = 0.5
#: a number field with at most this many distinct values is compared as values (codes, flags)
_FEW_NUMBERS = 20
#: how many values the ``together`` combination may join, and how much of the previous
#: combination's focus records a value must keep to join
_TOGETHER_MAX = 4
_TOGETHER_KEEP = 0.8
#: how many of the first rising values get their records' typed numbers (p50/p95 by value)
_BY_VALUE = 5
#: the fields ``together`` may join (columns: cheap to test on every record, unlike attributes)
_COLUMNS = frozenset(display_name(c) for c in (*passes.CHEAP_COLUMNS, *passes.SAMPLED_COLUMNS)) \
    - {"pattern_id"}
STATISTIC = ("G-test (log-likelihood ratio) on each value's 2x2 table of counts (focus/baseline x "
             "has/has not), Williams-corrected, chi-squared with 1 degree of freedom; numbers: "
             "Mann-Whitney U (normal approximation)")


@dataclass(frozen=True)
class ExplainRequest:
    """What to explain: a query, its focus window (ns, [from, to)) and the baseline."""

    q: str
    focus: tuple[int, int]
    mode: Mode = "previous"
    baseline: tuple[int, int] | None = None
    alpha: float = DEFAULT_ALPHA
    limit: int = 20


def _match(field: str, value: Any) -> ast.Match:
    """``field:value`` with the value written as the answer writes it (``true``, ``-0.0``, ``1.0``)."""
    return ast.Match(field, ast.Word(exactjson.text(value)))


def filter_text(field: str, value: Any) -> str:
    """The query text that keeps records having ``field`` = ``value`` (the UI's one click)."""
    return to_text(ast.Query(_match(field, value)))


def _value_numbers(numbers: passes.Quantiles, exact: bool) -> list[dict[str, Any]]:
    """The typed numbers (``http.duration_ms`` …) of one value's records in each set: how the
    records that have it differ, not only how many there are."""
    out = []
    for column, (fn, fq, bn, bq) in numbers.items():
        if not fn and not bn:
            continue
        fq = fq if len(fq) == 2 else [None, None]
        bq = bq if len(bq) == 2 else [None, None]
        out.append({"field": display_name(column),
                    "focus": {"count": fn, "p50": _round(fq[0], 3), "p95": _round(fq[1], 3)},
                    "baseline": {"count": bn, "p50": _round(bq[0], 3), "p95": _round(bq[1], 3)},
                    "exact": exact})
    return out


def _iso(ns: int) -> str:
    seconds, rest = divmod(ns, 10**9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1000:06d}Z"


def _round(x: float | None, digits: int = 4) -> float | None:
    if x is None or math.isnan(x) or math.isinf(x):
        return None
    return round(x, digits)


def _pattern_groups(store: Store, counts: dict[str, tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """Stored pattern ids' counts merged into their groups' (docs/patterns.md)."""
    if not counts:
        return counts
    try:
        groups = group_ids(store, list(counts))
    except StoreError:
        return counts
    merged: dict[str, tuple[int, int]] = {}
    for stored, (f, b) in counts.items():
        gid = groups.get(stored, stored)
        mf, mb = merged.get(gid, (0, 0))
        merged[gid] = (mf + f, mb + b)
    return merged


#: a value as a counting key: text as itself, anything else as its JSON bytes. Python holds
#: ``True == 1 == 1.0`` and ``-0.0 == 0.0`` (equal, one hash), so a dict keyed by the values
#: counted ``true`` and ``1`` as one value and showed whichever came first
_Key = str | bytes
_Counts = tuple[dict[_Key, int], dict[_Key, int]]
_Values = tuple[list[float], list[float]]


def _key(value: Any) -> _Key:
    return value if type(value) is str else exactjson.dumps(value)


def _value(key: _Key) -> Any:
    """The value a :func:`_key` was made of (its JSON type kept)."""
    return key if isinstance(key, str) else exactjson.loads(key)


def _sampled_fields(focus: list[dict[str, Any]], baseline: list[dict[str, Any]]
                    ) -> tuple[dict[str, _Counts], dict[str, _Values], dict[str, str]]:
    """Sampled rows → (categorical {field: (focus counts, baseline counts)} by :func:`_key`,
    numeric {field: (focus values, baseline values)}, left out {field: reason})."""
    values: dict[str, _Counts] = {}
    for side, rows in ((0, focus), (1, baseline)):
        for row in rows:
            for name, value in row.items():
                key = _key(value)
                counts = values.setdefault(name, ({}, {}))[side]
                counts[key] = counts.get(key, 0) + 1
    categorical: dict[str, _Counts] = {}
    numeric: dict[str, tuple[list[float], list[float]]] = {}
    left_out: dict[str, str] = {}
    for name, (f, b) in values.items():
        distinct = set(f) | set(b)
        present = sum(f.values()) + sum(b.values())
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in map(_value, distinct))
        if numbers and len(distinct) > _FEW_NUMBERS:
            numeric[name] = (sorted(float(_value(k)) for k, n in f.items() for _ in range(n)),
                             sorted(float(_value(k)) for k, n in b.items() for _ in range(n)))
        elif len(distinct) > _HIGH_CARDINALITY and len(distinct) > _UNIQUE_SHARE * present:
            left_out[name] = (f"high cardinality: {len(distinct)} distinct values in {present} sampled "
                              "records (ids, times or urls: compare a bucket of it with a query instead)")
        else:
            categorical[name] = (f, b)
    return categorical, numeric, left_out


def _value_json(item: Categorical, totals: tuple[int, int], scale: bool) -> dict[str, Any]:
    focus_count, base_count = item.focus_count, item.baseline_count
    if scale:  # a sampled field: counts estimated from its share of the sample
        focus_count = round(item.focus_share * totals[0])
        base_count = round(item.baseline_share * totals[1])
    return {"field": item.field, "value": item.value, "filter": filter_text(item.field, item.value),
            "direction": "up" if item.focus_share > item.baseline_share else "down",
            "focus": {"count": focus_count, "share": _round(item.focus_share)},
            "baseline": {"count": base_count, "share": _round(item.baseline_share)},
            "lift": _round(item.lift, 3), "new": item.baseline_count == 0,
            "g": _round(item.g, 3), "p": item.p, "exact": item.exact}


def _named_fields(sets: Sets) -> set[str]:
    """The fields the query filters on, by the names the answer uses (``status`` → ``http.status``)."""
    out = set()
    for name, _ in referenced_fields(sets.query, ""):
        try:
            ref = resolve_field(name)
        except QueryError:
            continue
        out.add(display_name(ref.column) if ref.column else name.removeprefix("attributes."))
    return out


def _ranked_json(item: Categorical, totals: tuple[int, int], threshold: float) -> dict[str, Any]:
    row = _value_json(item, totals, scale=not item.exact)
    row["significant"] = item.p < threshold
    return row


def _together_values(ranked: list[Categorical], significant: float) -> list[Categorical]:
    """The top rising values (one per canonical field: a column, cheap to count on every record)
    that ``together`` tries to join."""
    picked: list[Categorical] = []
    for item in ranked:
        if item.p >= significant or item.focus_share <= item.baseline_share or item.field not in _COLUMNS \
                or item.field == "pattern_id" or any(p.field == item.field for p in picked) \
                or any((p.focus_count, p.baseline_count) == (item.focus_count, item.baseline_count)
                       for p in picked):  # the same records under another name (path and method)
            continue
        picked.append(item)
        if len(picked) == _TOGETHER_MAX:
            break
    return picked


def _together(picked: list[Categorical], counts: list[tuple[int, int]], totals: tuple[int, int],
              counted: passes.Counted, counted_n: tuple[int, int]) -> dict[str, Any] | None:
    """The most of ``picked`` that most focus records share, from ``counts`` over the counted
    records of both sets (``counted_n`` of them; the counts shown are scaled to the sets' sizes
    when those were time slices)."""
    if not picked:
        return None
    keep = 1
    for i in range(1, len(counts)):
        if counts[i][0] < _TOGETHER_KEEP * counts[keep - 1][0]:
            break
        keep = i + 1
    f, b = counts[keep - 1]
    values = [{"field": p.field, "value": p.value} for p in picked[:keep]]
    focus_share = f / counted_n[0] if counted_n[0] else 0.0
    base_share = b / counted_n[1] if counted_n[1] else 0.0
    if not counted.exact:  # time slices: the counts estimated from their shares
        f, b = round(focus_share * totals[0]), round(base_share * totals[1])
    return {"values": values, "exact": counted.exact,
            "filter": " AND ".join(filter_text(p.field, p.value) for p in picked[:keep]),
            "focus": {"count": f, "share": _round(focus_share)},
            "baseline": {"count": b, "share": _round(base_share)},
            "lift": _round(focus_share / base_share, 3) if base_share else None}


def _numbers_json(items: list[Numeric], quantiles: dict[str, tuple[int, list[float], int, list[float]]],
                  significant: float, exact: bool) -> list[dict[str, Any]]:
    from .stats import quantile

    out = []
    for item in sorted(items, key=lambda n: n.p):
        column = "http_" + item.field[5:] if item.field.startswith("http.") else ""
        if column in quantiles:
            fn, fq, bn, bq = quantiles[column]
        else:
            fn, bn = len(item.focus), len(item.baseline)
            fq = [quantile(item.focus, 0.5), quantile(item.focus, 0.95)]
            bq = [quantile(item.baseline, 0.5), quantile(item.baseline, 0.95)]
        if not fn:
            continue
        fq = fq if len(fq) == 2 else [None, None]
        bq = bq if len(bq) == 2 else [None, None]
        p50 = fq[0] / bq[0] if fq[0] is not None and bq[0] else None
        out.append({"field": item.field,
                    "focus": {"count": fn, "p50": _round(fq[0], 3), "p95": _round(fq[1], 3)},
                    "baseline": {"count": bn, "p50": _round(bq[0], 3), "p95": _round(bq[1], 3)},
                    "p50_ratio": _round(p50, 3), "direction": "up" if item.z > 0 else "down",
                    "z": _round(item.z, 3), "p": item.p,
                    "significant": item.tested and item.p < significant,
                    "quantiles_exact": exact and column in quantiles})
    return out


def explain(store: Store, req: ExplainRequest, *, scope: tuple[str, dict[str, Any]] | None,
            settings: Mapping[str, Any], now_ns: int | None = None) -> dict[str, Any]:
    """The answer of ``POST /api/v1/explain`` (docs/explain.md). Raises ``QueryError`` for a bad
    query, ``ValueError`` for a baseline that cannot be made, ``StoreError`` from the store."""
    began = time.perf_counter()
    now = time.time_ns() if now_ns is None else now_ns
    sets = build_sets(req.q, focus=req.focus, mode=req.mode, baseline=req.baseline, scope=scope, now_ns=now)
    counted_totals = passes.totals(store, sets, settings)
    totals = (counted_totals.focus, counted_totals.baseline)
    counted = passes.counted_slices(sets, counted_totals)
    left_out = dict(ALWAYS_LEFT_OUT)
    categorical: list[Categorical] = []
    numbers: list[Numeric] = []
    patterns: list[Categorical] = []
    quantiles: dict[str, tuple[int, list[float], int, list[float]]] = {}
    sampled = (0, 0)
    cheap_n = totals
    if counted_totals.focus:
        cheap, cheap_n = passes.cheap_counts(store, sets, settings, counted)
        cheap["pattern_id"] = _pattern_groups(store, cheap["pattern_id"])
        for column, values in cheap.items():
            name = display_name(column)
            for value, (f, b) in values.items():
                item = Categorical(name, int(value) if column == "http_status" else value,
                                   f, cheap_n[0], b, cheap_n[1], exact=counted.exact)
                (patterns if column == "pattern_id" else categorical).append(item)
        focus_rows, base_rows = passes.sample(store, sets, settings, counted_totals)
        sampled = (len(focus_rows), len(base_rows))
        fields, number_values, high = _sampled_fields(focus_rows, base_rows)
        left_out.update(high)
        for name, (f, b) in fields.items():
            for key in set(f) | set(b):
                categorical.append(Categorical(name, _value(key), f.get(key, 0), sampled[0], b.get(key, 0),
                                               sampled[1], exact=sampled == totals))
        for name, (fv, bv) in number_values.items():
            numbers.append(Numeric(name, fv, bv, exact=sampled == totals))
    named = _named_fields(sets)
    fixed = {c.field for c in categorical if c.field in named and c.focus_count == c.focus_total}
    for name in sorted(fixed):
        left_out[name] = "one value in every focus record: the query names it"
    categorical = [c for c in categorical if c.field not in fixed]
    tested = [c for c in (*categorical, *patterns) if c.tested]
    for item in tested:
        item.test()
    for number in numbers:
        if number.tested:
            number.test()
    m = len(tested) + sum(1 for n in numbers if n.tested)
    threshold = req.alpha / m if m else req.alpha
    ranked = sorted((c for c in tested if c.field != "pattern_id"),
                    key=lambda c: (-c.g, c.field, str(c.value)))
    rose_all = [item for item in ranked if item.focus_share > item.baseline_share]
    fell_all = [item for item in ranked if item.focus_share < item.baseline_share]
    values = [_ranked_json(item, totals, threshold) for item in rose_all[:req.limit]]
    fell = [_ranked_json(item, totals, threshold) for item in fell_all[:req.limit]]
    # numbers are capped by the same limit (300 numeric attributes made 300 entries), the most
    # significant first; the answer says how many of each list were not shown
    # one more pass over the counted records: the number quantiles and the combination's counts
    # and the typed numbers of the records of each of the first rising values (by value)
    picked = _together_values(ranked, threshold)
    conditions = [sets.condition(_match(p.field, p.value)) for p in picked]
    by_value = [sets.condition(_match(v["field"], v["value"])) for v in values[:_BY_VALUE]]
    counts: list[tuple[int, int]] = []
    if counted_totals.focus:
        counts, quantiles, per_value = passes.quantiles_and_conjunctions(store, sets, settings, counted,
                                                                          conditions, by_value)
        for row, numbers_of in zip(values, per_value, strict=False):
            row["numbers"] = _value_numbers(numbers_of, counted.exact)
    numbers_all = _numbers_json(numbers, quantiles, threshold, counted.exact)
    together = _together(picked, counts, totals, counted, cheap_n)
    return {
        "query": req.q,
        "focus": {"from": _iso(sets.focus_window[0]), "to": _iso(sets.focus_window[1]), "count": totals[0]},
        "baseline": {"mode": req.mode, "from": _iso(sets.baseline_window[0]),
                     "to": _iso(sets.baseline_window[1]), "count": totals[1]},
        "statistic": {"name": STATISTIC, "alpha": req.alpha, "correction": "Bonferroni", "tests": m,
                      "threshold_p": threshold,
                      "meaning": f"a value is significant when p < alpha / tests = {threshold:.3g}: if "
                                 "focus and baseline came from the same distribution, the chance that "
                                 f"any value is named is under {req.alpha}"},
        "values": values,
        "fell": fell,
        "together": together,
        "numbers": numbers_all[:req.limit],
        "not_shown": {"values": max(0, len(rose_all) - req.limit), "fell": max(0, len(fell_all) - req.limit),
                      "numbers": max(0, len(numbers_all) - req.limit), "limit": req.limit},
        "patterns": _patterns_json(store, patterns, totals, threshold, sets.focus_window[0],
                                   Scope.from_sql_params(scope[1] if scope is not None else None)),
        "left_out": [{"field": k, "reason": v} for k, v in sorted(left_out.items())],
        "counted": {"focus": cheap_n[0], "baseline": cheap_n[1], "exact": counted.exact,
                    "note": f"the canonical fields, templates and number quantiles are counted on every "
                            f"record of a set of up to {passes.COUNTED} records, beyond that on time slices "
                            f"(about {passes.COUNT_SLICE} records each, picked by a generator seeded with "
                            "the set's extent) holding about that many: these are the records counted"},
        "sampled": {"focus": sampled[0], "baseline": sampled[1],
                    "note": f"attributes and http.path/client_ip/referer are compared on a sample of up to "
                            f"{passes.SAMPLE} records per set, from time slices of about "
                            f"{passes.SAMPLE_SLICE} records: these are the records sampled"},
        "elapsed_ms": round((time.perf_counter() - began) * 1000, 3),
    }


def _patterns_json(store: Store, items: list[Categorical], totals: tuple[int, int], threshold: float,
                   focus_start: int, scope: Scope) -> list[dict[str, Any]]:
    """Templates that are new or grew (significantly more of the focus than of the baseline). The
    patterns table is read for the key's scope only: another tenant's (tenant, service) may carry
    the same id (a 64-bit CRC a writer can forge), and its row holds a sample message."""
    rising = sorted((c for c in items if c.tested and c.focus_share > c.baseline_share
                     and (c.p < threshold or c.baseline_count == 0)), key=lambda c: -c.g)[:10]
    if not rising:
        return []
    info: dict[str, dict[str, Any]] = {}
    try:
        for row in pattern_info(store, pattern_ids=[str(c.value) for c in rising]):
            if scope.labels_inside(row):
                info.setdefault(str(row["pattern_id"]), row)
    except (StoreError, AttributeError):
        info = {}
    out = []
    for item in rising:
        row = _value_json(item, totals, scale=False)
        known = info.get(str(item.value), {})
        row["template"] = known.get("template") or known.get("sample") or ""
        first = known.get("first_seen_ns")
        row["first_seen"] = known.get("first_seen")
        row["status"] = "new" if first is not None and first >= focus_start else "grown"
        row["significant"] = item.p < threshold
        out.append(row)
    return out
