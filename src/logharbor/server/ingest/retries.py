"""The request side of idempotency (see :mod:`idempotency`): claim a key, wait out a concurrent
attempt, and write a request's WAL entries with their keys.

One request holds a :class:`Ticket` while it is being decoded and written: the digests it is about
to store (its ``Idempotency-Key``, its documents' ``_id``s) are *pending*, and a concurrent request
with one of them waits until the first has finished (then it sees the stored keys and replays, or
answers 409 for a ``create``, or proceeds if the first stored nothing). Pending digests are taken
all at once on the event loop, never while holding others, so two requests cannot wait for each
other. The wait is bounded (``wait_s``); past it the answer is a retryable 503.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field

from starlette.requests import Request

from logharbor.server.auth import principal_of
from logharbor.server.errors import ApiError
from logharbor.server.ingest.idempotency import (
    DOCS_PER_ENTRY,
    EntryKey,
    KeyIndex,
    request_digest,
    request_fingerprint,
    valid_key,
)

__all__ = ["REPLAYED", "RetryGate", "Ticket", "pack_entries"]

#: the header on an answer recomputed for a retried request (Stripe's name)
REPLAYED = {"Idempotent-Replayed": "true"}
HEADER = "idempotency-key"
#: bodies above this are fingerprinted on a thread
_INLINE_HASH_BYTES = 256 * 1024


@dataclass(eq=False)
class Ticket:
    """The digests one request is storing, and the WAL writes that will store them."""

    request: tuple[bytes, bytes] | None = None  # (digest, fingerprint) of its Idempotency-Key
    replay: bool = False  # the request was stored before: recompute the answer, store nothing
    held: list[bytes] = field(default_factory=list)
    done: asyncio.Future[None] | None = None
    writes: list[Future[int]] = field(default_factory=list)


class RetryGate:
    """Pending digests of requests in flight, in front of the :class:`KeyIndex` of stored ones."""

    def __init__(self, index: KeyIndex, *, wait_s: float = 30.0) -> None:
        self.index = index
        self.wait_s = wait_s
        self._pending: dict[bytes, asyncio.Future[None]] = {}

    async def open(self, request: Request, body: bytes) -> Ticket:
        """A ticket for this request; with an ``Idempotency-Key`` header, its key is claimed.

        400 for a key we do not take, 422 for a known key with another body; a retry of a stored
        request gets a ticket with ``replay`` set.
        """
        ticket = Ticket()
        key = request.headers.get(HEADER)
        if key is None or not self.index.enabled:
            return ticket
        if not valid_key(key):
            raise ApiError(400, "invalid_idempotency_key",
                           "Idempotency-Key must be 1 to 255 printable ASCII characters")
        principal = principal_of(request)
        scope = principal.prefix if principal is not None else ""
        digest = request_digest(scope, key)
        if len(body) > _INLINE_HASH_BYTES:  # hashlib releases the GIL: the event loop goes on
            fingerprint = await asyncio.to_thread(request_fingerprint, request.url.path, body)
        else:
            fingerprint = request_fingerprint(request.url.path, body)
        await self._wait_for([digest])
        known = self.index.request(digest)
        if known is not None:
            if known != fingerprint:
                raise ApiError(422, "idempotency_key_reused",
                               "this Idempotency-Key was used for a request with another body; "
                               "a new batch needs a new key", detail={"idempotency_key": key})
            self.index.replays += 1
            ticket.replay = True
            return ticket
        ticket.request = (digest, fingerprint)
        self._hold(ticket, [digest])
        return ticket

    async def hold(self, ticket: Ticket, digests: Iterable[bytes]) -> None:
        """Wait until none of ``digests`` is pending elsewhere, then make them this ticket's."""
        wanted = [d for d in dict.fromkeys(digests) if d not in ticket.held]
        await self._wait_for(wanted)
        self._hold(ticket, wanted)

    async def _wait_for(self, digests: list[bytes]) -> None:
        deadline = time.monotonic() + self.wait_s
        while True:
            busy = {id(f): f for d in digests if (f := self._pending.get(d)) is not None}
            if not busy:
                return
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(asyncio.gather(*(asyncio.shield(f) for f in busy.values())),
                                       remaining)
            except TimeoutError:
                raise ApiError(503, "idempotency_key_in_flight",
                               "an earlier attempt of this request is still being written; retry",
                               headers={"Retry-After": "1"}) from None

    def _hold(self, ticket: Ticket, digests: list[bytes]) -> None:
        if not digests:
            return
        if ticket.done is None:
            ticket.done = asyncio.get_running_loop().create_future()
        for digest in digests:
            self._pending[digest] = ticket.done
        ticket.held.extend(digests)

    def close(self, ticket: Ticket) -> None:
        """The request is over: its digests stop being pending once its WAL writes are done
        (at once if they are, else from the WAL's thread), so a waiter sees what they stored."""
        if ticket.done is None:
            return
        loop = asyncio.get_running_loop()
        unfinished = [f for f in ticket.writes if not f.done()]
        if not unfinished:
            self._release(ticket)
            return
        remaining = [len(unfinished)]

        def one_done(_: Future[int]) -> None:
            remaining[0] -= 1
            if remaining[0] == 0:
                loop.call_soon_threadsafe(self._release, ticket)

        for future in unfinished:
            future.add_done_callback(one_done)

    def _release(self, ticket: Ticket) -> None:
        for digest in ticket.held:
            if self._pending.get(digest) is ticket.done:
                del self._pending[digest]
        if ticket.done is not None and not ticket.done.done():
            ticket.done.set_result(None)


def pack_entries(ticket: Ticket, keyed: list[tuple[bytes, tuple[bytes, bytes]]], plain: list[bytes],
                 ) -> list[tuple[bytes, bytes]]:
    """``(payload, entry key)`` of the WAL entries that store one request.

    ``keyed`` are rows with a document digest (``_id``), at most :data:`DOCS_PER_ENTRY` an entry;
    ``plain`` rows and the request's own key go in the *last* entry, so the request is remembered
    as stored only once every entry before it is durable (entries are durable in order), and a
    row without an ``_id`` is never in an entry that could be kept while the answer was an error.
    """
    now = int(time.time())
    entries: list[tuple[bytes, bytes]] = []
    chunks = [keyed[i : i + DOCS_PER_ENTRY] for i in range(0, len(keyed), DOCS_PER_ENTRY)] or [[]]
    for chunk in chunks[:-1]:
        key = EntryKey(now, None, [doc for _, doc in chunk])
        entries.append((b"\n".join(row for row, _ in chunk), key.encode()))
    last = chunks[-1]
    rows = [row for row, _ in last] + plain
    if rows:
        key = EntryKey(now, ticket.request, [doc for _, doc in last])
        entries.append((b"\n".join(rows), key.encode() if key.request or key.docs else b""))
    return entries
