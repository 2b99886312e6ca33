"""What a field name in a query means: a column of the store table or a path into ``attributes``.

The column list and types are read from ``server/engine/store/schema.sql`` itself, so the query language
can never drift from the table it runs against. Names resolve in this order: the time aliases
(``_time``, ``@timestamp``), a canonical column (``service``, ``http_status``), an ``http.*``
name or shorthand (``status`` → ``http_status``), and otherwise a path into ``attributes``
(``user_id``, ``order.items.sku``, or explicitly ``attributes.user_id``). Every identifier that
reaches SQL text comes from that column list or goes through
:func:`logharbor.server.engine.store.sqlsafe.quote_identifier` / ``quote_string``.

``attributes`` is the record's attributes as their exact JSON text (a String column,
docs/record.md). A path in it reads as its *text form* (:func:`text_sql`,
``JSONExtract(attributes, 'k1', 'k2', 'Nullable(String)')``: a string's content, a number's text,
``true``/``false``, an object's or array's JSON text, NULL for null or absent) and compares as a
number through ``toFloat64OrNull`` of that text. schema.sql may *promote* a top-level key: a
MATERIALIZED ``attr_<key>`` column holding exactly that text form (:func:`promoted_columns`), which
the compiler then reads instead of parsing every row's text (and whose skip indexes then apply).

A dotted attribute name matches every way a record can spell it, as Elasticsearch users expect:
``a.b`` is the nested path ``{"a": {"b": …}}`` and the literal key ``{"a.b": …}``; ``a.b.c`` also
``{"a.b": {"c": …}}`` and ``{"a": {"b.c": …}}``. Names of up to :data:`MAX_SPELLED_PARTS` parts get
every spelling; longer ones the nested path and the whole literal key. A filter matches when any
spelling does; a value shown, grouped or sorted by is the first spelling present, nested first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any, Literal

from logharbor import exactjson
from logharbor.record import HTTP_FIELDS
from logharbor.server.engine.store.attributes import EXACT_COLUMN, lookup, spellings
from logharbor.server.engine.store.sqlsafe import quote_identifier, quote_string

from .errors import UnknownFieldError

__all__ = ["MAX_SPELLED_PARTS", "FieldRef", "Kind", "attribute_keys", "attribute_value", "attributes_of",
           "field_text", "format_time_sql", "key_segment", "name_parts", "promoted_columns", "promoted_in",
           "quoted_keys", "resolve_field", "table_columns", "text_sql"]

Kind = Literal["text", "string", "int", "float", "time", "dynamic", "json"]
_COLUMN_NAME = re.compile(r"[a-z_][a-z0-9_]*")
_TIME_FORMAT = "%Y-%m-%dT%H:%i:%S.%fZ"
#: dotted names with at most this many parts match every spelling (2**(parts-1) paths)
MAX_SPELLED_PARTS = 5
#: the text form's type, as a promoted column may hold it
_TEXT_TYPE = r"(?:LowCardinality\(Nullable\(String\)\)|Nullable\(String\))"
#: a promoted column defined directly: ``attr_<x> <text type> MATERIALIZED JSONExtract(attributes,
#: '<key>', 'Nullable(String)')``
_PROMOTED = re.compile(
    rf"{_TEXT_TYPE}\s+MATERIALIZED\s+JSONExtract\(attributes,\s*'([^'\\]+)',\s*'Nullable\(String\)'\)")
#: a Tuple parsed from the text once per row: ``<col> Tuple(<key> <text type>, …) MATERIALIZED
#: JSONExtract(attributes, 'Tuple(…)')`` with the same element list (the engine reads each element
#: as that key's text form); its ``attr_<x> … ALIAS <col>.<key>`` columns are promoted columns
_PROMOTED_TUPLE = re.compile(r"(Tuple\((.*)\))\s+MATERIALIZED\s+JSONExtract\(attributes,\s*'(Tuple\(.*\))'\)")
_ALIAS = re.compile(rf"{_TEXT_TYPE}\s+ALIAS\s+([a-z_][a-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)")
_ELEMENT = re.compile(rf"([A-Za-z_][A-Za-z0-9_]*)\s+{_TEXT_TYPE}")


@dataclass(frozen=True)
class FieldRef:
    """A resolved field: the SQL expression reading it, its kind, and whether it may be NULL.

    ``text`` is the full-text ``message`` column; ``string`` columns use ``''`` for absent;
    ``dynamic`` is an attribute path read as its text form (NULL when absent or null).
    """

    name: str
    sql: str
    kind: Kind
    nullable: bool = False
    column: str = ""
    #: an attribute's keys, one tuple per spelling (nested first); empty for anything else
    paths: tuple[tuple[str, ...], ...] = ()
    #: whether a promoted ``attr_<key>`` column may stand for a one-key path: not where the SQL runs
    #: over rows that do not have those columns (a live-tail batch, a cold file)
    promoted: bool = True
    #: a name with backticks: exactly these keys (no other spelling, no key going on with a dot)
    quoted: bool = False

    def spellings(self) -> list[FieldRef]:
        """One ref per spelling of an attribute name (just this one when it has a single path)."""
        if len(self.paths) < 2:
            return [self]
        return [replace(self, sql=text_sql(p, promoted=self.promoted), paths=(p,)) for p in self.paths]

    @property
    def promoted_column(self) -> str | None:
        """The promoted column this one-spelling attribute path reads, if it reads one."""
        if len(self.paths) != 1 or not self.promoted:
            return None
        return promoted_columns().get(self.paths[0][0]) if len(self.paths[0]) == 1 else None

    @property
    def select_sql(self) -> str:
        """The expression to return to users (times as RFC 3339 text)."""
        return format_time_sql(self.sql) if self.kind == "time" else self.sql

    @property
    def group_sql(self) -> str:
        """The expression to group, dedup, sort or compare as text by: an attribute's text form
        with ``''`` when it is absent or null, as string columns have and as the JSON column's
        ``toString`` gave (so ``stats by``, ``top``, ``dedup``, ``sort`` and ``first`` answer as before)."""
        if self.kind == "dynamic":
            return f"ifNull({self.sql}, '')"
        return self.sql

    @property
    def number_sql(self) -> str | None:
        """The expression as a number, or None when the field is not numeric."""
        if self.kind in ("int", "float"):
            return self.sql
        if self.kind == "dynamic":
            return f"toFloat64OrNull({self.sql})"
        return None


def text_sql(keys: tuple[str, ...] | list[str], *, promoted: bool = True) -> str:
    """The text form of the attribute at ``keys`` (storage contract, ATTRTEXT §4): the promoted
    column when schema.sql has one for this one-key path, else one ``JSONExtract`` of the text.
    Keys go in as string literals quoted by sqlsafe, never pasted."""
    if promoted and len(keys) == 1:
        column = promoted_columns().get(keys[0])
        if column is not None:
            return quote_identifier(column)
    args = ", ".join(quote_string(k) for k in keys)
    return f"JSONExtract({quote_identifier('attributes')}, {args}, 'Nullable(String)')"


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


def _schema_lines() -> list[str]:
    """The column lines of schema.sql's table, stripped (indexes and comments left out)."""
    text = resources.files("logharbor.server.engine.store").joinpath("schema.sql").read_text(encoding="utf-8")
    out = []
    for line in text.split("{table} (", 1)[1].splitlines():
        stripped = line.strip()
        if stripped.startswith(")"):
            break
        if stripped and not stripped.startswith(("INDEX", "--", "PROJECTION")):
            out.append(stripped)
    return out


@cache
def table_columns() -> tuple[tuple[str, Kind, bool], ...]:
    """(name, kind, nullable) of every stored column in schema.sql, in table order: what
    ``SELECT *`` returns (MATERIALIZED and ALIAS columns are not part of a record)."""
    out: list[tuple[str, Kind, bool]] = []
    for stripped in _schema_lines():
        name, _, rest = stripped.partition(" ")
        if not _COLUMN_NAME.fullmatch(name):
            raise RuntimeError(f"schema.sql has a column line this module cannot read: {stripped!r}")
        if re.search(r"\s(MATERIALIZED|ALIAS)\s", f" {rest} "):
            continue
        sql_type = rest.strip().split(" CODEC", 1)[0].rstrip(",").strip()
        kind, nullable = _kind_of(sql_type)
        if name == "message":
            kind = "text"
        elif name == "attributes":
            kind = "json"
        out.append((name, kind, nullable))
    return tuple(out)


@cache
def promoted_columns() -> Mapping[str, str]:
    """Top-level attribute key → its promoted column, for the schema.sql columns that hold exactly
    the text form of that key: one MATERIALIZED ``JSONExtract(attributes, '<key>',
    'Nullable(String)')``, or an ALIAS of an element of a Tuple MATERIALIZED by ``JSONExtract``
    of the text into that same Tuple type (a column of any other definition is not used: the
    compiler may put one in place of the other only when they are the same value)."""
    return promoted_in(_schema_lines())


def promoted_in(lines: list[str]) -> dict[str, str]:
    """:func:`promoted_columns` of these column lines (schema.sql's, stripped)."""
    out: dict[str, str] = {}
    tuples: dict[str, set[str]] = {}
    aliases: list[tuple[str, str, str]] = []
    for stripped in lines:
        name, _, rest = stripped.partition(" ")
        definition = rest.strip().split(" CODEC", 1)[0].rstrip(",").strip()
        if (found := _PROMOTED.fullmatch(definition)) is not None and name.startswith("attr_"):
            out[found[1]] = name
        elif (found := _PROMOTED_TUPLE.fullmatch(definition)) is not None and found[1] == found[3]:
            elements = [e.strip() for e in found[2].split(",")]
            tuples[name] = {m[1] for e in elements if (m := _ELEMENT.fullmatch(e)) is not None}
        elif (found := _ALIAS.fullmatch(definition)) is not None and name.startswith("attr_"):
            aliases.append((name, found[1], found[2]))
    for name, source, key in aliases:
        if key in tuples.get(source, ()):
            out[key] = name
    return out


_SHORTHANDS = {name: f"http_{name}" for name in HTTP_FIELDS}
_TIME_ALIASES = {"_time": "timestamp", "@timestamp": "timestamp"}


def resolve_field(name: str, position: int | None = None, *, promoted: bool = True) -> FieldRef:
    """Resolve a user field name against the table (see the module docstring for the order).

    ``promoted=False`` reads every attribute from the text, for SQL that runs over rows without
    the promoted columns (live-tail batches, cold files)."""
    columns = {c[0]: c for c in table_columns()}
    target = _TIME_ALIASES.get(name, name)
    if target.startswith("http.") and target[5:] in HTTP_FIELDS:
        target = _SHORTHANDS[target[5:]]
    target = _SHORTHANDS.get(target, target)
    if target in columns and columns[target][1] != "json" and target != EXACT_COLUMN:
        col, kind, nullable = columns[target]
        return FieldRef(name, quote_identifier(col), kind, nullable, column=col)
    if "`" in name:
        return _quoted_field(name, position, promoted)
    parts = name.split(".")
    if parts[0] == "attributes":
        parts = parts[1:]
    if not parts or any(not p for p in parts):
        if name == "attributes":
            return FieldRef(name, quote_identifier("attributes"), "json", False, column="attributes")
        raise UnknownFieldError(f"{name!r} is not a usable field name", position)
    return _attribute_ref(name, attribute_keys(parts), promoted)


def _attribute_ref(name: str, paths: list[tuple[str, ...]], promoted: bool) -> FieldRef:
    sqls = [text_sql(keys, promoted=promoted) for keys in paths]
    sql = sqls[0] if len(sqls) == 1 else f"coalesce({', '.join(sqls)})"
    return FieldRef(name, sql, "dynamic", True, paths=tuple(paths), promoted=promoted)


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


def _quoted_field(name: str, position: int | None, promoted: bool) -> FieldRef:
    """A name with backticks: always a path into ``attributes``, exactly the keys written (one
    spelling: a quoted key's dots are part of the key)."""
    parts = quoted_keys(name)
    if parts is None:
        raise UnknownFieldError(f"{name!r} is not a usable field name (keys in backticks are joined "
                                "by '.', e.g. a.`b c`)", position)
    return replace(_attribute_ref(name, [tuple(parts)], promoted), quoted=True)


def attributes_of(text: str | None) -> dict[str, Any]:
    """A row's ``attributes`` text as the object it is, exactly ('' or NULL: no attributes)."""
    if not text:
        return {}
    out = exactjson.loads(text)
    if type(out) is not dict:
        raise ValueError(f"stored attributes are not a JSON object: {text[:80]!r}")
    return out


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


def attribute_keys(parts: list[str]) -> list[tuple[str, ...]]:
    """The keys of each spelling of an attribute name split at its dots, nested first (a key is
    exactly as written: no escaping, the text keeps ``a.b`` and ``a`` → ``b`` apart)."""
    groupings = spellings(parts) if len(parts) <= MAX_SPELLED_PARTS else [parts, [".".join(parts)]]
    return [tuple(keys) for keys in groupings]
