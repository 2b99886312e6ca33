"""The one interface every line parser implements, and the registry config picks parsers from.

A parser turns one line of text into a *raw record dict* that :func:`logharbor.record.normalize`
accepts: canonical keys (``timestamp``, ``level``, ``message``, ``source``, ``host``, ``service``,
``trace_id``, ``request_id``, an ``http`` dict) plus attributes with their natural JSON types.
Parsers never raise on input and never drop a line: what they cannot read comes back as
``{"message": line, "parse_error": reason}`` so the line is still stored and searchable.

Configuration is validated when a parser is *built*, not when it runs: every kind declares a
pydantic ``Options`` model, and :func:`build_parser` turns a bad regex or a bad ``log_format`` into
a :class:`ParserConfigError` that names the option. The running code then never meets bad config.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from pydantic import ConfigDict, ValidationError

from logharbor.models import InputModel
from logharbor.record import (
    HTTP_FIELDS,
    HTTP_MAX,
    TIMESTAMP_KEYS,
    RecordError,
    format_timestamp,
    http_value,
    normalize,
    parse_timestamp,
)
from logharbor.types import RawRecord

__all__ = [
    "PARSERS",
    "FormatError",
    "Options",
    "Parser",
    "ParserConfigError",
    "ParserKind",
    "build_parser",
    "guard",
    "register",
    "seconds_to_ms",
    "timestamp_value",
    "ufloat",
    "uint",
    "unparsed",
]


class FormatError(ValueError):
    """Root of the formats exception tree."""


class ParserConfigError(FormatError):
    """A parser's options are invalid; raised at build time, the message names the option."""


@runtime_checkable
class Parser(Protocol):
    """Turns one line (without its newline) into a raw record dict; never raises, never drops."""

    def parse(self, line: str) -> RawRecord:
        """Return the raw record for ``line``, or ``{"message": line, "parse_error": why}``."""
        ...


class Options(InputModel):
    """Base of every parser's options: unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def unparsed(line: str, reason: str) -> RawRecord:
    """The record of a line a parser could not read: the raw line is kept as the message."""
    return {"message": line, "parse_error": reason}


def uint(value: Any) -> int:
    """A count or status as logs write it: ASCII digits only (``int()`` would also take ``-5``,
    ``+5`` and ``1_000``); at most 18 of them, so it fits every integer column."""
    if type(value) is str and value.isdigit() and len(value) < 19 and value.isascii():
        return int(value)  # the common case, first
    if type(value) is int:
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return value
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise ValueError(f"{text!r} is not a non-negative integer")
    return int(text)


_INF = float("inf")


def ufloat(value: Any) -> float:
    """A duration as logs write it: a finite, non-negative number."""
    out = float(value)
    if not 0 <= out < _INF:
        raise ValueError(f"{value!r} is not a finite non-negative number")
    return out


def seconds_to_ms(value: Any) -> float:
    """Seconds as logs write them → ms rounded to the µs. Raises ``ValueError`` where the ms
    overflow (``1e306`` s is finite, its ms are inf, which ``normalize`` rejects and JSON cannot
    hold): the parser then keeps the line with a ``parse_error`` instead of a record that fails."""
    out = round(ufloat(value) * 1000, 3)
    if out == _INF:
        raise ValueError(f"{value!r} seconds overflow as milliseconds")
    return out


_HTTP_NUMBERS = tuple(name for name, kind in HTTP_FIELDS.items() if kind is not str)
_TIMESTAMP_SET = frozenset(TIMESTAMP_KEYS)
#: normalize reads an integer timestamp by its magnitude; from 1973-03-03 on, ns are unmistakable
_UNAMBIGUOUS_NS = 10**17
#: the latest ns ``parse_timestamp`` takes (``record._MAX_NS``, 2262)
_MAX_NS = 2**63 - 1
_GUARDED = _TIMESTAMP_SET | {"http"} | {"http." + name for name in _HTTP_NUMBERS}
_HTTP_FLAT = frozenset("http." + name for name in _HTTP_NUMBERS)
#: (name, its flat key, its type, its largest value) of each numeric http field
_HTTP_CHECKS = tuple((name, "http." + name, HTTP_FIELDS[name], HTTP_MAX[name]) for name in _HTTP_NUMBERS)
#: times of logger dialects (logharbor.dialects) that the record's own keys do not name
_DIALECT_TIMES = frozenset(("@t", "ISODATE"))


def timestamp_value(ns: int) -> int | str:
    """The ``timestamp`` a parser returns for a time it parsed to ``ns``: the integer itself, or
    RFC 3339 text before 1973-03-03. ``normalize`` reads an integer by its magnitude (s, ms, µs,
    ns), so 20 s after the epoch as ns (2e10) would be re-read as seconds (year 2603, rejected)
    and 1e12 ns as ms (2001): text says the same instant without that guess."""
    return ns if ns >= _UNAMBIGUOUS_NS else format_timestamp(ns)


def guard(raw: RawRecord, line: str) -> RawRecord:
    """Check what ``normalize`` would reject in a record whose values came from the log writer
    (json, logfmt, regex groups): the timestamp it would use and the numeric ``http`` fields.

    Parsers that pass keys through call this so their contract holds: the record they return
    always normalizes; a record that would not is returned as the unparsed line and the reason.
    The timestamp, once parsed, is stored back as integer ns so it is never parsed twice.
    """
    hits = raw.keys() & _GUARDED  # one C-level intersection; most records stop here or after
    if not hits:
        if raw.keys() & _DIALECT_TIMES:  # Serilog's @t, syslog-ng's ISODATE: read as normalize does
            try:
                normalize(raw)
            except RecordError as exc:
                return unparsed(line, str(exc))
        return raw
    if hits & _TIMESTAMP_SET:
        for key in TIMESTAMP_KEYS:  # normalize uses the first one present, in this order
            value = raw.get(key)
            if type(value) is int and _UNAMBIGUOUS_NS <= value <= _MAX_NS:
                break  # integer ns already (a parser's own time): parse_timestamp returns it as is
            if value is not None and value != "":
                try:
                    ns = parse_timestamp(value)
                except RecordError as exc:
                    return unparsed(line, str(exc))
                if ns >= _UNAMBIGUOUS_NS:
                    raw[key] = ns  # parsed once: normalize takes integer ns as they are
                break
    http = raw.get("http")
    nested = http if isinstance(http, dict) else None
    flat = not hits.isdisjoint(_HTTP_FLAT)  # "http.status" written flat: rare
    for name, flat_key, kind, most in _HTTP_CHECKS:
        for value in (nested.get(name) if nested else None, raw.get(flat_key) if flat else None):
            if value is None or (type(value) is kind and 0 <= value <= most):
                continue  # absent, or what http_value returns as it is (its first test)
            try:
                http_value(name, value)  # normalize's own check: one rule, not a copy that drifts
            except RecordError as exc:
                return unparsed(line, str(exc))
    return raw


@dataclass(frozen=True)
class ParserKind:
    """One registered parser kind: its options model and how to build it from valid options.

    Calling the kind with keyword options validates them and returns a ready parser, so a kind is
    the ``factory`` that ``PARSERS`` maps names to.
    """

    name: str
    options: type[Options]
    build: Callable[[Any], Parser]
    summary: str

    def __call__(self, **options: Any) -> Parser:
        try:
            valid = self.options.model_validate(options)
        except ValidationError as exc:
            raise ParserConfigError(_describe(self.name, exc)) from None
        return self.build(valid)


def _describe(name: str, exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        parts.append(f"option {loc!r}: {msg}" if loc else msg)
    return f"parser {name!r}: " + "; ".join(parts)


#: name → kind. Built-in kinds register themselves exactly as an outside plugin would.
PARSERS: dict[str, ParserKind] = {}

_BUILTIN_MODULES = ("json", "logfmt", "nginx", "alb", "syslog", "regex")
_loaded = False


def register(name: str, options: type[Options], summary: str) -> Callable[[Callable[[Any], Parser]], Any]:
    """Decorator registering ``build(options) -> Parser`` under ``name``."""

    def deco(build: Callable[[Any], Parser]) -> Callable[[Any], Parser]:
        if name in PARSERS and PARSERS[name].build is not build:
            raise FormatError(f"parser {name!r} is registered twice")
        PARSERS[name] = ParserKind(name=name, options=options, build=build, summary=summary)
        return build

    return deco


def load_builtins() -> dict[str, ParserKind]:
    """Import the built-in parser modules so they are in :data:`PARSERS`; returns the registry."""
    global _loaded
    if not _loaded:
        for mod in _BUILTIN_MODULES:
            importlib.import_module(f"logharbor.formats.{mod}")
        _loaded = True
    return PARSERS


def build_parser(name: str, **options: Any) -> Parser:
    """Build the parser ``name`` from config options, validating them up front."""
    kinds = load_builtins()
    kind = kinds.get(name)
    if kind is None:
        known = ", ".join(sorted(kinds))
        raise ParserConfigError(f"unknown parser {name!r} (known: {known})")
    return kind(**options)
