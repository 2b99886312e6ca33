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

from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = [
    "PARSERS",
    "FormatError",
    "Options",
    "Parser",
    "ParserConfigError",
    "ParserKind",
    "build_parser",
    "register",
    "unparsed",
]


class FormatError(ValueError):
    """Root of the formats exception tree."""


class ParserConfigError(FormatError):
    """A parser's options are invalid; raised at build time, the message names the option."""


@runtime_checkable
class Parser(Protocol):
    """Turns one line (without its newline) into a raw record dict; never raises, never drops."""

    def parse(self, line: str) -> dict[str, Any]:
        """Return the raw record for ``line``, or ``{"message": line, "parse_error": why}``."""
        ...


class Options(BaseModel):
    """Base of every parser's options: unknown keys are errors (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def unparsed(line: str, reason: str) -> dict[str, Any]:
    """The record of a line a parser could not read: the raw line is kept as the message."""
    return {"message": line, "parse_error": reason}


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
