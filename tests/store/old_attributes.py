"""The attribute split of the release before text attributes: a frozen copy of
src/logharbor/server/engine/store/attributes.py at cd1aa9a (before issue #24), used only to write
tables and cold files of the old layout that the migration tests migrate. Do not edit: it is what
old servers wrote."""
# ruff: noqa

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

from logharbor import exactjson
from logharbor.record import RecordError
from logharbor.types import Attributes, JsonObject, StoreRow

__all__ = ["ENGINE_SETTINGS", "EXACT_COLUMN", "column_key", "lookup", "path_name", "put", "read", "spellings",
           "split", "with_settings"]

EXACT_COLUMN = "attributes_exact"

#: engine settings every connection of both stores uses, so an insert, a cast of cold-file text
#: and a query all read attribute JSON the same way: no type inference of date-like strings, and
#: literal dots in keys kept apart from nesting (escaped as ``%2E`` inside, shown as ``.``)
ENGINE_SETTINGS: dict[str, int] = {
    "input_format_try_infer_dates": 0,
    "input_format_try_infer_datetimes": 0,
    "json_type_escape_dots_in_keys": 1,
}

_INT_MIN = -(2**63)
_UINT_MAX = 2**64 - 1
_INFINITE = (math.inf, -math.inf)
_NONE = type(None)
_FLOAT_INT = 2**53  # the largest integer every double below it can hold


def with_settings(target: str) -> str:
    """A chDB connection string with :data:`ENGINE_SETTINGS` applied to that connection."""
    query = "&".join(f"{name}={value}" for name, value in ENGINE_SETTINGS.items())
    return f"{target}{'&' if '?' in target else '?'}{query}"


def column_key(key: str) -> str:
    """A key as the JSON column holds it (``%`` written ``%25``; the engine itself escapes dots)."""
    return key.replace("%", "%25") if "%" in key else key


def path_name(path: str) -> str:
    """An engine path (``JSONAllPaths``) as the dotted name a query uses (``a%2Eb`` → ``a.b``)."""
    return path.replace("%2E", ".").replace("%25", "%") if "%" in path else path


def split(attributes: Mapping[Any, Any], *, careful: bool = False
          ) -> tuple[Mapping[str, Any], JsonObject]:
    """``(what the JSON column gets, the patch)``; the patch is empty when the column is exact.

    Without ``careful`` an int is taken to fit 64 bits (orjson refuses to write one that does
    not, and the caller then asks again with ``careful``). Raises :class:`RecordError` when two
    keys of one object are the same once written as text (``1`` and ``"1"`` from msgpack).
    """
    if not careful:  # the usual record: flat, strings and numbers (the plain loop is the fastest)
        patch: JsonObject = {}
        for key, value in attributes.items():
            kind = type(value)
            if kind is str or kind is int or kind is bool:
                continue
            if kind is float:  # only an integral (13.0) or non-finite float needs the exact copy
                if value.is_integer() or value != value or value in _INFINITE:
                    patch[key] = value
                continue
            break  # an object, an array, a null: the careful way
        else:
            try:
                if "%" not in "".join(attributes):
                    return attributes, patch
            except TypeError:  # a key that is not a string (msgpack): the careful way
                pass
    if _has_non_str_key(attributes):
        attributes = _textual(attributes)
    patch = {k: v for k, v in attributes.items() if "%" in k or not _column_keeps(v)}
    if not patch:
        return attributes, patch
    if any("%" in k or _has_percent_key(v) for k, v in patch.items()):
        return {column_key(k): _column_form(v) for k, v in attributes.items()}, patch
    return attributes, patch


def put(row: StoreRow, attributes: Mapping[Any, Any], *, careful: bool = False) -> None:
    """Set the ``attributes`` (and, when needed, ``attributes_exact``) columns of ``row``."""
    column, patch = split(attributes, careful=careful)
    row["attributes"] = column
    if patch:
        row[EXACT_COLUMN] = exactjson.dumps(patch).decode()
    else:
        row.pop(EXACT_COLUMN, None)


def read(column: Mapping[str, Any] | None, exact: str | None) -> Attributes:
    """The attributes of a stored row: the JSON column's object with the patch laid over it."""
    attributes = dict(column) if column else {}
    if not exact:
        return attributes
    patch = exactjson.loads(exact)
    if any("%" in k for k in attributes):  # names the column had to encode: the patch has them
        attributes = {k: v for k, v in attributes.items() if "%" not in k}
    attributes.update(patch)
    return attributes


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


# -- what the JSON column keeps ----------------------------------------------------------------


def _column_keeps(value: Any) -> bool:
    """Whether the JSON column gives ``value`` back unchanged (see the module docstring)."""
    kind = type(value)
    if kind is str or kind is bool:
        return True
    if kind is int:
        return _INT_MIN <= value <= _UINT_MAX
    if kind is float:
        return math.isfinite(value) and not value.is_integer()
    if kind is dict:
        return bool(value) and all("%" not in k and _column_keeps(v) for k, v in value.items())
    if kind is list:
        leaves: set[type] = set()
        # an array of nothing but nulls is read as strings, and an array type an earlier row
        # set for the path may turn its nulls into [] or {}
        return _array_keeps(value, leaves) and leaves != {_NONE}
    return False  # None, and anything that is not JSON


def _array_keeps(items: list[Any], leaves: set[type]) -> bool:
    """An array is kept when its elements are all arrays or all of one other kind (nulls beside
    scalars allowed), and the scalars at every depth are of one kind (the engine unifies them).

    Integers in an array are kept only up to 2**53: the engine reads an array of ints into the
    array-of-floats type an earlier row in the same insert gave the path, if there is one.
    """
    kinds = {type(x) for x in items}
    if _NONE in kinds:
        kinds.discard(_NONE)
        leaves.add(_NONE)
        if kinds & {list, dict}:
            return False
    if len(kinds) > 1:
        return False
    if not kinds:
        return True
    kind = kinds.pop()
    if kind is list:
        return all(_array_keeps(x, leaves) for x in items)
    leaves.add(kind)
    if len(leaves - {_NONE}) > 1:
        return False
    if kind is int:
        return all(x is None or -_FLOAT_INT <= x <= _FLOAT_INT for x in items)
    return all(x is None or _column_keeps(x) for x in items)


def _has_percent_key(value: Any) -> bool:
    if type(value) is dict:
        return any("%" in k or _has_percent_key(v) for k, v in value.items())
    if type(value) is list:
        return any(_has_percent_key(v) for v in value)
    return False


def _column_form(value: Any) -> Any:
    """``value`` with the ``%`` of every key written ``%25`` (only for values that have one)."""
    if type(value) is dict:
        return {column_key(k): _column_form(v) for k, v in value.items()}
    if type(value) is list:
        return [_column_form(v) for v in value]
    return value


def _has_non_str_key(value: Any) -> bool:
    if type(value) is dict:
        return any(type(k) is not str or _has_non_str_key(v) for k, v in value.items())
    if type(value) is list:
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
    if type(value) is list:
        return [_textual(v) for v in value]
    return value
