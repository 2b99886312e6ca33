"""The reads ``explain`` makes: a few passes over the two sets, each one SELECT.

1. :func:`totals`: how many records each set has and their time extent (exact; the time column
   and the query's own columns only).
2. :func:`counted_slices`: a set of more than :data:`COUNTED` records is counted on whole time
   slices of its extent (about :data:`COUNT_SLICE` records each, picked by a hash of the slice):
   ranges of the primary key's time order, so the engine reads only their granules and the cost
   stays about the same at 10M records as at 1M.
3. :func:`cheap_counts`: every value of the ``LowCardinality`` columns (level, service, host,
   version, pattern_id, http.status, …) counted in both sets' counted records, in one pass
   (``GROUPING SETS``: one small hash table per column).
4. :func:`sample`: a sample of each set (a few short time slices, again primary-key ranges) for
   what is too costly to count whole: attributes, ``http.path``, client ips, and the number
   columns' values for the rank test.
5. :func:`quantiles_and_conjunctions`: over the counted records again, p50/p95 of the typed
   number columns (``http.duration_ms``, ``http.bytes_sent``) and how many records of each set
   have several found values at once (``together``).

SQL text holds only column names from the schema (quoted by ``sqlsafe``), the conditions
:mod:`.sets` compiled (placeholders) and integers computed here; every value (the slices' times
too) is a parameter.
"""


from __future__ import annotations

import functools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from logharbor import exactjson
from logharbor.server.engine.store.base import Store
from logharbor.server.engine.store.sql import explain as sql
from logharbor.server.engine.store.sql.explain import SetsSql
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.features.query.errors import QueryError
from logharbor.server.features.query.fields import key_segment, resolve_field

from .sets import Sets

__all__ = [
    "CHEAP_COLUMNS",
    "COUNTED",
    "COUNT_SLICE",
    "MAX_SLICES",
    "NUMBER_COLUMNS",
    "SAMPLE",
    "SAMPLED_COLUMNS",
    "SAMPLE_SLICE",
    "SCANNED",
    "Counted",
    "Quantiles",
    "Totals",
    "attribute_name",
    "cheap_counts",
    "counted_slices",
    "flatten_attributes",
    "pick_slices",
    "quantiles_and_conjunctions",
    "sample",
    "stored_attributes",
    "totals",
]

#: columns counted over every counted record of both sets (few distinct values, one cheap pass)
CHEAP_COLUMNS = ("level", "service", "source", "host", "instance", "env", "version", "tenant",
                 "pattern_id", "http_method", "http_status", "http_user_agent")
#: typed number columns: quantiles over the counted records, a rank test on the sample
NUMBER_COLUMNS = ("http_duration_ms", "http_bytes_sent")
#: text columns read from the sample (with the attributes)
SAMPLED_COLUMNS = ("http_path", "http_client_ip", "http_referer")
#: records per set counted whole; a larger set is counted on time slices holding about this many
COUNTED = 250_000
#: … or, when fewer, records read (the sets' windows) that hold the counted records of a set
SCANNED = 1_000_000
#: records a counted time slice holds on average (two granules: the engine skips the others)
COUNT_SLICE = 16_384
#: time ranges a set is counted on at most (wider slices beyond: each record read is tested
#: against every range)
MAX_SLICES = 16
#: records sampled per set for the sampled fields …
SAMPLE = 2000
#: … from time slices of about this many records each (eight slices: a few granules' attributes)
SAMPLE_SLICE = 250


def _run(store: Store, sql_text: str, params: Mapping[str, Any], settings: Mapping[str, Any]
         ) -> list[dict[str, Any]]:
    return list(store.query(sql_text, params, settings=settings))


@dataclass(frozen=True)
class Totals:
    """Records in each set and their time extents (ns, first and last record)."""

    focus: int
    baseline: int
    focus_span: tuple[int, int]
    baseline_span: tuple[int, int]
    #: records of each set's window (within the key's scope) a pass reads to find the set's
    focus_scanned: int = 0
    baseline_scanned: int = 0


def totals(store: Store, sets: Sets, settings: Mapping[str, Any]) -> Totals:
    """Pass 1: exact, reading the time and the query's own columns only."""
    query = sql.totals_sql(store.table, (sets.focus, sets.baseline, sets.scanned),
                           (sets.focus_scanned, sets.baseline_scanned))
    row = next(iter(_run(store, query, sets.params, settings)), {})
    return Totals(focus=int(row.get("nf") or 0), baseline=int(row.get("nb") or 0),
                  focus_span=(int(row.get("fa") or 0), int(row.get("fz") or 0)),
                  baseline_span=(int(row.get("ba") or 0), int(row.get("bz") or 0)),
                  focus_scanned=int(row.get("sf") or 0), baseline_scanned=int(row.get("sb") or 0))


def pick_slices(span: tuple[int, int], total: int, size: int, per_slice: int) -> list[tuple[int, int]] | None:
    """``[from, to)`` ns ranges of ``span`` (first and last record) holding about ``size`` of its
    ``total`` records: the span cut in slices of about ``per_slice`` records, the slices kept
    picked by a generator seeded with the span (the same set gives the same slices: an answer
    can be asked again), adjacent ones merged. None when the whole set is no more than ``size``."""
    if total <= size:
        return None
    lo, hi = span[0], span[1] + 1
    count = min(max(1, -(-total // per_slice)), max(1, hi - lo))
    keep = max(1, -(-size // per_slice))
    if keep >= count:
        return None
    # seeded by the span: the same set gets the same slices; O(keep), however many slices there are
    chosen = sorted(random.Random(f"{lo}:{hi}:{count}").sample(range(count), keep))  # noqa: S311 -- a sample, not a secret
    ranges: list[tuple[int, int]] = []
    for i in chosen:
        a, b = lo + (hi - lo) * i // count, lo + (hi - lo) * (i + 1) // count
        if ranges and ranges[-1][1] == a:
            ranges[-1] = (ranges[-1][0], b)
        else:
            ranges.append((a, b))
    return ranges


@dataclass(frozen=True)
class Counted:
    """The records a pass counts: each set whole, or on time slices (``exact`` False)."""

    sets: SetsSql
    params: dict[str, Any]
    exact: bool


def _restricted(params: dict[str, Any], side: str, condition: str, ranges: list[tuple[int, int]] | None
                ) -> str:
    """``condition`` kept on ``ranges`` (their times bound as ``<side>_a<i>``/``<side>_z<i>``)."""
    if ranges is None:
        return condition
    for i, (a, b) in enumerate(ranges):
        params[f"{side}_a{i}"], params[f"{side}_z{i}"] = a, b
    return f"({condition} AND {sql.time_ranges(side, len(ranges))})"


def _within(sets: Sets, counts: Totals, size: int, per_slice: int, prefix: str) -> Counted:
    """The two sets, each restricted to time slices holding about ``size`` of its records."""
    params = sets.params
    fr = pick_slices(counts.focus_span, counts.focus, size, per_slice)
    br = pick_slices(counts.baseline_span, counts.baseline, size, per_slice)
    return _restrict(sets, params, fr, br, prefix)


def _restrict(sets: Sets, params: dict[str, Any], fr: list[tuple[int, int]] | None,
              br: list[tuple[int, int]] | None, prefix: str) -> Counted:
    if fr is None and br is None:
        return Counted((sets.focus, sets.baseline, sets.where), params, exact=True)
    focus = _restricted(params, f"{prefix}f", sets.focus, fr)
    baseline = _restricted(params, f"{prefix}b", sets.baseline, br)
    # the slices in the scan's own WHERE: ranges of the primary key, so only their granules are
    # read; each term holds its set's condition, so a record read is in its own set's slices and
    # the flags need not repeat the ranges (a baseline record in a focus slice is not read)
    where = f"{sets.where} AND ({focus} OR {baseline})"
    return Counted((sets.focus, sets.baseline, where), params, exact=False)


def _counted_ranges(span: tuple[int, int], records: int, scanned: int) -> list[tuple[int, int]] | None:
    """Slices of ``span`` holding about :data:`COUNTED` of a set's ``records``, or about
    :data:`SCANNED` of the ``scanned`` records its window has, whichever is less (a few errors
    in a busy window are found by reading their window: that read is what costs)."""
    if not records:
        return None
    share = min(1.0, COUNTED / records, SCANNED / max(1, scanned))
    scanned = max(scanned, records)
    size = round(scanned * share)
    # at most MAX_SLICES ranges: every record read is tested against each (246 ranges made a
    # filtered 10M-record explain slower than reading everything)
    return pick_slices(span, scanned, size, max(COUNT_SLICE, -(-size // MAX_SLICES)))


def counted_slices(sets: Sets, counts: Totals) -> Counted:
    """What passes 3 and 5 count: each set whole up to :data:`COUNTED` records (and
    :data:`SCANNED` records read), else time slices holding about that many."""
    params = sets.params
    fr = _counted_ranges(counts.focus_span, counts.focus, counts.focus_scanned)
    br = _counted_ranges(counts.baseline_span, counts.baseline, counts.baseline_scanned)
    return _restrict(sets, params, fr, br, "xc")


def cheap_counts(store: Store, sets: Sets, settings: Mapping[str, Any], counted: Counted
                 ) -> tuple[dict[str, dict[str, tuple[int, int]]], tuple[int, int]]:
    """Pass 3: ``{column: {value: (focus count, baseline count)}}`` (absent values left out) over
    the counted records, and how many records each set had there."""
    names = [f"c{i}" for i in range(len(CHEAP_COLUMNS))]
    query = sql.cheap_counts_sql(store.table, counted.sets, CHEAP_COLUMNS)
    out: dict[str, dict[str, tuple[int, int]]] = {c: {} for c in CHEAP_COLUMNS}
    n = (0, 0)
    width = len(CHEAP_COLUMNS)
    for row in _run(store, query, counted.params, settings):
        mask = int(row["g"])
        # standard GROUPING: a 0 bit for the column the row is grouped by (first column = top bit)
        index = next((i for i in range(width) if not mask >> (width - 1 - i) & 1), None)
        if index is None:  # the () set: every record counted
            n = (int(row["f"]), int(row["b"]))
            continue
        value = str(row[names[index]])
        if value == "":
            continue
        out[CHEAP_COLUMNS[index]][value] = (int(row["f"]), int(row["b"]))
    return out, n


def _floats(values: Any) -> list[float]:
    return [float(x) for x in values or [] if x is not None]


Quantiles = dict[str, tuple[int, list[float], int, list[float]]]


def quantiles_and_conjunctions(store: Store, sets: Sets, settings: Mapping[str, Any], counted: Counted,
                               conditions: Sequence[str], by_value: Sequence[str] = ()
                               ) -> tuple[list[tuple[int, int]], Quantiles, list[Quantiles]]:
    """Pass 5, over the counted records: the (focus, baseline) counts of records matching the
    first 1, 2, … ``conditions`` (compiled by ``sets`` after ``counted`` was made: their params
    are added); per typed number column (focus count, focus [p50, p95], baseline count,
    baseline [p50, p95]); and the same of the records matching each of ``by_value``."""
    params = {**sets.params, **counted.params}
    query = sql.quantiles_conjunctions_sql(store.table, counted.sets, NUMBER_COLUMNS, conditions, by_value)
    rows = _run(store, query, params, settings)
    row = rows[0] if rows else {}

    def numbers(suffix: str) -> Quantiles:
        out = {}
        for i, column in enumerate(NUMBER_COLUMNS):
            nf, nb = int(row.get(f"n{i}f{suffix}") or 0), int(row.get(f"n{i}b{suffix}") or 0)
            out[column] = (nf, _floats(row.get(f"q{i}f{suffix}")) if nf else [],
                           nb, _floats(row.get(f"q{i}b{suffix}")) if nb else [])
        return out

    counts = [(int(row.get(f"f{i}") or 0), int(row.get(f"b{i}") or 0)) for i in range(len(conditions))]
    return counts, numbers(""), [numbers(f"_{j}") for j in range(len(by_value))]


@functools.lru_cache(maxsize=4096)
def attribute_name(path: str) -> str:
    """The name a query reaches an attribute path by: one a query would read as a canonical column
    (``status``, ``service``) is written ``attributes.<path>``."""
    try:
        dynamic = resolve_field(path).kind == "dynamic"
    except QueryError:
        dynamic = True
    return path if dynamic else f"attributes.{path}"


def stored_attributes(text: str | None) -> dict[str, Any]:
    """A row's ``attributes`` text as the object sent: ``13.0`` stays a float, ``2**70`` a whole
    int (exactjson), keys in the order sent; no attributes is ``''``."""
    return exactjson.loads(text) if text else {}


def flatten_attributes(value: Any, prefix: str, out: dict[str, Any]) -> None:
    """Nested attribute objects as dotted names (``error.type``), as a query names them: a key
    that is not a bare name in backticks (```user name```, a literal ```a.b```), as
    /api/v1/fields names it, so the filter a click adds finds that key and only it."""
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            segment = key_segment(str(key), first=not prefix)
            flatten_attributes(inner, f"{prefix}.{segment}" if prefix else segment, out)
    elif not isinstance(value, dict | list) and value is not None:
        out[prefix] = value


def sample(store: Store, sets: Sets, settings: Mapping[str, Any], counts: Totals
           ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pass 4: (focus rows, baseline rows), each ``{field name: value}`` of the sampled columns
    (``http.path``, …), the number columns and every attribute path (a scalar; arrays left out):
    up to :data:`SAMPLE` per set, from a few time slices (the attributes of a few granules read)."""
    within = _within(sets, counts, SAMPLE, SAMPLE_SLICE, "xs")
    columns = ["`timestamp`", *(quote_identifier(c) for c in (*SAMPLED_COLUMNS, *NUMBER_COLUMNS)),
               quote_identifier("attributes")]
    query = sql.sample_sql(store.table, within.sets, columns, SAMPLE)
    focus: list[dict[str, Any]] = []
    baseline: list[dict[str, Any]] = []
    for row in _run(store, query, within.params, settings):
        fields: dict[str, Any] = {}
        for column in (*SAMPLED_COLUMNS, *NUMBER_COLUMNS):
            value = row.get(column)
            if value is not None and value != "":
                fields["http." + column[5:]] = value
        attributes: dict[str, Any] = {}
        flatten_attributes(stored_attributes(row.get("attributes")), "", attributes)
        for name, value in attributes.items():
            fields[attribute_name(name)] = value
        (focus if row.get("__f") else baseline).append(fields)
    return focus, baseline
