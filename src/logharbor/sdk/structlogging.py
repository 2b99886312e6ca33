"""structlog integration: the same context and the same canonical records as stdlib logging.

Two ways, both processors in structlog's sense (``(logger, method_name, event_dict) -> event_dict``):

- :func:`configure_structlog` (what ``sdk.configure(structlog=True)`` calls) routes structlog
  through stdlib ``logging`` into the sdk's non-blocking handler: the event becomes the message,
  the other keys become ``extra=`` attributes. One pipeline, one output, one set of rules.
- :class:`CanonicalRenderer` is a final processor that renders the canonical JSON line itself,
  for apps that keep structlog's own output (``PrintLogger``, a file); put :func:`add_context`
  before it to get the request ids and bound attributes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

from logharbor.sdk.context import IDENTITY_FIELDS, current
from logharbor.sdk.formatter import JSONFormatter, exception_fields, render, set_own
from logharbor.types import WireRecord

__all__ = ["CanonicalRenderer", "add_context", "configure_structlog"]

EventDict = MutableMapping[str, Any]

_METHOD_LEVEL = {
    "trace": "TRACE", "debug": "DEBUG", "info": "INFO", "msg": "INFO", "warning": "WARN",
    "warn": "WARN", "error": "ERROR", "exception": "ERROR", "critical": "FATAL", "fatal": "FATAL",
}


def add_context(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """Processor: add the sdk context (request ids, ``sdk.bind`` values) under the event's keys."""
    ctx = current()
    for key, value in ctx.items():
        event_dict.setdefault(key, value)
    return event_dict


class CanonicalRenderer:
    """Final processor: render an event dict as one canonical JSON line (``str``, no newline).

    ``static`` are the process-wide fields (service, env, version …; host and instance are
    filled in as ``sdk.configure`` does); ``processors`` run on the built record (for example
    ``Redactor(...).redact_record``), a ``None`` result drops the event.
    """

    def __init__(self, static: Mapping[str, Any] | None = None, processors: Any = ()) -> None:
        self._base = JSONFormatter(static, processors)

    def __call__(self, logger: Any, method_name: str, event_dict: EventDict) -> str:
        import structlog

        event = dict(event_dict)
        out: WireRecord = {
            "timestamp": self._base._clock.format(time.time()),
            "level": _METHOD_LEVEL.get(method_name, "INFO"),
            **self._base.static,
            "message": str(event.pop("event", "")),
        }
        level = event.pop("level", None)
        if isinstance(level, str) and level.lower() in _METHOD_LEVEL:
            out["level"] = _METHOD_LEVEL[level.lower()]
        for key in IDENTITY_FIELDS:
            if event.get(key):
                out[key] = event.pop(key)
        exc_info = event.pop("exc_info", None)
        if exc_info is True:
            import sys

            exc_info = sys.exc_info()
        error = exception_fields(exc_info)
        if "exception" in event and error is None:
            error = {"stack": str(event.pop("exception"))}
        event.pop("timestamp", None)
        out.update(event)
        if error:
            set_own(out, "error", error)  # an `error=` key of the event is kept as error_attribute
        result: WireRecord | None = out
        for step in self._base.processors:
            if result is None:
                break
            result = step(result)
        if result is None:
            raise structlog.DropEvent
        return render(result)[:-1].decode("utf-8")


_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
_PASSED_ON = frozenset({"event", "exc_info", "stack_info", "stacklevel"})


def _rename_reserved(logger: Any, method_name: str, event_dict: EventDict) -> EventDict:
    """``log.info("x", name="bob")`` must not make stdlib raise (``name`` is a LogRecord
    attribute): such keys get a trailing underscore (``name_``)."""
    for key in [k for k in event_dict if k in _RESERVED and k not in _PASSED_ON]:
        event_dict[key + "_"] = event_dict.pop(key)
    return event_dict


def configure_structlog() -> None:
    """Send structlog events through stdlib logging (and so through the sdk's handler).

    Keeps structlog's own contextvars (``structlog.contextvars.bind_contextvars``) working:
    they are merged into the event and become attributes like ``extra=`` values.
    """
    import structlog

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            _rename_reserved,
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
