"""What Grafana's Logs Drilldown asks besides queries: patterns, one field's values, and which
stored attribute paths Grafana's label names stand for.

Why separate: these answer from logharbor's own pattern mining and attribute catalogue in Loki's
shapes (``/patterns``: ``{"status", "data": [{"pattern", "level", "samples": [[s, n]]}]}``;
``/detected_field/{name}/values``: ``{"values": [...]}``); they share no code with LogQL
evaluation beyond the filter a selector compiles to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import orjson

from logharbor.record import parse_timestamp
from logharbor.server.engine.store.sql.attributes import attribute_names_sql
from logharbor.server.features.query import ast

from . import catalog
from .catalog import LABEL_COLUMNS, MAX_VALUES, _where
from .lexer import FUNCTIONS, KEYWORDS
from .nodes import LABEL_ALIASES, LogQuery, field_name
from .streams import Context, label_text, sanitize_label, series_label_text

__all__ = ["field_values", "label_path_names", "patterns", "resolve_label_paths", "widest_range"]

_PLACEHOLDER = re.compile(r"<[^<>\s]*>")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_RUN = re.compile(r"[A-Za-z0-9]+")
_RANGE = re.compile(r"\[(\d+)([smhdwy])\]")
_UNIT_NS = {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9, "w": 7 * 86400 * 10**9,
            "y": 365 * 86400 * 10**9}
_KNOWN = {*KEYWORDS, *FUNCTIONS, *LABEL_COLUMNS, *LABEL_ALIASES, "__error__", "__error_details__",
          "__line__", "__timestamp__"}


def label_path_names(texts: Iterable[str]) -> set[str]:
    """Names in ``texts`` that may be the underscore form of a dotted attribute path."""
    return {w for text in texts for w in _WORD.findall(text) if "_" in w.strip("_") and w not in _KNOWN}


def widest_range(text: str) -> int:
    """The longest ``[range]`` written in a query (ns), so paths are looked up far enough back."""
    return max((int(n) * _UNIT_NS[u] for n, u in _RANGE.findall(text)), default=0)


def resolve_label_paths(ctx: Context, names: set[str], start: int, end: int) -> dict[str, str]:
    """``{label: path}`` for the names that are the underscore form of a stored attribute path
    (``k8s_namespace_name`` → ``k8s.namespace.name``). A name that is itself a stored path stays
    itself; of several paths spelling one name, the first in sorted order wins."""
    where, params = _where(ctx, ast.MatchAll(), start, end)
    # first the exact question that ends at the first record found, so the usual name (a flat
    # user_id) parses no sample of records at all
    names = {name for name in names if not _is_path(ctx, name, where, params)}
    holding, values = _holding(names)
    if not holding:
        return {}
    # up to NAMES_SAMPLE records per name, each holding that name's parts (LIMIT … BY the name)
    which = ", ".join(f"if({cond}, {i + 1}, 0)" for i, cond in enumerate(holding))
    rows = (f"(SELECT `attributes`, arrayJoin(arrayFilter(x -> x > 0, [{which}])) AS __lh_name "  # noqa: S608
            f"FROM {ctx.store.table} WHERE {where} LIMIT {{names_sample:UInt64}} BY __lh_name)")
    sql = attribute_names_sql(rows, "1", sample=str(catalog.NAMES_SAMPLE * len(holding)))
    found = ctx.run(sql, {**params, **values, "names_sample": catalog.NAMES_SAMPLE})
    paths = sorted({str(name) for row in found for name in (row.get("k") or [])})
    out: dict[str, str] = {}
    for path in paths:
        name = sanitize_label(path)
        if name in names and name != path and name not in paths and name not in out:
            out[name] = path
    return out


def _is_path(ctx: Context, name: str, where: str, params: dict[str, object]) -> bool:
    """Whether a record of the range has the top-level key ``name`` with a value a path ends at
    (not null, not an object: what the JSON column listed); the key's text (``"name":`` can only
    be a key in JSON text) narrows the records parsed."""
    sql = (f"SELECT 1 AS x FROM {ctx.store.table} WHERE {where} "  # noqa: S608
           "AND position(`attributes`, {lh_key:String}) > 0 "
           "AND JSONType(`attributes`, {lh_name:String}) NOT IN ('Null', 'Object') LIMIT 1")
    return bool(ctx.run(sql, {**params, "lh_key": orjson.dumps(name).decode() + ":", "lh_name": name}))


def _holding(names: set[str]) -> tuple[list[str], dict[str, str]]:
    """For each of ``names``, a condition keeping the records whose attributes text holds every
    letter-and-digit run of it (a key that sanitizes to ``k8s_namespace_name`` is written with
    ``k8s``, ``namespace`` and ``name`` in it), and their parameters. Why: the names are read from
    a bounded sample of records (:data:`.catalog.NAMES_SAMPLE`); sampling, for each name, only
    records that may hold its path keeps a rare path from being missed behind common ones, which
    would make a selector on it match nothing."""
    values: dict[str, str] = {}
    clauses = []
    for name in sorted(names):
        runs = _RUN.findall(name)
        if not runs:
            continue
        parts = []
        for run in runs:
            key = f"lh_run{len(values)}"
            values[key] = run
            parts.append(f"position(`attributes`, {{{key}:String}}) > 0")
        clauses.append("(" + " AND ".join(parts) + ")")
    return clauses, values


def field_values(ctx: Context, name: str, lq: LogQuery, start: int, end: int, limit: int) -> list[str]:
    """Distinct values of one field among the matching records (``/detected_field/{name}/values``)."""
    field = field_name(name)
    stats = ast.Stats((ast.Agg("count", None, "__n"),), (field,))
    cap = min(limit, MAX_VALUES)
    rows, _ = ctx.query(ast.Query(lq.query.filter, (stats, ast.Limit(cap))), start, end, cap)
    return sorted({series_label_text(name, label_text(r.get(field))) for r in rows} - {""})


def patterns(ctx: Context, lq: LogQuery, start: int, end: int, step_ns: int) -> list[dict[str, Any]]:
    """Loki's ``/patterns``: each template of the matching records (placeholders written ``<_>``,
    as Drilldown expects), its level, and its count per ``step``."""
    step_s = max(1, step_ns // 10**9)
    chart = ast.Timechart(f"{step_s}s", (ast.Agg("count", None, "n"),), ("pattern_id", "level"))
    rows, _ = ctx.query(ast.Query(lq.query.filter, (chart,)), start, end, None)
    per: dict[str, dict[str, Any]] = {}
    for row in rows:
        pid = str(row.get("pattern_id") or "")
        if not pid or not row.get("n"):
            continue
        entry = per.setdefault(pid, {"levels": {}, "samples": {}})
        at = parse_timestamp(row["_time"]) // 10**9
        entry["samples"][at] = entry["samples"].get(at, 0) + int(row["n"])
        level = str(row.get("level") or "").lower()
        entry["levels"][level] = entry["levels"].get(level, 0) + int(row["n"])
    if not per:
        return []
    templates, _ = ctx.query(ast.Query(lq.query.filter, (ast.Patterns(),)), start, end, None)
    text = {str(t.get("pattern_id")): str(t.get("template") or "") for t in templates}
    out = []
    for pid, entry in per.items():
        template = text.get(pid)
        if not template:
            continue
        level = max(entry["levels"].items(), key=lambda kv: kv[1])[0] if entry["levels"] else ""
        out.append({"pattern": _PLACEHOLDER.sub("<_>", template), "level": level,
                    "samples": [[t, n] for t, n in sorted(entry["samples"].items())]})
    out.sort(key=lambda p: -sum(n for _, n in p["samples"]))
    return out
