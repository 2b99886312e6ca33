"""Turn stdlib ``LogRecord`` objects into canonical wire records (DESIGN §2), serialized by orjson.

Why a processor chain: building the record, masking it and rendering it are separate steps, and
users add their own in between (drop a noisy field, rename one) — each step is a callable
``(record: dict) -> dict | None``; returning ``None`` drops the record. The chain runs on the
background thread of :class:`~logharbor.sdk.handlers.AsyncHandler`, or inline when the
formatter is used on an ordinary ``logging`` handler.

Serialization never raises: values orjson does not know are stringified, and a record that
still cannot be encoded (an integer wider than 64 bits, a cycle) is sanitized and encoded again.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import traceback
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson

from logharbor.record import STRING_FIELDS, format_timestamp, keep_aside, same_value
from logharbor.sdk.context import IDENTITY_FIELDS, current
from logharbor.types import WireRecord

__all__ = ["JSONFormatter", "Processor", "level_name", "render"]

Processor = Callable[[WireRecord], "WireRecord | None"]

#: Attributes every ``LogRecord`` has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName", "_lh_ctx",
    "color_message",  # uvicorn's copy of the message with ANSI colours
}
_TOP_LEVEL = frozenset(STRING_FIELDS) - {"message"}
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE
_LEVEL_BY_TENS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")


def level_name(levelno: int) -> str:
    """Canonical level of a stdlib level number (custom levels fall to the level at or below)."""
    if levelno < logging.DEBUG:
        return "TRACE"
    return _LEVEL_BY_TENS[min(levelno // 10, 5)]


def _default(value: Any) -> Any:
    """orjson's fallback: containers it does not know become lists, anything else a string."""
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, dt.date | dt.time):  # reached on the sanitizing path; same text as orjson
        return value.isoformat()
    try:
        return str(value)
    except Exception:  # a broken __str__ must not lose the record
        return f"<unprintable {type(value).__name__}>"


def _sanitize(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy: wide integers as their exact digits, cycles and deep nesting cut off.

    A wide integer was written as a string (``"18446744073709551617"``), so the server stored
    text where the program logged a number; the server keeps integers of any size exactly, so
    the digits go out as a JSON number (docs/record.md). Beyond Python's 4,300-digit limit of
    ``str(int)``, the value's ``repr`` fallback of :func:`_default` is used."""
    if depth > 32:
        return "<nested too deep>"
    if isinstance(value, bool) or value is None or isinstance(value, float | str):
        return value
    if isinstance(value, int):
        if -(2**63) <= value < 2**64:
            return value
        try:
            return orjson.Fragment(str(value).encode())
        except ValueError:  # over sys.get_int_max_str_digits()
            return _default(value)
    if isinstance(value, Mapping):
        return {str(k): _sanitize(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_sanitize(v, depth + 1) for v in value]
    return _default(value)


def render(record: Mapping[str, Any]) -> bytes:
    """One NDJSON line (with its newline) for a record; never raises."""
    try:
        return orjson.dumps(record, default=_default, option=_OPTIONS)
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(_sanitize(record), default=_default, option=_OPTIONS)


class _Clock:
    """RFC 3339 timestamps with µs, reusing the formatted second (most records share one)."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def format(self, created: float) -> str:
        micros = round(created * 1_000_000)
        second, frac = divmod(micros, 1_000_000)
        if second != self._second:
            self._prefix = format_timestamp(second * 1_000_000_000)[:19]
            self._second = second
        return f"{self._prefix}.{frac:06d}Z"


def set_own(out: WireRecord, name: str, value: Any) -> None:
    """Set one of the sdk's own fields (``error``, ``code``); a value the caller passed under that
    name (``extra=``, a structlog key) is kept as ``<name>_attribute`` (docs/record.md, "Two values
    for one name"). It was overwritten, and with ``stack_info=True`` a text ``error`` made the
    record fail (TypeError: the stack was written into the text)."""
    if name in out and not same_value(out[name], value):  # type: ignore[literal-required]  # any name
        keep_aside(out, name, out[name])  # type: ignore[arg-type, literal-required]  # a dict
    out[name] = value  # type: ignore[literal-required]  # error / code


def exception_fields(exc_info: Any) -> dict[str, str] | None:
    """``error.type`` / ``error.message`` / ``error.stack`` of an exception: one record, the
    whole traceback in one field (chained causes included)."""
    if not exc_info:
        return None
    if exc_info is True:
        return None
    if isinstance(exc_info, BaseException):
        exc_type, exc, tb = type(exc_info), exc_info, exc_info.__traceback__
    else:
        exc_type, exc, tb = exc_info
    if exc_type is None:
        return None
    module = exc_type.__module__
    qualname = exc_type.__qualname__
    name = qualname if module in ("builtins", "__main__") else f"{module}.{qualname}"
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {exc_type.__name__}>"
    stack = "".join(traceback.format_exception(exc_type, exc, tb)).rstrip("\n")
    return {"type": name, "message": message, "stack": stack}


class JSONFormatter(logging.Formatter):
    """A ``logging.Formatter`` that writes canonical records; usable on any handler.

    ``static`` holds the fields every record of this process shares (service, host, instance,
    env, version, source); ``processors`` run on each record dict after it is built.
    """

    def __init__(
        self,
        static: Mapping[str, Any] | None = None,
        processors: Iterable[Processor] = (),
        *,
        caller_info: bool = False,
    ) -> None:
        super().__init__()
        defaults = {"service": "unknown", "source": "app", "host": socket.gethostname()}
        merged = {**defaults, **{k: v for k, v in (static or {}).items() if v is not None}}
        self._auto_instance = "instance" not in merged
        if self._auto_instance:
            merged["instance"] = f"{merged['service']}-{os.getpid()}"
        self.static: WireRecord = merged
        self.processors: list[Processor] = list(processors)
        self.caller_info = caller_info
        self._clock = _Clock()

    def after_fork(self) -> None:
        """A forked worker (gunicorn, multiprocessing) is an instance of its own."""
        if self._auto_instance:
            self.static["instance"] = f"{self.static['service']}-{os.getpid()}"

    # -- building ----------------------------------------------------------------------------

    def build(self, record: logging.LogRecord) -> WireRecord:
        """The canonical record (flat wire form) for one ``LogRecord``, before processors."""
        attrs = record.__dict__
        ctx: Mapping[str, Any] | None = attrs.get("_lh_ctx")
        if ctx is None:
            ctx = current()  # used directly on a synchronous handler: same task as the caller
        out: WireRecord = {
            "timestamp": self._clock.format(attrs["created"]),
            "level": level_name(attrs["levelno"]),
            **self.static,
            "message": _message(record),
        }
        if ctx:
            for key in IDENTITY_FIELDS:
                value = ctx.get(key)
                if value:
                    out[key] = value
        out["logger"] = attrs["name"]
        if ctx:
            for key, value in ctx.items():
                if key not in IDENTITY_FIELDS:
                    out[key] = value
        extra = {key: value for key, value in attrs.items() if key not in _STANDARD_ATTRS}
        if extra:
            context_http = out.get("http")
            out.update(extra)
            if isinstance(context_http, dict) and isinstance(extra.get("http"), Mapping):
                out["http"] = {**context_http, **extra["http"]}
            for key in _TOP_LEVEL.intersection(extra):
                if extra[key] is None:  # extra={"env": None} does not blank a canonical field
                    out[key] = self.static.get(key) or ctx.get(key)
                    if out[key] is None:
                        del out[key]
        error = exception_fields(attrs["exc_info"]) if attrs["exc_info"] else None
        if record.stack_info:  # after the traceback, as logging's own Formatter writes the two
            error = dict(error or {})
            stack = error.get("stack")
            error["stack"] = f"{stack}\n{record.stack_info}" if stack else record.stack_info
        if error is not None:
            set_own(out, "error", error)
        if self.caller_info:
            code = {"file": record.pathname, "line": record.lineno, "function": record.funcName}
            set_own(out, "code", code)
        return out

    def process(self, record: logging.LogRecord) -> WireRecord | None:
        """Build the record and run the processors (``None``: a processor dropped it)."""
        out: WireRecord | None = self.build(record)
        for step in self.processors:
            if out is None:
                return None
            out = step(out)
        return out

    def render(self, record: logging.LogRecord) -> bytes | None:
        """The NDJSON line for one record, or ``None`` when a processor dropped it."""
        out = self.process(record)
        return None if out is None else render(out)

    def format(self, record: logging.LogRecord) -> str:
        """``logging.Formatter`` interface: the JSON line without its newline ('' if dropped)."""
        line = self.render(record)
        return "" if line is None else line[:-1].decode("utf-8")


def _message(record: logging.LogRecord) -> str:
    try:
        message = record.getMessage()
    except Exception as exc:  # bad %-args: keep the template and say why, like logging would not
        message = f"{record.msg!s} (format error: {exc}; args={record.args!r})"
    return message if isinstance(message, str) else str(message)
