"""Per-request and per-task logging context, carried by one ``ContextVar``.

Why one variable holding an immutable mapping: the caller's hot path captures the whole context
with a single ``ContextVar.get()`` (tens of nanoseconds) and never copies it; binding, which is
rare, builds a new mapping. ``contextvars`` gives the right scoping for free: every asyncio task
starts with a copy of its creator's context, so values bound in one request never leak into
another, and a new thread starts empty.

The request identity (``trace_id``, ``span_id``, ``request_id``) lives in the same mapping under
those canonical names; the middleware sets it and :func:`bind` adds business attributes.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from logharbor.types import WireRecord

__all__ = [
    "IDENTITY_FIELDS",
    "bind",
    "context",
    "current",
    "get_context",
    "new_request_id",
    "new_span_id",
    "new_trace_id",
    "reset",
    "unbind",
]

#: Keys of the context that become canonical record fields instead of attributes.
IDENTITY_FIELDS = ("trace_id", "span_id", "request_id")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar(
    "logharbor_context", default=_EMPTY
)
#: The fast accessor the handler calls on every record (bound method: no attribute lookups).
current = _context.get


def bind(**values: Any) -> contextvars.Token[Mapping[str, Any]]:
    """Add fields to every record logged from this task/thread from now on.

    Returns a token; ``reset(token)`` restores what was bound before (what :func:`context` does
    for a block). Binding ``None`` removes a key.
    """
    merged = dict(_context.get())
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return _context.set(MappingProxyType(merged))


def unbind(*keys: str) -> None:
    """Remove the given keys from the context (all keys when called with none)."""
    if not keys:
        _context.set(_EMPTY)
        return
    merged = dict(_context.get())
    for key in keys:
        merged.pop(key, None)
    _context.set(MappingProxyType(merged))


def reset(token: contextvars.Token[Mapping[str, Any]]) -> None:
    """Restore the context that was current when ``token`` was returned by :func:`bind`."""
    _context.reset(token)


@contextmanager
def context(**values: Any) -> Iterator[Mapping[str, Any]]:
    """Bind ``values`` for the duration of a ``with`` block, then restore the previous context."""
    token = bind(**values)
    try:
        yield _context.get()
    finally:
        _context.reset(token)


def get_context() -> WireRecord:
    """A copy of the current context (identity and bound attributes)."""
    return dict(_context.get())


def new_trace_id() -> str:
    """A random W3C trace id (32 lowercase hex, never all zero)."""
    while True:
        value = os.urandom(16).hex()
        if value != "0" * 32:
            return value


def new_span_id() -> str:
    """A random W3C span (parent) id (16 lowercase hex, never all zero)."""
    while True:
        value = os.urandom(8).hex()
        if value != "0" * 16:
            return value


def new_request_id() -> str:
    """A random request id in the form NGINX's ``$request_id`` uses (32 lowercase hex)."""
    return os.urandom(16).hex()
