"""Native ingest: ``POST /api/v1/logs`` with an NDJSON body, one record per line.

Each line is decoded, normalized and encoded on its own, so a bad line is rejected with its
line number and reason while every good line beside it is kept. The answer comes only after the
good lines are fsync'd in the WAL: ``{"accepted": N, "rejected": [{"line": k, "error": "…"}]}``.
"""

from __future__ import annotations

import time

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse

from logharbor.server.auth import principal_of
from logharbor.server.errors import ApiError
from logharbor.server.ingest import decoder
from logharbor.server.ingest.base import Ingestor, ItemError, RecordLimits, line_count, read_body
from logharbor.server.ingest.decoder import decode_ndjson_payload
from logharbor.server.ingest.retries import REPLAYED
from logharbor.server.ingest.writescope import row_lines, write_scope
from logharbor.types import RawRecord

__all__ = ["NativeIngest", "decode_ndjson"]

#: bodies above this are decoded on a worker thread so the event loop keeps answering
_INLINE_BYTES = 64 * 1024


def decode_ndjson(
    body: bytes, *, received_ns: int, limits: RecordLimits, defaults: RawRecord | None = None,
    tenant: str | None = None,
) -> tuple[list[bytes], list[ItemError]]:
    """Store rows for the good lines and an error for each bad one (1-based line numbers)."""
    payload, accepted, errors = decode_ndjson_payload(body, received_ns, limits, defaults, tenant)
    rows = payload.split(b"\n") if accepted else []  # a row never holds a newline (JSON escapes it)
    return rows, [ItemError(line, error) for line, error in errors]


class NativeIngest:
    """The native NDJSON protocol."""

    name = "native"

    def __init__(self, *, max_body_bytes: int, limits: RecordLimits, max_records: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.limits = limits
        self.max_records = max_records

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/api/v1/logs", self.ingest, methods=["POST"], tags=["ingest"],
                             summary="Ingest NDJSON records")
        return router

    async def ingest(self, request: Request) -> JSONResponse:
        """Decode, normalize and durably store an NDJSON body; report bad lines by number.

        With ``Idempotency-Key``, a retry of a stored body stores nothing and gets the same answer
        (recomputed from the body) with ``Idempotent-Replayed: true``.
        """
        body = await read_body(request, limit=self.max_body_bytes)
        lines = line_count(body)
        if lines > self.max_records:
            raise ApiError(413, "too_many_records",
                           f"{lines} lines in one request, over the limit of {self.max_records}")
        received = time.time_ns()
        principal = principal_of(request)
        tenant = principal.tenant if principal is not None else None
        ingestor: Ingestor = request.app.state.runtime.ingestor
        ticket = await ingestor.open_ticket(request, body)
        try:
            ingestor.admit(principal, lines)
            if len(body) > _INLINE_BYTES:
                # CPU-heavy: decoded off the event loop, in a thread when the decoder releases the
                # GIL (no hand-off), else in a worker process (both cores)
                payload, accepted, raw_errors = await ingestor.offload(
                    decode_ndjson_payload, body, received, self.limits, None, tenant,
                    releases_gil=getattr(decoder, "RELEASES_GIL", False))
            else:
                payload, accepted, raw_errors = decode_ndjson_payload(body, received, self.limits, None,
                                                                      tenant)
            scope = write_scope(principal)
            if scope is not None:  # a line of a service outside the key's scope is that line's error
                payload, accepted, refused = scope.sift_payload(payload, accepted)
                if refused:
                    lines_of_rows = row_lines(body, (line for line, _ in raw_errors))
                    raw_errors = sorted([*raw_errors, *((lines_of_rows[i], why) for i, why in refused)])
            errors = [ItemError(line, error) for line, error in raw_errors]
            await ingestor.write_payload(payload, ticket=ticket)
        finally:
            ingestor.close_ticket(ticket)
        if not ticket.replay:
            ingestor.count(self.name, accepted, len(errors))
        return JSONResponse({"accepted": accepted, "rejected": [e.as_dict() for e in errors]},
                            headers=REPLAYED if ticket.replay else None)
