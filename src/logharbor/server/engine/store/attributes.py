"""How a record's attributes are stored: their JSON text, exactly as the encoder wrote it.

A row's ``attributes`` column is ``String`` (schema.sql). The encoder (store/rows.py) writes the
attributes object inside the JSONEachRow line (orjson; :mod:`logharbor.exactjson` for integers
beyond 64 bits; keys in the order sent), and every insert and every read of rows as a table sets
``input_format_json_read_objects_as_strings = 1`` (:data:`ENGINE_SETTINGS`), so the engine keeps
the object's text byte for byte. Exactness is therefore a property of the storage: ``13.0``,
``-0.0``, ``null``, ``{}``, ``2**70``, ``[true, 1]`` and any key (``%``, dots) come back as sent,
with no second copy and no key escaping (measured: insert CPU ×0.52 of the JSON column's,
bench/README.md "Attribute storage, side by side").

Tables made before this release held ``attributes JSON`` plus ``attributes_exact`` (the *patch*:
the top-level attributes the JSON column would alter, exactly) and wrote ``%`` in keys as
``%25``. :func:`read` still reads such rows (old cold Parquet files, and the migration of an old
table, store/attrmigrate.py); nothing writes them any more.

The hottest top-level attributes are also *promoted* columns (``attr_<key>``, MATERIALIZED from
the text at insert, :data:`PROMOTED`), so a search or a group-by on them reads one small column
instead of parsing every row's text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from importlib import resources
from typing import Any

import orjson

from logharbor import exactjson
from logharbor.record import RecordError
from logharbor.server.engine.store.sqlsafe import quote_identifier, quote_string
from logharbor.types import Attributes, JsonObject

__all__ = ["ENGINE_SETTINGS", "EXACT_COLUMN", "INSERT_SETTINGS", "PROMOTED", "column_key", "lookup",
           "path_name", "promoted", "promoted_sql", "read", "spellings", "text_keys", "with_settings"]

#: the old tables' patch column (see the module docstring); read, never written
EXACT_COLUMN = "attributes_exact"

#: engine settings every connection of both stores uses, so an insert, a live-tail batch read
#: with ``format(JSONEachRow, …)``, a cold file and a query all read rows the same way: an
#: attributes object into a String column as its text, byte for byte; and, for the JSON columns
#: of tables and cold files made by older releases, no type inference of date-like strings and
#: literal dots in keys kept apart from nesting
ENGINE_SETTINGS: dict[str, int] = {
    "input_format_json_read_objects_as_strings": 1,
    "input_format_try_infer_dates": 0,
    "input_format_try_infer_datetimes": 0,
    "json_type_escape_dots_in_keys": 1,
}

#: settings of every insert of rows into a logs table (both stores). The engine's default
#: (``input_format_skip_unknown_fields = 1``) silently drops a field the table has no column
#: for: a newer server writing to a table an older release made would lose that value with an
#: OK. With 0 such an insert fails, naming the field, and nothing of the batch is stored (the
#: batcher then sets the rows carrying it aside in the WAL's quarantine, engine/refused.py, and
#: stores the rest: kept and listed, never dropped); the stores also compare the
#: table's columns with what the encoder writes at start (store/columns.py).
INSERT_SETTINGS: dict[str, int] = {
    "input_format_skip_unknown_fields": 0,
    "input_format_json_read_objects_as_strings": 1,
}


def with_settings(target: str) -> str:
    """A chDB connection string with :data:`ENGINE_SETTINGS` applied to that connection."""
    query = "&".join(f"{name}={value}" for name, value in ENGINE_SETTINGS.items())
    return f"{target}{'&' if '?' in target else '?'}{query}"


# -- promoted columns ---------------------------------------------------------------------------

_PROMOTED_LINE = re.compile(r"^\s*(attr_\w+)\s+[^\n]*?\bALIAS\s+attr_promoted\.(\w+)\s*,?\s*$", re.M)


@cache
def _promoted() -> dict[str, str]:
    text = resources.files("logharbor.server.engine.store").joinpath("schema.sql").read_text()
    return {key: column for column, key in _PROMOTED_LINE.findall(text)}


#: top-level attribute key → its promoted column (``attr_<key>``, an ALIAS of the ``attr_promoted``
#: Tuple's element, parsed once per row at insert), read from schema.sql itself: the column holds
#: exactly ``JSONExtract(attributes, '<key>', 'Nullable(String)')``, the text form of that one-key
#: path (a string's content, a number's text, JSON text of an object or array, NULL for null or
#: absent), so a compiler may use it wherever it would write that expression
PROMOTED: Mapping[str, str] = _promoted()


def promoted_sql() -> list[str]:
    """``<text form of key> AS attr_<key>`` for every promoted key: how rows read as a table from
    JSONEachRow text (a live-tail batch, quarantined lines), where the table's computed columns do
    not exist, get them, exactly as the table computes them."""
    return [f"JSONExtract(`attributes`, {quote_string(key)}, 'Nullable(String)') "
            f"AS {quote_identifier(column)}" for key, column in PROMOTED.items()]


def promoted(keys: list[str] | tuple[str, ...]) -> str | None:
    """The promoted column holding the text form of the key path ``keys``, if there is one."""
    return PROMOTED.get(keys[0]) if len(keys) == 1 else None


# -- writing ------------------------------------------------------------------------------------


def text_keys(attributes: Mapping[Any, Any]) -> Mapping[str, Any]:
    """``attributes`` with every key as text, at every depth (msgpack and forward can send
    ``1`` or ``True`` as a key); two keys alike as text are the record's error, never a row
    whose text has one key twice. The common record (string keys) comes back as it is."""
    if not _has_non_str_key(attributes):
        return attributes
    return _textual(attributes)


def _has_non_str_key(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(type(k) is not str or _has_non_str_key(v) for k, v in value.items())
    if type(value) is list or type(value) is tuple:
        return any(_has_non_str_key(v) for v in value)
    return False


def _key_text(key: Any) -> str:
    """A key as orjson writes it (``1`` → ``"1"``, ``True`` → ``"true"``)."""
    if type(key) is str:
        return key
    try:
        return next(iter(orjson.loads(orjson.dumps({key: 0}, option=orjson.OPT_NON_STR_KEYS))))
    except TypeError:
        raise RecordError(f"a key of type {type(key).__name__} cannot be written as JSON") from None


def _textual(value: Any) -> Any:
    """``value`` with every key as text; two keys alike as text are the record's error."""
    if isinstance(value, Mapping):
        out: JsonObject = {}
        for k, v in value.items():
            text = _key_text(k)
            if text in out:
                raise RecordError(f"two keys of one object are both {text!r} when written as JSON")
            out[text] = _textual(v)
        return out
    if type(value) is list or type(value) is tuple:
        return [_textual(v) for v in value]
    return value


# -- reading ------------------------------------------------------------------------------------


def read(column: str | Mapping[str, Any] | None, exact: str | None = None) -> Attributes:
    """The attributes of a stored row.

    ``column`` is the ``attributes`` column as read: its text ('' → no attributes), or, from a
    table or cold file of an older release, the JSON column's object (or its text) with
    ``exact`` its patch, laid over it (its ``%`` keys dropped: their true spelling is in the patch).
    """
    if isinstance(column, str):
        attributes: Attributes = exactjson.loads(column) if column else {}
        if type(attributes) is not dict:
            raise ValueError(f"stored attributes are not a JSON object: {column[:80]!r}")
    else:
        attributes = dict(column) if column else {}
    if not exact:
        return attributes
    patch = exactjson.loads(exact)
    if any("%" in k for k in attributes):
        attributes = {k: v for k, v in attributes.items() if "%" not in k}
    attributes.update(patch)
    return attributes


def column_key(key: str) -> str:
    """A key as an old JSON column held it (``%`` written ``%25``; the engine escaped dots)."""
    return key.replace("%", "%25") if "%" in key else key


def path_name(path: str) -> str:
    """An old JSON column's engine path (``JSONAllPaths``) as the dotted name a query uses
    (``a%2Eb`` → ``a.b``): old cold files and tables not migrated yet."""
    return path.replace("%2E", ".").replace("%25", "%") if "%" in path else path


def spellings(parts: list[str]) -> list[list[str]]:
    """Every way to group the parts of a dotted name into keys, nested first: ``a.b.c`` is
    ``[a, b, c]``, ``[a, "b.c"]``, ``["a.b", c]``, ``["a.b.c"]``."""
    if len(parts) <= 1:
        return [list(parts)]
    out = []
    for cut in range(1, len(parts) + 1):
        head = ".".join(parts[:cut])
        out.extend([head, *rest] for rest in (spellings(parts[cut:]) if cut < len(parts) else [[]]))
    return out


def lookup(attributes: Mapping[str, Any], name: str) -> Any:
    """The value of a dotted name in a record's attributes: the first spelling present (None if none)."""
    for keys in spellings(name.split(".")):
        node: Any = attributes
        for key in keys:
            if not isinstance(node, Mapping) or key not in node:
                break
            node = node[key]
        else:
            if node is not None:
                return node
    return None


