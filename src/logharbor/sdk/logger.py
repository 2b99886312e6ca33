"""A ``logging.Logger`` with a shortcut to the sdk's queue, for the hot path.

Why: most of what ``logger.info(...)`` costs is stdlib's own machinery — ``makeRecord`` through
the record factory, ``LogRecord.__init__`` filling twenty attributes (file name splitting,
process and thread lookups), then the walk over the logger hierarchy to find handlers. When the
sdk's handler on the root logger is the only place a record can go, all of that has one known
outcome, so this class builds the same ``LogRecord`` from a template and hands it to the handler
directly. Whenever anything else could see the record — a handler or filter on the way, a
custom record factory, ``stack_info``, a logger that does not propagate — it does exactly
what ``logging.Logger`` does, by calling it.

``sdk.configure()`` makes this the logger class and re-classes the plain loggers that already
exist (the subclass adds no state, so that is safe); ``sdk.shutdown()`` turns the shortcut off.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["Logger", "adopt_existing", "disable", "enable"]

_new = object.__new__
_LogRecord = logging.LogRecord
_time = time.time
_root = logging.getLogger()
#: Every attribute a LogRecord has (extra= may not overwrite them).
_RESERVED = frozenset(_LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_START = logging._startTime  # type: ignore[attr-defined]  # what relativeCreated counts from


class _Record(logging.LogRecord):
    """A LogRecord whose constant attributes live on the class: the instance holds only what
    varies (name, msg, args, levelno, exc_info, created and the extra= keys). Caller, thread and
    process lookups are off whenever the shortcut is on, so these are the values stdlib would
    have given them; the derived ones are computed when read."""

    pathname = "(unknown file)"
    filename = "(unknown file)"
    module = "(unknown file)"
    lineno = 0
    funcName = "(unknown function)"
    stack_info = None
    exc_text = None
    thread = None
    threadName = None
    processName = None
    process = None
    taskName = None

    @property  # type: ignore[override]
    def levelname(self) -> str:
        return logging.getLevelName(self.levelno)

    @property  # type: ignore[override]
    def msecs(self) -> float:
        return int((self.created - int(self.created)) * 1000) + 0.0

    @property  # type: ignore[override]
    def relativeCreated(self) -> float:
        return (self.created - _START) * 1000


class _State:
    handler: Any = None


_state = _State()


def enable(handler: logging.Handler) -> None:
    """Send records straight to ``handler`` (the root's sdk handler) when nothing else could see them."""
    _state.handler = handler


def disable() -> None:
    """Back to plain ``logging.Logger`` behaviour for every call."""
    _state.handler = None


class Logger(logging.Logger):
    """``logging.Logger``, with the shortcut described in the module docstring."""

    def _log(self, level: int, msg: object, args: Any, exc_info: Any = None,
             extra: Mapping[str, object] | None = None, stack_info: bool = False,
             stacklevel: int = 1) -> None:
        # (stacklevel + 1: this frame is not logging's, findCaller must step over it too)
        handler = _state.handler
        if handler is None or stack_info or self.filters or self.disabled or level < handler.level:
            return super()._log(level, msg, args, exc_info, extra, stack_info, stacklevel + 1)
        node: logging.Logger | None = self
        while node is not _root:  # no handler on the way up, and the record does go up
            if node is None or node.handlers or not node.propagate:
                return super()._log(level, msg, args, exc_info, extra, stack_info, stacklevel + 1)
            node = node.parent
        handlers = _root.handlers
        if len(handlers) != 1 or handlers[0] is not handler or _root.filters or \
                logging._logRecordFactory is not _LogRecord:  # type: ignore[attr-defined]
            return super()._log(level, msg, args, exc_info, extra, stack_info, stacklevel + 1)

        created = _time()
        if exc_info:
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            elif not isinstance(exc_info, tuple):
                exc_info = sys.exc_info()
        if args and len(args) == 1 and isinstance(args[0], Mapping) and args[0]:
            args = args[0]  # LogRecord's rule: a single mapping is the %-format's mapping
        record = _new(_Record)
        record.__dict__ = attrs = {"name": self.name, "msg": msg, "args": args, "levelno": level,
                                   "exc_info": exc_info, "created": created}
        if extra is not None:
            for key in extra:
                if key in _RESERVED:
                    raise KeyError(f"Attempt to overwrite {key!r} in LogRecord")
                attrs[key] = extra[key]
        handler.handle(record)
        return None


def adopt_existing() -> None:
    """Make this the logger class, and re-class the plain loggers created before ``configure()``
    (``log = logging.getLogger(__name__)`` at import time is the common case)."""
    if logging.getLoggerClass() is logging.Logger:
        logging.setLoggerClass(Logger)
    for existing in list(logging.Logger.manager.loggerDict.values()):
        if type(existing) is logging.Logger:
            existing.__class__ = Logger
