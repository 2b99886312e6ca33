"""The C normaliser (``logharbor._native.rowc``, ``_native/rowc.c``) with its per-line fallback.

``rowc.decode`` turns the lines of a body it is sure of into store rows with the GIL released and
hands back every other line ("not mine": anything unusual, and every line that is an error) with
where its row goes. Those lines go through the compiled copy of the reference loop
(``ndjson.decode_ndjson_payload``) one at a time, so their rows and errors are the reference's
own. The per-message pattern ids the C cache does not hold yet are computed here by the rows
module's ``_sid`` (the same function and cache as the Python path) and remembered by the C cache,
keyed by the texts as the row holds them. docs/architecture.md "The compiled normaliser".
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import orjson

from logharbor.server.ingest.base import RecordLimits
from logharbor.types import RawRecord

__all__ = ["RowcDecoder"]

Payload = tuple[bytes, int, list[tuple[int, str]]]


class RowcDecoder:
    """``decode`` has ``decode_ndjson_payload``'s signature and gives its very bytes and errors."""

    def __init__(self, rowc: ModuleType, fallback: Callable[..., Payload], rows: ModuleType) -> None:
        self._rowc = rowc
        self._fallback = fallback
        self._rows = rows  # the encoder module the fallback uses: its pattern switch and _sid
        #: lines taken by the C path and lines handed back, since start (the fast-path share)
        self.taken = 0
        self.handed_back = 0

    def decode(self, body: bytes, received_ns: int, limits: RecordLimits, defaults: RawRecord | None,
               tenant: str | None) -> Payload:
        """The rows of ``body``'s good lines joined by newlines, how many, and (line, error) pairs."""
        if defaults or type(limits) is not RecordLimits or not 0 <= received_ns < 1 << 63:
            return self._fallback(body, received_ns, limits, defaults, tenant)  # rare: all in Python
        tenant_text = None
        if tenant is not None:
            try:
                tenant_text = orjson.dumps(tenant)[1:-1]
            except TypeError:  # a lone surrogate: the reference says what becomes of it
                return self._fallback(body, received_ns, limits, defaults, tenant)
        rows, accepted, fallbacks, misses = self._rowc.decode(
            body, received_ns, limits.max_line_bytes, limits.max_fields, limits.max_field_bytes,
            limits.max_depth, tenant_text, bool(self._rows._patterns))
        if misses:
            self._fill_ids(rows, misses)
        self.taken += accepted
        if not fallbacks:
            return (bytes(memoryview(rows)[:-1]) if accepted else b""), accepted, []
        self.handed_back += len(fallbacks)
        view = memoryview(rows)
        parts: list[Any] = []
        errors: list[tuple[int, str]] = []
        prev = 0
        for number, offset, start, end in fallbacks:
            parts.append(view[prev:offset])
            prev = offset
            # alone in a body of its own, as line 2: a byte order mark there is the line's own
            row, ok, errs = self._fallback(b"\n" + body[start:end], received_ns, limits, None, tenant)
            if ok:
                parts.append(row)
                parts.append(b"\n")
                accepted += ok
            errors.extend((number, error) for _, error in errs)
        parts.append(view[prev:])
        out = b"".join(parts)
        return (out[:-1] if accepted else b""), accepted, errors

    def _fill_ids(self, rows: bytearray, misses: list[tuple[int, ...]]) -> None:
        """Write the pattern ids the C cache missed (the Python path's ``_sid``) and remember them."""
        sid_of = self._rows._sid
        loads = orjson.loads
        remember = self._rowc.remember
        for hole, t0, t1, s0, s1, m0, m1 in misses:
            tenant_text = bytes(rows[t0:t1]) if t0 >= 0 else None
            service_text, message_text = bytes(rows[s0:s1]), bytes(rows[m0:m1])
            tenant = loads(b'"' + tenant_text + b'"') if tenant_text is not None else None
            service, message = loads(b'"' + service_text + b'"'), loads(b'"' + message_text + b'"')
            sid = sid_of(tenant, service, message).encode()
            rows[hole:hole + 16] = sid
            own = tenant_text if tenant_text is not None else b"\x01"  # none: a byte no text holds
            remember(own + b'"' + service_text + b'"' + message_text, sid)
