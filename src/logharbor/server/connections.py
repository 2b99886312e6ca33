"""How many connections one listener keeps open, for every listener the server has (HTTP, syslog
TCP/TLS, Fluent forward).

Why: every accepted connection costs a descriptor, a task and (for a stream listener) up to a few
MB of unread data, and nothing bounded them: one client could open thousands of sockets and take
the process's descriptors from everyone else. A listener at its limit refuses a *new* connection
at once (accepted and closed, so the client gets an error instead of waiting); the connections
already open are never touched and nothing they sent is dropped. A refusal is counted
(``logharbor_connections_refused_total{listener}``) and logged once per burst: the first refusal
logs a line, the next ones are only counted until a minute has passed, when one more line says
how many were refused since.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["ConnectionCap"]

log = logging.getLogger("logharbor.server.connections")
#: while a listener keeps refusing, at most one log line per this many seconds
LOG_EVERY_S = 60.0


class ConnectionCap:
    """The limit of one listener (``what``: ``http``, ``syslog tcp`` …) and its refusal log."""

    def __init__(self, what: str, limit: int, setting: str,
                 on_refused: Callable[[str], None] | None = None) -> None:
        self.what = what
        self.limit = limit
        self.setting = setting  # the option an operator raises: said in the log line
        self.on_refused = on_refused
        self.refused = 0  # since start
        self._unlogged = 0
        self._logged_at: float | None = None

    def full(self, open_now: int) -> bool:
        """Whether a new connection must be refused, ``open_now`` being open; counts and logs it."""
        if open_now < self.limit:
            return False
        self.refused += 1
        self._unlogged += 1
        if self.on_refused is not None:
            self.on_refused(self.what)
        now = time.monotonic()
        if self._logged_at is None or now - self._logged_at >= LOG_EVERY_S:
            log.warning("%s: refused %d new connection(s): %d are open, the limit (%s); the open ones "
                        "are served as usual, further refusals are counted in "
                        "logharbor_connections_refused_total{listener=%r} and logged at most once a "
                        "minute", self.what, self._unlogged, open_now, self.setting, self.what)
            self._logged_at = now
            self._unlogged = 0
        return True
