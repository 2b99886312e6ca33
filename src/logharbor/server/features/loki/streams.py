"""Log queries in Loki's ``streams`` shape: which fields label a stream, and what its lines say.

Why separate from the metrics: a log query is one compiled search (newest or oldest ``limit``
records); only grouping into labelled streams and ``line_format`` happen here, after the engine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from logharbor import exactjson
from logharbor.record import HTTP_FIELDS
from logharbor.server.engine.store.attributes import lookup
from logharbor.server.engine.store.base import Store, StoreError
from logharbor.server.engine.store.rows import row_to_record
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.features.query import ast, compile_ast
from logharbor.server.features.query.errors import QueryError
from logharbor.server.features.query.regex_re2 import compile_re2
from logharbor.server.features.query.service import query_error, store_error

from .logql import LogQuery, field_name, render_template

__all__ = ["STREAM_LABELS", "Context", "Labels", "label_text", "log_line", "log_streams", "record_labels",
           "sanitize_label", "series_label_text", "value_of"]

#: the fields every stream is labelled with (when not empty), besides those the query names
STREAM_LABELS = ("service", "level", "source", "host", "instance", "env")
Labels = tuple[tuple[str, str], ...]
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass
class Context:
    """One request's store, scope and limits."""

    store: Store
    scope: tuple[str, dict[str, object]] | None
    extra: ast.Filter | None  # the X-Scope-OrgID tenant condition
    max_limit: int
    settings: Mapping[str, Any]

    def _patterns_table(self) -> str | None:
        return quote_identifier(self.store.patterns_name)

    def query(self, q: ast.Query, start: int | None, end: int | None, limit: int | None,
              now: int | None = None, *, cap: int | None = None) -> tuple[list[dict[str, Any]], int]:
        """Rows of ``q`` (tenant condition added) and the row cap the compiler applied (``cap``
        instead of ``max_limit``: metric buckets are small rows the server combines itself)."""
        if self.extra is not None:
            flt = self.extra if isinstance(q.filter, ast.MatchAll) else ast.And((self.extra, q.filter))
            q = ast.Query(flt, q.pipes)
        try:
            compiled = compile_ast(q, table=self.store.table, time_from_ns=start, time_to_ns=end,
                                   limit=limit, max_limit=cap or self.max_limit, scope_sql=self.scope,
                                   now_ns=now, patterns_table=self._patterns_table())
        except QueryError as exc:
            raise query_error(exc) from None
        return self.run(compiled.sql, compiled.params), compiled.limit

    def run(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One SELECT; engine errors become 400 (budget, regex), 507 (a spill on a full disk) or 500."""
        try:
            return list(self.store.query(sql, params, settings=self.settings))
        except StoreError as exc:
            raise store_error(exc) from None  # the same answers as the query API (a limit, RE2, 507)


def value_of(record: Mapping[str, Any], name: str) -> Any:
    """A field of a canonical record by its query name (``status``, ``http.status``, ``user.id``)."""
    name = field_name(name)
    if name in record and name not in ("http", "attributes"):
        return record[name]
    http = record.get("http") or {}
    short = name[5:] if name.startswith(("http.", "http_")) else name
    if short in HTTP_FIELDS:
        return http.get(short)
    # a dotted name is any of its spellings (nested or a literal dotted key), as in a search
    return lookup(record.get("attributes") or {}, name.removeprefix("attributes."))


def label_text(value: Any) -> str:
    """A field value as Loki label text (labels are strings; absent is empty): text as itself,
    anything else its JSON text as the query API writes it (``true``, ``1.0``, ``-0.0``,
    ``1e+300``, an integer's digits), as Loki's ``| json`` takes a number's lexeme as sent.

    A whole float was written as an integer (``1.0`` as ``1``, and ``-0.0`` as ``0``: the sign
    lost); ``str(int(1e300))`` wrote 301 digits before that."""
    return "" if value is None else exactjson.text(value)


#: labels whose values Loki writes in lower case: its ``detected_level`` is ``error``, ``warn``, …
#: (Logs Drilldown colours and filters levels by those names), where logharbor's level is ``ERROR``
_LOWER_CASE_LABELS = frozenset({"detected_level"})


def series_label_text(name: str, text: str) -> str:
    """A series label's value as Loki writes it for that label name (see ``_LOWER_CASE_LABELS``)."""
    return text.lower() if name in _LOWER_CASE_LABELS else text


_INVALID_LABEL = re.compile(r"[^A-Za-z0-9_]")


def sanitize_label(name: str) -> str:
    """A key as a Loki label name: every character outside ``[A-Za-z0-9_]`` becomes ``_`` (what
    ``| json`` and Loki's OTLP ingestion do: ``k8s.namespace.name`` → ``k8s_namespace_name``)."""
    out = _INVALID_LABEL.sub("_", name)
    return "_" + out if out[:1].isdigit() else out


def _leaves(keys: tuple[str, ...], value: Any, out: list[tuple[str, tuple[str, ...], Any]]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _leaves((*keys, str(key)), inner, out)
    elif value is not None and not isinstance(value, list):
        # the path as the JSON column ordered it: '%' written %25, a key's '.' %2E, levels by '.'
        out.append((".".join(k.replace("%", "%25").replace(".", "%2E") for k in keys), keys, value))


def _flatten(attributes: Mapping[str, Any], out: dict[str, str]) -> None:
    """Every scalar attribute as a label (``k8s.pod`` and ``{"k8s": {"pod": …}}`` both ``k8s_pod``).

    Why sorted: when several keys become one label (``a_b``, ``a.b``, ``{"a": {"b": …}}``) the
    last in the JSON column's path order won; the text keeps the order sent, so the paths are put
    in that order here, and a label stays what it was, on the query and the live-tail path alike."""
    leaves: list[tuple[str, tuple[str, ...], Any]] = []
    _leaves((), attributes, leaves)
    for _, keys, value in sorted(leaves, key=lambda leaf: leaf[0]):
        out["_".join(sanitize_label(k) for k in keys)] = label_text(value)


def record_labels(record: Mapping[str, Any], lq: LogQuery) -> dict[str, str]:
    """The stream labels of one record: the usual fields, the selector's, and what parsers add."""
    labels = {name: label_text(record.get(name)) for name in STREAM_LABELS}
    for name in lq.selector:
        labels[name] = series_label_text(name, label_text(value_of(record, name)))
    if lq.parsed:
        _flatten(record.get("attributes") or {}, labels)
        if lq.unpack:
            labels.pop("_entry", None)
        for key, value in (record.get("http") or {}).items():
            labels["http_" + key] = label_text(value)
    line = record.get("message") or ""
    for pattern in lq.extractors:
        m = pattern.search(line)
        if m is not None:
            labels.update({k: v for k, v in m.groupdict().items() if v is not None})
    for lf in lq.label_formats:
        if lf.template is not None:
            def lookup(n: str) -> str:
                return labels.get(n) or label_text(value_of(record, n))

            labels[lf.name] = render_template(lf.template, lookup)
        else:
            source = lf.source or lf.name
            labels[lf.name] = labels.pop(source, None) or label_text(value_of(record, source))
    if lq.keep is not None:
        labels = {k: v for k, v in labels.items() if k in lq.keep and _kept(k, v, lq.keep_if)}
    for name, op, value in lq.drop_if:
        if name in labels and _holds(op, value, labels[name]):
            del labels[name]
    return {k: v for k, v in labels.items() if v != "" and k not in lq.drop}


def _holds(op: str, expected: str, value: str) -> bool:
    if op in ("=", "!="):
        return (value == expected) == (op == "=")
    found = compile_re2(f"^(?:{expected})$").search(value) is not None
    return found == (op == "=~")


def _kept(name: str, value: str, conditions: tuple[tuple[str, str, str], ...]) -> bool:
    own = [c for c in conditions if c[0] == name]
    return not own or any(_holds(op, expected, value) for _, op, expected in own)


def log_line(record: Mapping[str, Any], lq: LogQuery, labels: Mapping[str, str]) -> str:
    """The line Loki would show: the message (``| unpack``: the packed ``_entry``), or
    ``line_format``'s template filled in."""
    message = record.get("message") or ""
    if lq.unpack:
        entry = (record.get("attributes") or {}).get("_entry")
        if isinstance(entry, str):
            message = entry
    if lq.decolorize:
        message = _ANSI.sub("", message)
    if lq.line_format is None:
        return message

    def lookup(name: str) -> str:
        if name == "__line__":
            return message
        if name == "__timestamp__":
            return str(record["timestamp"])
        return labels.get(name) or label_text(value_of(record, name))

    return render_template(lq.line_format, lookup)


def log_streams(ctx: Context, lq: LogQuery, start: int | None, end: int | None, limit: int,
                direction: str) -> tuple[list[dict[str, Any]], int]:
    """Loki ``streams``: the newest (or, forward, oldest) ``limit`` records grouped by labels."""
    pipes: tuple[ast.Pipe, ...] = ()
    if direction == "forward":
        pipes = (ast.Sort((ast.SortKey("timestamp"),)),)
    rows, _ = ctx.query(ast.Query(lq.query.filter, pipes), start, end, limit)
    streams: dict[Labels, list[list[str]]] = {}
    for row in rows:
        record = row_to_record(row)
        labels = record_labels(record, lq)
        key = tuple(sorted(labels.items()))
        streams.setdefault(key, []).append([str(record["timestamp"]), log_line(record, lq, labels)])
    return [{"stream": dict(key), "values": values} for key, values in streams.items()], len(rows)
