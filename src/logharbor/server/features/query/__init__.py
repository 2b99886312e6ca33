"""The query language (DESIGN §3 "Query language"): text → AST → one parameterized SELECT.

Public surface used by the server, the alert evaluator and the CLI::

    compiled = compile_query("level:ERROR | stats count() by service", table=store.table,
                             time_from_ns=None, time_to_ns=None, limit=None, max_limit=10_000)
    rows = store.query(compiled.sql, compiled.params)

Errors are :class:`QueryError` subclasses with ``code``, ``message`` and ``position``.
"""

from __future__ import annotations

from .ast import Query
from .compiler import DEFAULT_LIMIT, CompiledQuery, compile_ast, compile_filter, compile_query
from .errors import (
    FilterOnlyError,
    InvalidRegexError,
    QueryError,
    QuerySyntaxError,
    QueryTypeError,
    UnknownFieldError,
    UnknownFunctionError,
)
from .parser import parse
from .printer import to_text
from .timeparse import TimeParseError, parse_duration_ns, parse_time_ns

__all__ = [
    "DEFAULT_LIMIT",
    "CompiledQuery",
    "FilterOnlyError",
    "InvalidRegexError",
    "Query",
    "QueryError",
    "QuerySyntaxError",
    "QueryTypeError",
    "TimeParseError",
    "UnknownFieldError",
    "UnknownFunctionError",
    "compile_ast",
    "compile_filter",
    "compile_query",
    "parse",
    "parse_duration_ns",
    "parse_time_ns",
    "to_text",
]
