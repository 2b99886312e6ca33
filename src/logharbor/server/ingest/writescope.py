"""What a key scoped to services may write: each store row's service, checked before the WAL.

A key scoped to services (``checkout``, ``api``) may write records of those services only, as an
Elasticsearch API key with index privileges writes only to its indices. The check reads the rows
every protocol makes, the very bytes the WAL gets, so no decoder can bypass it: not the C
normaliser (``rowc``), not a parser or an adapter that sets the service from labels, resource
attributes or an index. A refused row is one refused item in the protocol's own terms (an NDJSON
line, a ``_bulk`` item, a Loki entry, an OTLP record); the rows beside it are stored. A key
without a service list checks nothing (:func:`write_scope` is None): its tenant, if it has one,
is stamped on every row by the encoders themselves (``encode_record(…, tenant=…)``, rowc's
``tenant``), whatever the record says.

A row's ``service`` is found by a byte search where that is exact, and read with orjson
otherwise (see :func:`row_service`).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from logharbor.server.meta.keys import Principal
from logharbor.server.scopes import Scope

__all__ = ["WriteScope", "item_numbers", "row_lines", "row_service", "write_scope"]

_SERVICE = b',"service":"'


def row_service(row: bytes) -> bytes | str | None:
    """The ``service`` of a store row: its raw JSON text (bytes) when the byte search finds it,
    the decoded ``str`` when the row had to be read, None when the row has none.

    Why the byte search is exact: inside a JSON string a quote is always escaped, so
    ``,"service":"`` is a key wherever it occurs, and it is a key of the row itself (not of a
    nested object) when no ``{`` comes before it (a key is always in an object, and an array
    holds one only inside an object it opens with ``{``); its value is the text up to the next
    quote when that holds no backslash. Anything else (an escape in the value, a row of another
    shape) is read by orjson.
    """
    at = row.find(_SERVICE)
    if at > 0 and row.find(b"{", 1, at) < 0:
        start = at + len(_SERVICE)
        end = row.find(b'"', start)
        text = row[start:end]
        if end > 0 and b"\\" not in text:
            return text
    try:
        obj = orjson.loads(row)
    except orjson.JSONDecodeError:  # no row of ours: refused, as a row without a service
        return None
    service = obj.get("service") if isinstance(obj, dict) else None
    return service if isinstance(service, str) else None  # anything else is no service


class WriteScope:
    """The services a key writes, and the check of one row against them."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self._names = frozenset(scope.services or ())
        # the JSON text of each allowed name as a row holds it (orjson writes UTF-8 as is): a row's
        # raw text without an escape equals one of these exactly when its name is allowed
        self._texts = frozenset(orjson.dumps(s)[1:-1] for s in self._names)
        self._quoted = tuple(text + b'"' for text in self._texts)

    def refusal(self, row: bytes) -> str | None:
        """Why ``row`` is outside the scope (naming its service and the scope), or None."""
        service = row_service(row)
        if service in self._texts or service in self._names:
            return None
        shown = service.decode() if isinstance(service, bytes) else service
        hint = "; a record that names no service is stored as 'unknown'" if shown == "unknown" else ""
        return f"service {shown!r} is outside this key's scope ({self.scope.describe()}){hint}"

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

    def _all_inside(self, rows: list[bytes]) -> bool:
        """Whether every row's service is allowed, by :func:`row_service`'s byte search alone (the
        usual case, in three steps a row); False sends the rows to :meth:`sift`, which says which.

        A name's JSON text and its closing quote found where the value starts is the whole value:
        a quote inside a value is escaped, and no name's text ends in the odd run of backslashes
        that would escape the quote after it. (No ``[`` check: an array holds a key only inside
        an object, which a ``{`` opens.)"""
        quoted = self._quoted
        for row in rows:
            at = row.find(_SERVICE)
            if at < 1 or row.find(b"{", 1, at) >= 0 or not row.startswith(quoted, at + len(_SERVICE)):
                return False
        return True

    def sift_payload(self, payload: bytes, count: int) -> tuple[bytes, int, list[tuple[int, str]]]:
        """:meth:`sift` on rows joined by newlines (``count`` of them): the kept rows joined, how
        many, and the refused ones. The payload comes back as it was when nothing is refused."""
        if not count:
            return payload, 0, []
        rows = payload.split(b"\n")  # a row never holds a newline (JSON escapes it)
        if self._all_inside(rows):
            return payload, count, []
        kept, refused = self.sift(rows)
        if not refused:
            return payload, count, []
        return b"\n".join(kept), len(kept), refused


def write_scope(principal: Principal | None) -> WriteScope | None:
    """The check a caller's writes go through; None for a key without a service list (or with
    auth off)."""
    if principal is None or principal.services is None:
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
