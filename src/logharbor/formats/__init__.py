"""Parsers from lines to raw records (json, logfmt, nginx, alb, syslog, regex) and the multiline
aggregator, shared by the agent and the server. See docs/formats.md."""

from logharbor.formats.base import (
    PARSERS,
    FormatError,
    Parser,
    ParserConfigError,
    ParserKind,
    build_parser,
    load_builtins,
    unparsed,
)

__all__ = [
    "PARSERS",
    "FormatError",
    "Parser",
    "ParserConfigError",
    "ParserKind",
    "build_parser",
    "load_builtins",
    "unparsed",
]
