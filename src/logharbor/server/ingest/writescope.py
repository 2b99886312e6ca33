"""What a scoped key may write: each store row's tenant and service, checked before the WAL.

A key scoped to services (``checkout``, ``api``) may write records of those services only, as an
Elasticsearch API key with index privileges writes only to its indices; a key scoped to a tenant
writes only into its tenant (the encoders stamp the key's tenant on every record; the check here
holds them to it). The check reads the rows every protocol makes, the very bytes the WAL gets, so
no decoder can bypass it: not the C normaliser (``rowc``), not a parser or an adapter that sets
the service from labels, resource attributes or an index. A refused row is one refused item in
the protocol's own terms (an NDJSON line, a ``_bulk`` item, a Loki entry, an OTLP record); the
rows beside it are stored. An unscoped key checks nothing (:func:`write_scope` is None).

A row's ``service`` and ``tenant`` are found by a byte search where that is exact, and read with
orjson otherwise (see :func:`row_scope`).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from logharbor.server.meta.keys import Principal
from logharbor.server.scopes import Scope

__all__ = ["WriteScope", "item_numbers", "row_lines", "row_scope", "write_scope"]

_SERVICE = b',"service":"'
_TENANT = b',"tenant":"'
_ATTRIBUTES = b',"attributes":'


def _text(row: bytes, start: int) -> bytes | None:
    """The raw JSON text of the string that starts at ``start`` (after its quote), or None when
    it holds an escape (then only a JSON reader knows its value)."""
    end = row.find(b'"', start)
    if end < 0:
        return None
    text = row[start:end]
    return None if b"\\" in text else text


def row_scope(row: bytes) -> tuple[bytes | str | None, bytes | str | None]:
    """``(tenant, service)`` of a store row: raw JSON text (bytes) when found by the byte search,
    decoded ``str`` when the row had to be read, None when the row has none.

    Why the byte search is exact: inside a JSON string a quote is always escaped, so
    ``,"service":"`` is a key wherever it occurs; it is a key of the row itself (not of a nested
    object) when no ``{`` or ``[`` comes before it. ``attributes`` is the only column that holds
    objects, so a ``,"tenant":"`` before the first ``,"attributes":`` is the row's own. Anything
    else (an escape in the value, a row of another shape) is read by orjson.
    """
    at = row.find(_SERVICE)
    if at > 0 and row.find(b"{", 1, at) < 0 and row.find(b"[", 1, at) < 0:
        service = _text(row, at + len(_SERVICE))
        if service is not None:
            attributes = row.find(_ATTRIBUTES, at)
            tenant_at = row.find(_TENANT, at, attributes if attributes >= 0 else len(row))
            if tenant_at < 0:
                return None, service
            tenant = _text(row, tenant_at + len(_TENANT))
            if tenant is not None:
                return tenant, service
    try:
        obj = orjson.loads(row)
    except orjson.JSONDecodeError:  # no row of ours; refused, as a row without a scope
        return None, None
    if not isinstance(obj, dict):
        return None, None
    return obj.get("tenant"), obj.get("service")


class WriteScope:
    """The tenant and services a key writes into, and the check of one row against them."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._names = frozenset(scope.services or ())
        # the JSON text of each allowed name as a row holds it (orjson writes UTF-8 as is): a row's
        # raw text without an escape equals one of these exactly when its name is allowed
        self._texts = frozenset(orjson.dumps(s)[1:-1] for s in self._names)
        self._tenant_text = orjson.dumps(scope.tenant)[1:-1] if scope.tenant is not None else None

    def refusal(self, row: bytes) -> str | None:
        """Why ``row`` is outside the scope (naming its service or tenant and the scope), or None."""
        tenant, service = row_scope(row)
        if self.scope.tenant is not None and tenant not in (self._tenant_text, self.scope.tenant):
            shown = tenant.decode() if isinstance(tenant, bytes) else tenant
            return f"tenant {shown!r} is outside this key's scope ({self.scope.describe()})"
        if self.scope.services is not None and service not in self._texts and service not in self._names:
            shown = service.decode() if isinstance(service, bytes) else service
            hint = "; a record that names no service is stored as 'unknown'" if shown == "unknown" else ""
            return f"service {shown!r} is outside this key's scope ({self.scope.describe()}){hint}"
        return None

    def sift(self, rows: Iterable[bytes]) -> tuple[list[bytes], list[tuple[int, str]]]:
        """The rows inside the scope, and ``(index, reason)`` (0-based, in order) for the others."""
        kept: list[bytes] = []
        refused: list[tuple[int, str]] = []
        for index, row in enumerate(rows):
            reason = self.refusal(row)
            if reason is None:
                kept.append(row)
            else:
                refused.append((index, reason))
        return kept, refused

    def sift_payload(self, payload: bytes, count: int) -> tuple[bytes, int, list[tuple[int, str]]]:
        """:meth:`sift` on rows joined by newlines (``count`` of them): the kept rows joined, how
        many, and the refused ones. The payload comes back as it was when nothing is refused."""
        if not count:
            return payload, 0, []
        rows = payload.split(b"\n")  # a row never holds a newline (JSON escapes it)
        kept, refused = self.sift(rows)
        if not refused:
            return payload, count, []
        return b"\n".join(kept), len(kept), refused


def write_scope(principal: Principal | None) -> WriteScope | None:
    """The check a caller's writes go through; None for an unscoped key (or with auth off)."""
    if principal is None or not principal.scoped:
        return None
    return WriteScope(principal.scope)


def item_numbers(items: int, failed: Iterable[int]) -> list[int]:
    """The numbers (1-based) of the items that made rows, in order: every item makes a row or
    one error, so these are the numbers no error names (Loki entries)."""
    errors = set(failed)
    return [n for n in range(1, items + 1) if n not in errors]


def row_lines(body: bytes, failed: Iterable[int]) -> list[int]:
    """The line numbers (1-based) of an NDJSON body whose lines made rows, in order.

    The NDJSON decoders (``ingest/ndjson.py`` and the C and compiled copies held to it) give each
    line a row or one error, except blank lines, which give neither; a byte order mark opening
    the body is not part of line 1."""
    if body[:3] == b"\xef\xbb\xbf":
        body = body[3:]
    errors = set(failed)
    return [n for n, line in enumerate(body.split(b"\n"), start=1) if n not in errors and line.strip()]
