"""logharbor's Python sdk: canonical JSON logs with request context, off the hot path.

Why one call: an app author should get structured, correlated, masked logs by adding
``sdk.configure(...)`` and one middleware line, keeping ``logging.getLogger(__name__)`` and
``logger.info("…", extra={…})`` as they are. See docs/sdk.md.

    from logharbor import sdk

    sdk.configure(service="checkout", env="prod", version="1.4.2")
    log = sdk.get_logger(__name__)
    app.add_middleware(sdk.ASGIMiddleware)          # FastAPI / Starlette
    sdk.bind(user_id="u-123")
    log.info("payment declined", extra={"order_id": "o-42", "amount": 12.5})
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from typing import IO, Any

from logharbor.redaction import Redactor
from logharbor.sdk import configured
from logharbor.sdk import logger as fast_logger
from logharbor.sdk.context import bind, context, get_context, new_trace_id, reset, unbind
from logharbor.sdk.formatter import JSONFormatter, Processor
from logharbor.sdk.handlers import AsyncHandler, FileOutput, Output, StreamOutput
from logharbor.sdk.middleware import ASGIMiddleware, WSGIMiddleware
from logharbor.sdk.propagation import outgoing_headers, propagate_httpx, propagate_requests
from logharbor.sdk.sampling import Sampler
from logharbor.sdk.testing import capture_logs
from logharbor.types import JsonObject, WireRecord

__all__ = [
    "ASGIMiddleware",
    "AsyncHandler",
    "JSONFormatter",
    "Redactor",
    "Sampler",
    "WSGIMiddleware",
    "bind",
    "capture_logs",
    "configure",
    "context",
    "flush",
    "get_context",
    "get_logger",
    "new_trace_id",
    "outgoing_headers",
    "propagate_httpx",
    "propagate_requests",
    "reset",
    "shutdown",
    "stats",
    "unbind",
]

#: Server loggers whose lines are adopted (their own handlers removed, sent to the root).
_ADOPTED = ("uvicorn", "uvicorn.error", "gunicorn.error", "waitress", "hypercorn.error")
#: Their access loggers repeat what the middleware logs: adopted, but only from WARN up.
_ACCESS = ("uvicorn.access", "gunicorn.access", "hypercorn.access")

def _env(value: Any, name: str) -> Any:
    return value if value is not None else os.environ.get(name) or None


def configure(
    service: str | None = None,
    *,
    env: str | None = None,
    version: str | None = None,
    instance: str | None = None,
    host: str | None = None,
    level: int | str = "INFO",
    output: str | os.PathLike[str] | IO[Any] | None = "stdout",
    ship_to: str | None = None,
    api_key: str | None = None,
    compression: str = "zstd",
    sample: Mapping[str, float] | None = None,
    redact: bool | Redactor | Mapping[str, Any] = True,
    processors: Sequence[Processor] = (),
    fields: Mapping[str, Any] | None = None,
    levels: Mapping[str, int | str] | None = None,
    queue_size: int = 10_000,
    caller_info: bool = False,
    structlog: bool = False,
    adopt_server_loggers: bool = True,
) -> AsyncHandler:
    """Make the root logger write canonical JSON records through a non-blocking handler.

    Calling it again replaces the previous configuration (its queue is drained first). Returns
    the handler, whose ``flush()`` and ``stats()`` are also available as :func:`flush` and
    :func:`stats`. Every option is described in docs/sdk.md; those named ``LOGHARBOR_*`` in the
    environment (``SERVICE ENV VERSION INSTANCE SHIP_TO API_KEY``) fill in what is not passed.
    """
    # everything that can be wrong is checked before anything is started or changed
    root_level = _level(level)
    logger_levels = {name: _level(value) for name, value in (levels or {}).items()}
    sampler = Sampler(sample) if sample else None
    fast_logger.disable()
    static: WireRecord = {
        "service": _env(service, "LOGHARBOR_SERVICE") or _script_name(),
        "env": _env(env, "LOGHARBOR_ENV"),
        "version": _env(version, "LOGHARBOR_VERSION"),
        "instance": _env(instance, "LOGHARBOR_INSTANCE"),
    }
    if host is not None:
        static["host"] = host
    static.update(fields or {})
    steps: list[Processor] = []
    redactor = _redactor(redact)
    if redactor is not None:
        steps.append(redactor.redact_record)
    steps.extend(processors)
    formatter = JSONFormatter(static, steps, caller_info=caller_info)

    outputs: list[Output] = []
    if output == "stdout":
        outputs.append(StreamOutput(sys.stdout))
    elif output == "stderr":
        outputs.append(StreamOutput(sys.stderr))
    elif isinstance(output, str | os.PathLike):
        outputs.append(FileOutput(output))
    elif output is not None:
        outputs.append(StreamOutput(output))
    ship_to = _env(ship_to, "LOGHARBOR_SHIP_TO")
    if ship_to:
        from logharbor.sdk.shipping import HttpShipper

        outputs.append(HttpShipper(ship_to, _env(api_key, "LOGHARBOR_API_KEY"), compression=compression))

    handler = AsyncHandler(outputs, formatter, queue_size=queue_size, sampler=sampler)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if old is configured.current():
            old.close()
    root.addHandler(handler)
    root.setLevel(root_level)
    for name, value in logger_levels.items():
        logging.getLogger(name).setLevel(value)
    if adopt_server_loggers:
        for name in (*_ADOPTED, *_ACCESS):
            adopted = logging.getLogger(name)
            adopted.handlers.clear()
            adopted.propagate = True
            if name in _ACCESS:
                adopted.setLevel(logging.WARNING)
    # what the records do not use need not be computed on every call (logging HOWTO, "Optimization")
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if not caller_info:
        logging._srcfile = None  # type: ignore[attr-defined]  # skips findCaller's stack walk
        logging.logThreads = False
        fast_logger.adopt_existing()
        fast_logger.enable(handler)
    if structlog:
        from logharbor.sdk.structlogging import configure_structlog

        configure_structlog()
    configured.install(handler)
    return handler


def _level(value: int | str) -> int:
    if isinstance(value, int):
        return value
    from logharbor.record import normalize_level

    name = normalize_level(value)
    if name is None:
        raise ValueError(f"configure: unknown level {value!r}")
    return {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARN": 30, "ERROR": 40, "FATAL": 50}[name]


#: Fields the sdk itself fills from configuration or code: no need to scan them for PII.
_OWN_FIELDS = ("host", "instance", "logger", "request_id", "span_id")


def _redactor(redact: bool | Redactor | Mapping[str, Any]) -> Redactor | None:
    if redact is True:
        return Redactor(skip_fields=_OWN_FIELDS)
    if redact is False or redact is None:
        return None
    if isinstance(redact, Redactor):
        return redact
    return Redactor.from_config({**redact, "skip_fields": [*_OWN_FIELDS, *redact.get("skip_fields", ())]})


def _script_name() -> str:
    name = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    name = os.path.splitext(name)[0]
    return name if name and name not in ("-c", "__main__") else "unknown"


def get_logger(name: str | None = None) -> logging.Logger:
    """The stdlib logger of that name (a plain ``logging.Logger``: nothing new to learn)."""
    return logging.getLogger(name)


def flush(timeout: float = 10.0) -> bool:
    """Wait until every record logged so far is written (and handed to the shipper)."""
    handler = configured.current()
    return handler.flush(timeout) if handler is not None else True


def stats() -> JsonObject:
    """The handler's counters (written, dropped per level, sampled out, queued)."""
    handler = configured.current()
    return handler.stats() if handler is not None else {}


def shutdown(timeout: float = 5.0) -> None:
    """Drain and close the handler now (it also happens at interpreter exit)."""
    fast_logger.disable()
    handler = configured.current()
    if handler is not None:
        logging.getLogger().removeHandler(handler)
        handler.close(timeout)
        configured.install(None)
