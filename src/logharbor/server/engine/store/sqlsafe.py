"""The one audited place where a name becomes part of SQL text.

User *values* never enter SQL text: they are passed as query parameters (``{p0:String}``).
Identifiers (column names, attribute paths, the table name from config) cannot be parameters, so
they are either checked against the schema or quoted here. Everything that builds SQL calls
these functions instead of formatting names itself; tests feed them hostile input.
"""

from __future__ import annotations

__all__ = ["SqlNameError", "quote_identifier", "quote_json_path", "quote_string"]


class SqlNameError(ValueError):
    """A name cannot be used as an identifier (empty, too long, or with a NUL byte)."""


_MAX_NAME = 256


def quote_identifier(name: str) -> str:
    """Quote one identifier for ClickHouse: backticks, with ``\\`` and `````` escaped.

    ClickHouse reads a backquoted identifier with C-style escapes, so escaping the backslash
    first and then the backtick leaves no way to close the quote early.
    """
    if not isinstance(name, str) or not name:
        raise SqlNameError("a name must be a non-empty string")
    if len(name) > _MAX_NAME:
        raise SqlNameError(f"a name must be at most {_MAX_NAME} characters")
    if "\x00" in name:
        raise SqlNameError("a name must not contain a NUL byte")
    escaped = name.replace("\\", "\\\\").replace("`", "\\`")
    return f"`{escaped}`"


def quote_json_path(column: str, path: list[str]) -> str:
    """``attributes.`a`.`b``` for a path into a JSON column, every part quoted.

    A JSON column keeps keys no identifier can spell (an empty key, a NUL, a key longer than an
    identifier may be): such a path is read as ``getSubcolumn(`attributes`, 'a.')``, the path in
    a string literal (:func:`quote_string`), which the engine resolves to the same subcolumn."""
    if not path:
        raise SqlNameError("a JSON path needs at least one part")
    if all(part and len(part) <= _MAX_NAME and "\x00" not in part for part in path):
        return ".".join([quote_identifier(column), *(quote_identifier(part) for part in path)])
    return f"getSubcolumn({quote_identifier(column)}, {quote_string('.'.join(path))})"


def quote_string(text: str) -> str:
    """A ClickHouse string literal holding exactly ``text`` (for the names of things, such as a
    JSON path; values are query parameters). Backslash first, then quote and NUL escaped."""
    if not isinstance(text, str):
        raise SqlNameError("a string literal needs a string")
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\x00", "\\0") + "'"
