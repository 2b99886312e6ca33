"""What a field name in a query means: a column of the store table or a path into ``attributes``.

The column list and types are read from ``server/engine/store/schema.sql`` itself, so the query language
can never drift from the table it runs against. Names resolve in this order: the time aliases
(``_time``, ``@timestamp``), a canonical column (``service``, ``http_status``), an ``http.*``
name or shorthand (``status`` → ``http_status``), and otherwise a JSON path into ``attributes``
(``user_id``, ``order.items.sku``, or explicitly ``attributes.user_id``). Every identifier that
reaches SQL text comes from that column list or goes through
:func:`logharbor.server.engine.store.sqlsafe.quote_identifier` / ``quote_json_path``.

A dotted attribute name matches every way a record can spell it, as Elasticsearch users expect:
``a.b`` is the nested path ``{"a": {"b": …}}`` and the literal key ``{"a.b": …}`` (the store keeps
the two apart, see ``store/attributes.py``); ``a.b.c`` also ``{"a.b": {"c": …}}`` and
``{"a": {"b.c": …}}``. Names of up to :data:`MAX_SPELLED_PARTS` parts get every spelling; longer
ones the nested path and the whole literal key. A filter matches when any spelling does; a value
shown, grouped or sorted by is the first spelling present, nested first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal

from logharbor.record import HTTP_FIELDS
from logharbor.server.engine.store.attributes import EXACT_COLUMN, column_key, lookup, spellings
from logharbor.server.engine.store.sqlsafe import SqlNameError, quote_identifier, quote_json_path

from .errors import UnknownFieldError

__all__ = ["MAX_SPELLED_PARTS", "FieldRef", "Kind", "attribute_paths", "attribute_value", "field_text",
           "format_time_sql", "key_segment", "name_parts", "quoted_keys", "resolve_field", "table_columns"]

Kind = Literal["text", "string", "int", "float", "time", "dynamic", "json"]
_COLUMN_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_TIME_FORMAT = "%Y-%m-%dT%H:%i:%S.%fZ"
#: dotted names with at most this many parts match every spelling (2**(parts-1) paths)
MAX_SPELLED_PARTS = 5


@dataclass(frozen=True)
class FieldRef:
    """A resolved field: the SQL expression reading it, its kind, and whether it may be NULL.

    ``text`` is the full-text ``message`` column; ``string`` columns use ``''`` for absent;
    ``dynamic`` is an attribute path (any JSON type, NULL when absent).
    """

    name: str
    sql: str
    kind: Kind
    nullable: bool = False
    column: str = ""
    #: an attribute's engine paths (``a.b``, ``a%2Eb``), one per spelling, when there are several
    paths: tuple[str, ...] = ()

    def spellings(self) -> list[FieldRef]:
        """One ref per spelling of an attribute name (just this one when it has a single path)."""
        if len(self.paths) < 2:
            return [self]
        return [FieldRef(self.name, _path_sql(p), self.kind, self.nullable, paths=(p,)) for p in self.paths]

    @property
    def select_sql(self) -> str:
        """The expression to return to users (times as RFC 3339 text)."""
        return format_time_sql(self.sql) if self.kind == "time" else self.sql

    @property
    def group_sql(self) -> str:
        """The expression to group, dedup or count distinct values by (a JSON value as text)."""
        if self.kind == "dynamic":
            return f"toString({self.sql})"
        return self.sql

    @property
    def number_sql(self) -> str | None:
        """The expression as a number, or None when the field is not numeric."""
        if self.kind in ("int", "float"):
            return self.sql
        if self.kind == "dynamic":
            return f"toFloat64OrNull(toString({self.sql}))"
        return None


def format_time_sql(expr: str) -> str:
    """SQL turning a DateTime64 into RFC 3339 text with microseconds, as the wire form has."""
    return f"formatDateTime({expr}, '{_TIME_FORMAT}', 'UTC')"


def _kind_of(sql_type: str) -> tuple[Kind, bool]:
    nullable = sql_type.startswith("Nullable(")
    if "DateTime" in sql_type:
        return "time", nullable
    if "Float" in sql_type:
        return "float", nullable
    if "Int" in sql_type:
        return "int", nullable
    if sql_type.startswith("JSON"):
        return "json", nullable
    return "string", nullable


@cache
def table_columns() -> tuple[tuple[str, Kind, bool], ...]:
    """(name, kind, nullable) of every column in schema.sql, in table order."""
    text = resources.files("logharbor.server.engine.store").joinpath("schema.sql").read_text(encoding="utf-8")
    body = text.split("{table} (", 1)[1]
    out: list[tuple[str, Kind, bool]] = []
    for line in body.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("INDEX", "--", ")", "PROJECTION")):
            if stripped.startswith(")"):
                break
            continue
        name, _, rest = stripped.partition(" ")
        if not _COLUMN_NAME.fullmatch(name):
            raise RuntimeError(f"schema.sql has a column line this module cannot read: {stripped!r}")
        sql_type = rest.strip().split(" CODEC", 1)[0].rstrip(",").strip()
        kind, nullable = _kind_of(sql_type)
        if name == "message":
            kind = "text"
        out.append((name, kind, nullable))
    return tuple(out)


_SHORTHANDS = {name: f"http_{name}" for name in HTTP_FIELDS}
_TIME_ALIASES = {"_time": "timestamp", "@timestamp": "timestamp"}


def resolve_field(name: str, position: int | None = None) -> FieldRef:
    """Resolve a user field name against the table (see the module docstring for the order)."""
    columns = {c[0]: c for c in table_columns()}
    target = _TIME_ALIASES.get(name, name)
    if target.startswith("http.") and target[5:] in HTTP_FIELDS:
        target = _SHORTHANDS[target[5:]]
    target = _SHORTHANDS.get(target, target)
    if target in columns and columns[target][1] != "json" and target != EXACT_COLUMN:
        col, kind, nullable = columns[target]
        return FieldRef(name, quote_identifier(col), kind, nullable, column=col)
    if "`" in name:
        return _quoted_field(name, position)
    parts = name.split(".")
    if parts[0] == "attributes":
        parts = parts[1:]
    if not parts or any(not p for p in parts):
        if name == "attributes":
            return FieldRef(name, quote_identifier("attributes"), "json", False, column="attributes")
        raise UnknownFieldError(f"{name!r} is not a usable field name", position)
    try:
        paths = attribute_paths(parts)
        sqls = [_path_sql(p) for p in paths]
    except SqlNameError as exc:
        raise UnknownFieldError(f"{name!r} is not a usable field name: {exc}", position) from None
    sql = sqls[0] if len(sqls) == 1 else f"coalesce({', '.join(sqls)})"
    return FieldRef(name, sql, "dynamic", True, paths=tuple(paths))


_SEGMENT = re.compile(r"`((?:[^`\\]|\\[\s\S])*)`|([^.`]+)")
_UNESCAPE = re.compile(r"\\([\s\S])")
_BARE_KEY = re.compile(r"(?:[A-Za-z_@]|[^\x00-\x7f\s])(?:[A-Za-z0-9_@\-]|[^\x00-\x7f\s])*")
_BARE_TAIL = re.compile(r"(?:[A-Za-z0-9_@\-]|[^\x00-\x7f\s])+")


def name_parts(name: str) -> list[str] | None:
    """The keys of a field name with backticks (``a.`b c``` → ``["a", "b c"]``), exactly, or None
    when ``name`` is not one (a bare name is split at its dots by :func:`resolve_field`)."""
    parts: list[str] = []
    pos = 0
    while True:
        m = _SEGMENT.match(name, pos)
        if m is None:
            return None
        parts.append(_UNESCAPE.sub(r"\1", m.group(1)) if m.group(1) is not None else m.group(2))
        pos = m.end()
        if pos == len(name):
            return parts
        if name[pos] != ".":
            return None
        pos += 1


def quoted_keys(name: str) -> list[str] | None:
    """The exact keys a name with backticks reads in ``attributes`` (a leading bare
    ``attributes.`` dropped); None for a bare name or one that does not parse."""
    parts = name_parts(name) if "`" in name else None
    if parts is not None and len(parts) > 1 and parts[0] == "attributes" and not name.startswith("`"):
        parts = parts[1:]
    return parts


def attribute_value(attributes: Mapping[str, Any], name: str) -> Any:
    """The stored value a field name shows from a record's attributes (None when absent): the
    exact keys of a quoted name, else the first spelling of a dotted one (store/attributes.py)."""
    keys = quoted_keys(name)
    if keys is None:
        return lookup(attributes, name)
    node: Any = attributes
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def _quoted_field(name: str, position: int | None) -> FieldRef:
    """A name with backticks: always a path into ``attributes``, exactly the keys written (one
    spelling: a quoted key's dots are part of the key)."""
    parts = quoted_keys(name)
    if parts is None:
        raise UnknownFieldError(f"{name!r} is not a usable field name (keys in backticks are joined "
                                "by '.', e.g. a.`b c`)", position)
    path = ".".join(column_key(key).replace(".", "%2E") for key in parts)
    try:
        sql = _path_sql(path)
    except SqlNameError as exc:
        raise UnknownFieldError(f"{name!r} is not a usable field name: {exc}", position) from None
    return FieldRef(name, sql, "dynamic", True, paths=(path,))


def field_text(key: str) -> str:
    r"""How a query names the top-level attribute ``key``: bare when it can be, else in backticks
    (``\```, ``\\`` escaped). A key that is also a column's name or shorthand is quoted, so it
    names the attribute."""
    if _BARE_KEY.fullmatch(key) and resolve_field(key).kind == "dynamic" and key != "attributes":
        return key
    return "`" + key.replace("\\", "\\\\").replace("`", "\\`") + "`"


def key_segment(key: str, *, first: bool) -> str:
    """One key as a part of a dotted field name: bare when the language reads it back as that
    key (after a dot a part may start with a digit), else in backticks."""
    if _BARE_KEY.fullmatch(key) or (not first and _BARE_TAIL.fullmatch(key)):
        return key
    return "`" + key.replace("\\", "\\\\").replace("`", "\\`") + "`"


def attribute_paths(parts: list[str]) -> list[str]:
    """The engine paths of the spellings of an attribute name split at its dots, nested first.

    In an engine path, keys are joined by ``.``; a dot inside a key is ``%2E`` and a ``%`` is
    ``%25`` (how the store writes them, store/attributes.py).
    """
    groupings = spellings(parts) if len(parts) <= MAX_SPELLED_PARTS else [parts, [".".join(parts)]]
    return [".".join(column_key(key).replace(".", "%2E") for key in keys) for keys in groupings]


def _path_sql(path: str) -> str:
    return quote_json_path("attributes", path.split("."))
