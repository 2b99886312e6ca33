"""Values as the embedded engine reads them: query parameters in escaped text form, and the
``SETTINGS`` clause of settings the server chooses (both used on every chDB connection)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from logharbor.server.engine.store.base import StoreError
from logharbor.types import SqlParams

__all__ = ["encode_params", "settings_clause"]

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def _quote_element(value: Any) -> str:
    """One array element in ClickHouse's quoted text form."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    raise StoreError(f"cannot pass a {type(value).__name__} inside an array parameter")


def encode_params(params: Mapping[str, Any]) -> SqlParams:
    """Query parameters as the engine reads them: in *escaped* text form.

    chDB (like ClickHouse's ``param_`` values) unescapes parameter text before parsing it as the
    parameter's type, so a backslash, tab or newline in a user's value would otherwise change
    meaning (``\\b`` in a regex became a backspace). Strings are escaped; lists become array
    literals with each element quoted (arrays are read as literals, not unescaped first).
    Callers pass plain values.
    """
    out: SqlParams = {}
    for name, value in params.items():
        if isinstance(value, str):
            out[name] = value.translate(_ESCAPES)
        elif isinstance(value, list | tuple):
            # an array parameter is read as an array literal directly: quoting is all it needs
            out[name] = "[" + ",".join(_quote_element(v) for v in value) + "]"
        else:
            out[name] = value
    return out


def settings_clause(settings: Mapping[str, Any] | None) -> str:
    """`SETTINGS k = v` for engine settings chosen by the server (names checked, values numeric)."""
    if not settings:
        return ""
    parts = []
    for name, value in settings.items():
        if not name.replace("_", "").isalnum():
            raise StoreError(f"bad setting name {name!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise StoreError(f"setting {name} must be a number")
        parts.append(f"{name} = {value!r}")
    return " SETTINGS " + ", ".join(parts)
