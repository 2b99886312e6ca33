"""Fair sharing of the query engine between API keys, and each request's time budget.

Why: the engine runs a few queries at once (its reader connections); without this one key's
expensive queries took every reader and a trivial query of another key waited behind them for
minutes, and each queued query ran its whole timeout after its wait. Here, as Loki's
query-frontend does per tenant:

- every read of the store takes a *slot* of a :class:`FairGate` (``slots`` in all);
- one owner (an API key, or the client address when auth is off; background work is ``internal``)
  runs at most ``per_owner`` reads at once and has at most ``max_waiting`` more waiting; past
  that it gets :class:`QueueFull` (a 429 that names the limits) at once (background work, such
  as many alert rules due at once, is not refused: it waits its turn);
- when a slot frees it goes to the owners waiting in turn (round robin), never to whoever asked
  most, so another key's query waits for at most one slot to free;
- a request has one time :class:`Budget` from its arrival (``query_timeout_s``): waiting for a
  slot spends it, and each engine query gets what is left as ``max_execution_time``, so a request
  of several queries (LogQL, traces, service health) ends at its timeout too. A request that
  waited its whole budget gets :class:`QueueTimeout`.

The budget travels in a context variable (set by the HTTP middleware, :mod:`logharbor.server.limits`),
which Starlette's thread pool and ``asyncio.to_thread`` carry into the threads that call the store.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

from logharbor.server.engine.store.base import QueryCancelled, StoreError
from logharbor.types import EngineSettings, JsonObject

__all__ = ["Budget", "FairGate", "QueryLimitError", "QueueFull", "QueueTimeout", "begin", "current", "end"]

#: who background work (alerts, retention, metrics, tail set-up) counts as
INTERNAL = "internal"
#: how long background work waits for a slot before it gives up (it has no request budget)
_INTERNAL_WAIT_S = 300.0


@dataclass
class Budget:
    """One request's deadline and the owner its reads are charged to."""

    timeout_s: float
    started: float = field(default_factory=time.monotonic)
    #: the ASGI scope's state: the auth middleware puts the caller's Principal there
    state: MutableMapping[str, Any] = field(default_factory=dict)
    client: str | None = None

    @property
    def deadline(self) -> float:
        return self.started + self.timeout_s

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def owner(self) -> str:
        principal = self.state.get("principal")
        prefix = getattr(principal, "prefix", None)
        if prefix:
            return f"key:{prefix}"
        return f"client:{self.client}" if self.client else "anonymous"

    def extend_to(self, timeout_s: float) -> None:
        """A longer budget from the same start (an NDJSON export runs while the client reads)."""
        self.timeout_s = max(self.timeout_s, timeout_s)


_budget: ContextVar[Budget | None] = ContextVar("logharbor_query_budget", default=None)


def begin(budget: Budget) -> Token[Budget | None]:
    """Make ``budget`` the current request's (the middleware calls this)."""
    return _budget.set(budget)


def end(token: Token[Budget | None]) -> None:
    _budget.reset(token)


def current() -> Budget | None:
    """The budget of the request this thread or task works for, None for background work."""
    return _budget.get()


class QueryLimitError(StoreError):
    """A read refused by a limit; ``limits`` names them for the answer."""

    def __init__(self, message: str, limits: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.limits = dict(limits)


class QueueFull(QueryLimitError):
    """The owner already runs and queues as many reads as it may: refused at once."""


class QueueTimeout(QueryLimitError):
    """The read waited for a slot for the whole budget of its request."""


@dataclass
class _Waiter:
    owner: str
    event: threading.Event = field(default_factory=threading.Event)
    granted: bool = False


class FairGate:
    """``slots`` concurrent reads, at most ``per_owner`` each, handed out round robin."""

    def __init__(self, slots: int, *, per_owner: int | None = None, max_waiting: int | None = None) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self.slots = slots
        self.per_owner = min(per_owner or slots, slots)
        self.max_waiting = max_waiting
        self._lock = threading.Lock()
        self._free = slots
        self._running: dict[str, int] = {}
        #: owners with waiting reads, in turn order (an owner served moves to the back)
        self._waiting: dict[str, deque[_Waiter]] = {}

    def limits(self) -> JsonObject:
        return {"query_concurrency": self.slots, "query_per_key_concurrency": self.per_owner,
                "query_per_key_queue": self.max_waiting}

    def gauges(self) -> dict[str, float]:
        """``/metrics`` gauges: reads running and waiting."""
        with self._lock:
            return {"logharbor_query_slots_busy": float(self.slots - self._free),
                    "logharbor_queries_waiting": float(sum(len(q) for q in self._waiting.values()))}

    def snapshot(self) -> JsonObject:
        """Running and waiting reads per owner (for /metrics and tests)."""
        with self._lock:
            return {"free": self._free, "running": dict(self._running),
                    "waiting": {o: len(q) for o, q in self._waiting.items()}}

    def acquire(self, owner: str, wait_s: float | None) -> None:
        """Block until ``owner`` holds a slot; :class:`QueueFull` / :class:`QueueTimeout` if not."""
        waiter = _Waiter(owner)
        with self._lock:
            queue = self._waiting.setdefault(owner, deque())
            queue.append(waiter)
            self._dispatch()
            capped = self.max_waiting is not None and owner != INTERNAL  # background work waits its turn
            if not waiter.granted and capped and len(queue) > self.max_waiting:  # type: ignore[operator]
                queue.remove(waiter)
                if not queue:
                    self._waiting.pop(owner, None)
                running = self._running.get(owner, 0)
                raise QueueFull(
                    f"this key already has {running} queries running and {len(queue)} waiting, the most "
                    f"one key may have (query_per_key_concurrency {self.per_owner}, query_per_key_queue "
                    f"{self.max_waiting}); retry when one has finished", self.limits())
        if waiter.granted or waiter.event.wait(None if wait_s is None else max(wait_s, 0.0)):
            return
        with self._lock:
            if waiter.granted:  # granted between the timeout and the lock
                return
            queue = self._waiting.get(owner)
            if queue is not None:
                queue.remove(waiter)
                if not queue:
                    del self._waiting[owner]
        raise QueueTimeout(
            f"the server is busy: this query waited its whole time budget for one of the "
            f"{self.slots} query slots (query_concurrency) and did not run; retry later",
            {**self.limits(), "waited_s": round(wait_s or 0.0, 3)})

    def release(self, owner: str) -> None:
        with self._lock:
            left = self._running.get(owner, 0) - 1
            if left > 0:
                self._running[owner] = left
            else:
                self._running.pop(owner, None)
            self._free += 1
            self._dispatch()

    def _dispatch(self) -> None:
        """Hand free slots to waiting owners in turn (called with the lock held)."""
        while self._free > 0:
            for owner in self._waiting:
                if self._running.get(owner, 0) < self.per_owner:
                    break
            else:
                return  # every waiting owner is at its own limit
            queue = self._waiting.pop(owner)
            waiter = queue.popleft()
            if queue:
                self._waiting[owner] = queue  # to the back of the turn order
            self._running[owner] = self._running.get(owner, 0) + 1
            self._free -= 1
            waiter.granted = True
            waiter.event.set()

    @contextmanager
    def slot(self, settings: Mapping[str, Any] | None) -> Iterator[EngineSettings]:
        """Hold a slot for one engine query; yields the settings to run it with.

        The request's remaining budget becomes ``max_execution_time`` (never longer than what the
        caller asked); over-budget errors leave with the limits that stopped them.
        """
        budget = current()
        owner = budget.owner() if budget is not None else INTERNAL
        wait_s = budget.remaining() if budget is not None else _INTERNAL_WAIT_S
        self.acquire(owner, wait_s)
        effective = dict(settings or {})
        timeout_s = budget.timeout_s if budget is not None else effective.get("max_execution_time")
        limits = {"timeout_s": timeout_s, "max_memory_bytes": effective.get("max_memory_usage")}
        try:
            if budget is not None:
                left = budget.remaining()
                if left <= 0.001:
                    cancelled = QueryCancelled("the query's time budget was spent before it could run")
                    cancelled.limits = limits  # type: ignore[attr-defined]
                    raise cancelled
                asked = effective.get("max_execution_time")
                effective["max_execution_time"] = round(min(left, asked) if asked else left, 3)
            try:
                yield effective
            except QueryCancelled as exc:
                exc.limits = limits  # type: ignore[attr-defined]
                raise
        finally:
            self.release(owner)
