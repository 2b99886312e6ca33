"""The memory buffer: a bounded queue whose items keep their acknowledgements until delivered.

Its items keep their :class:`~logharbor.agent.types.Ack`; the sink acknowledges them after
delivery, so the source checkpoint waits for the receiver. What it holds is lost on a crash,
but it was never acknowledged: the sources read it again after the restart.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from logharbor.agent.types import BufferClosed, Encoded

__all__ = ["MemoryBuffer"]


class MemoryBuffer:
    """A bounded in-memory queue; what it holds is lost on a crash but was never acknowledged."""

    def __init__(self, max_bytes: int, when_full: str) -> None:
        self.max_bytes = max_bytes
        self.block = when_full == "block"
        self._queue: deque[Encoded] = deque()
        self._out: deque[list[Any]] = deque()  # [item, delivered], in hand-out order
        self._index: dict[int, list[Any]] = {}
        self._bytes = 0
        self._events = 0
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item: Encoded) -> bool:
        n = len(item.payload)
        with self._cond:
            while self._bytes and self._bytes + n > self.max_bytes:
                if self._closed:
                    raise BufferClosed
                if not self.block:
                    return False
                self._cond.wait(0.5)
            if self._closed:
                raise BufferClosed
            self._queue.append(item)
            self._bytes += n
            self._events += item.count
            self._cond.notify_all()
            return True

    def get(self, timeout: float) -> Encoded | None:
        with self._cond:
            if not self._queue and timeout > 0:
                self._cond.wait(timeout)
            if not self._queue:
                return None
            item = self._queue.popleft()
            entry = [item, False]
            self._out.append(entry)
            self._index[id(item)] = entry
            return item

    def commit(self, items: list[Encoded]) -> None:
        with self._cond:
            for item in items:
                self._index.pop(id(item))[1] = True
            while self._out and self._out[0][1]:
                done = self._out.popleft()[0]
                self._bytes -= len(done.payload)
                self._events -= done.count
            self._cond.notify_all()

    def size(self) -> tuple[int, int]:
        return self._bytes, self._events

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def rewind(self) -> None:
        with self._cond:
            again = []
            for item, delivered in self._out:
                if delivered:
                    self._bytes -= len(item.payload)
                    self._events -= item.count
                else:
                    again.append(item)
            self._out.clear()
            self._index.clear()
            self._queue.extendleft(reversed(again))
            self._cond.notify_all()

    def reconfigure(self, max_bytes: int, when_full: str) -> None:
        with self._cond:
            self.max_bytes, self.block = max_bytes, when_full == "block"
            self._cond.notify_all()

    def take_all(self) -> list[Encoded]:
        with self._cond:
            items = [item for item, delivered in self._out if not delivered] + list(self._queue)
            self._out.clear()
            self._index.clear()
            self._queue.clear()
            self._bytes = self._events = 0
            self._cond.notify_all()
            return items

    def span(self, items: list[Encoded]) -> str | None:
        return None

    def note_batch(self, items: list[Encoded]) -> None:
        """Nothing to remember: a memory buffer does not outlive the process."""

    def replay_end(self, first: Encoded) -> int | None:
        return None
