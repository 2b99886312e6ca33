"""The shapes every part of the agent speaks: chunks, acknowledgements, and the four interfaces.

Data moves as *chunks*: the lines one source read in one go (a block of a file), carrying one
:class:`Ack`. Transforms may turn the lines into records, drop some, or add fields, but the ack
travels along unchanged; the encoder turns a chunk into an :class:`Encoded` NDJSON payload that
every sink receives. A sink calls :meth:`Ack.done` once it has *durably* taken the payload (the
receiver answered 200, or the payload is fsync'd in the sink's disk buffer). When every sink has
done so, the ack fires its callback and the source may move its checkpoint past that chunk, in
source order (see ``sources/file.py``). This is the at-least-once contract end to end.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from logharbor.types import RawRecord

__all__ = [
    "Ack",
    "AckStatus",
    "AgentError",
    "Buffer",
    "BufferClosed",
    "Chunk",
    "DeliveryError",
    "Encoded",
    "Permanent",
    "Retriable",
    "Sink",
    "Source",
    "Transform",
]


class AgentError(Exception):
    """Root of the agent's exception tree."""


class DeliveryError(AgentError):
    """A sink could not deliver a batch."""


class Retriable(DeliveryError):
    """Worth trying again later (connection refused, 429, 5xx); may carry the server's Retry-After."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Permanent(DeliveryError):
    """Retrying cannot help (400, 401, 403, a single record over the size limit): a poison batch."""


class AckStatus(enum.IntEnum):
    """How a chunk ended in one sink; the merged status is the highest (rejected > dropped > delivered).

    Every status finalizes the chunk: a rejected or dropped chunk is counted and logged, never
    retried forever, so one poison batch cannot hold a checkpoint back.
    """

    DELIVERED = 0
    DROPPED = 1
    REJECTED = 2


class Ack:
    """Shared by every record of one chunk; fires ``on_done`` once all ``sinks`` acknowledged it."""

    __slots__ = ("_lock", "_on_done", "_pending", "finished", "status")

    def __init__(self, sinks: int, on_done: Callable[[Ack], None] | None = None) -> None:
        self._pending = sinks
        self._on_done = on_done
        self._lock = threading.Lock()
        self.status = AckStatus.DELIVERED
        self.finished = sinks <= 0

    def done(self, status: AckStatus = AckStatus.DELIVERED) -> None:
        """One sink is finished with this chunk; the last call runs the source's callback."""
        with self._lock:
            if self.finished:
                return
            self.status = max(self.status, status)
            self._pending -= 1
            if self._pending > 0:
                return
            self.finished = True
        if self._on_done is not None:
            self._on_done(self)


@dataclass(slots=True)
class Chunk:
    """Lines read in one go by one source, with the fields every record of them shares.

    ``records`` stays ``None`` while the lines are raw: the encoder then ships them without
    building one dict per line (the fast path). A parser or a per-record transform fills it.
    ``meta`` holds fields common to every record (source, host, file, static enrichments);
    a record's own value wins over ``meta``.
    """

    lines: list[str]
    ack: Ack
    nbytes: int
    meta: RawRecord = field(default_factory=dict)
    records: list[RawRecord] | None = None
    time_ns: int = 0
    #: the chunk's NDJSON, when the parser wrote it in one pass (``formats/nginx_chunk.py``)
    payload: bytes | None = None


@dataclass(slots=True)
class Encoded:
    """One chunk as NDJSON (every line ends with ``\\n``), ready for any sink.

    ``ack`` is None for payloads replayed from a disk buffer (they were acknowledged when written).
    """

    payload: bytes
    count: int
    ack: Ack | None


class BufferClosed(Exception):
    """The buffer was closed (shutdown): the item was *not* taken and must stay unacknowledged."""


class Buffer(Protocol):
    """What a sink's delivery thread needs from its buffer (``agent/buffer/``: memory or disk)."""

    def put(self, item: Encoded) -> bool:
        """Queue an item; False when full and ``drop_newest``; raises :class:`BufferClosed`."""
        ...

    def get(self, timeout: float) -> Encoded | None:
        """The next item not yet handed out, waiting up to ``timeout`` seconds."""
        ...

    def commit(self, items: list[Encoded]) -> None:
        """These handed-out items were delivered (in any order: positions move in order)."""
        ...

    def size(self) -> tuple[int, int]:
        """(bytes, records) held, delivered ones excluded."""
        ...

    def close(self) -> None:
        """Wake every waiter; further ``put`` calls are refused."""
        ...

    def rewind(self) -> None:
        """Forget what was handed out: every item not yet delivered is next to ``get`` again, in
        order (the delivery threads are stopped; their successor takes over this buffer)."""
        ...

    def reconfigure(self, max_bytes: int, when_full: str) -> None:
        """Apply a reloaded config's bound and full-buffer policy."""
        ...

    def take_all(self) -> list[Encoded]:
        """Remove and return every item not yet delivered (after ``close``, to settle their acks)."""
        ...

    def span(self, items: list[Encoded]) -> str | None:
        """A name for these handed-out items that a restart gives them again (their place in a
        disk buffer), or None when they have none (memory: they die with the process)."""
        ...

    def note_batch(self, items: list[Encoded]) -> None:
        """These items are about to be sent as one batch: remember it, so that after a crash the
        same batch is formed again (same items, same :meth:`span`, same idempotency key)."""
        ...

    def replay_end(self, first: Encoded) -> int | None:
        """If ``first`` began a batch noted before a crash, how many items that batch has now (the
        items still in the buffer between its noted start and end: never one past its end)."""
        ...


class Source(Protocol):
    """Reads input and emits chunks; keeps its own checkpoints, advanced by the chunks' acks."""

    name: str

    def run(self, emit: Callable[[Chunk], None], stop: threading.Event) -> None:
        """Read until ``stop`` is set, calling ``emit`` (which may block: that is backpressure)."""
        ...

    def pending(self) -> int:
        """How many emitted chunks are not yet acknowledged by every sink."""
        ...

    def close(self) -> None:
        """Write the final checkpoint and release files; called after sinks drained."""
        ...


class Transform(Protocol):
    """A step over a chunk: returns it (changed or not); records it drops leave the ack alone."""

    def __call__(self, chunk: Chunk) -> Chunk: ...


class Sink(Protocol):
    """Takes encoded chunks, delivers them, and acknowledges each one when it is durable."""

    name: str
    buffer: Buffer
    #: set when a reload removed the sink: what still reaches it is settled as dropped
    retired: bool

    def start(self) -> None:
        """Start the delivery thread."""
        ...

    def submit(self, item: Encoded) -> None:
        """Queue one payload; blocks while the buffer is full and ``when_full`` is ``block``."""
        ...

    def close(self, timeout: float) -> None:
        """Deliver what is queued (up to ``timeout`` seconds), then stop."""
        ...

    def detach(self, timeout: float) -> Buffer:
        """Stop delivering and hand the buffer, with everything undelivered, to a successor."""
        ...
