"""Recursive-descent parser: query text → :class:`~logharbor.server.features.query.ast.Query`.

Grammar (precedence from loose to tight: ``|``, ``OR``, ``AND``/implicit AND, ``NOT``/``-``)::

    query   := filter? ("|" pipe)*
    filter  := and ("OR" and)*
    and     := unary (("AND")? unary)*
    unary   := ("NOT" | "-") unary | "+" unary | primary
    primary := "(" filter ")" | FIELD ":" value | word | "phrase" | /regex/ | *
    value   := "(" vor ")" | range | (">"|">="|"<"|"<=") word | word | "phrase" | /regex/ | *

Keywords ``AND OR NOT TO`` are case-insensitive (as in Kibana's KQL); escape or quote them to
search for the word. Every error names what was expected and the 0-based position.
"""

from __future__ import annotations

import re
from dataclasses import replace

from . import ast
from .errors import QuerySyntaxError, UnknownFunctionError
from .lexer import FIELD_NAME, Lexer, Mode, Token

__all__ = ["FUNCTIONS", "is_function", "parse"]

#: stats/timechart functions; percentiles are any ``pNN`` (``p50``, ``p99``, ``p999``).
FUNCTIONS = frozenset(
    {"count", "count_uniq", "sum", "avg", "min", "max", "rate", "first", "last"}
)
_PERCENTILE = re.compile(r"p(\d{1,3})")
_NO_ARG = frozenset({"rate"})
_OPTIONAL_ARG = frozenset({"count"})
_PIPES = ("where", "fields", "sort", "limit", "head", "stats", "timechart", "top", "rare", "dedup",
          "patterns")
#: deepest nesting of parentheses and NOTs; deeper input is refused, not a stack overflow
MAX_DEPTH = 64


def is_function(name: str) -> bool:
    """Whether ``name`` is a stats function (percentile names ``p1``…``p999`` included)."""
    m = _PERCENTILE.fullmatch(name)
    if m is not None:
        return 0 < int(m[1]) and not (len(m[1]) == 3 and m[1].endswith("0"))
    return name in FUNCTIONS


def parse(text: str) -> ast.Query:
    """Parse a whole query or raise :class:`QuerySyntaxError` / :class:`UnknownFunctionError`."""
    return _Parser(text).query()


def _describe(token: Token) -> str:
    return "the end of the query" if token.kind == "EOF" else repr(token.raw or token.value)


def _keyword(token: Token, *words: str) -> bool:
    plain = token.kind == "WORD" and not token.wild and token.raw == token.value
    return plain and token.value.upper() in words


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.lex = Lexer(text)
        self.depth = 0

    def nest(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QuerySyntaxError(
                f"the query nests deeper than {MAX_DEPTH} levels at {token.start}", token.start
            )

    def fail(self, token: Token, expected: str) -> QuerySyntaxError:
        found = _describe(token)
        return QuerySyntaxError(f"expected {expected} at {token.start}, found {found}", token.start)

    # ----------------------------------------------------------------------------------- query

    def query(self) -> ast.Query:
        first = self.lex.peek(Mode.FILTER)
        filt: ast.Filter = ast.MatchAll() if first.kind in ("EOF", "PIPE") else self.filter()
        end = self.lex.peek(Mode.FILTER)
        if end.kind not in ("EOF", "PIPE"):
            raise self.fail(end, "AND, OR, '|' or the end of the query")
        pipes: list[ast.Pipe] = []
        while self.lex.peek(Mode.PIPE).kind == "PIPE":
            self.lex.take(Mode.PIPE)
            pipes.append(self.pipe())
        end = self.lex.peek(Mode.PIPE)
        if end.kind != "EOF":
            raise self.fail(end, "'|' or the end of the query")
        return ast.Query(filt, tuple(pipes))

    # ---------------------------------------------------------------------------------- filter

    def filter(self) -> ast.Filter:
        items = [self.conjunction()]
        while _keyword(self.lex.peek(Mode.FILTER), "OR"):
            self.lex.take(Mode.FILTER)
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else ast.Or(tuple(items))

    def conjunction(self) -> ast.Filter:
        items = [self.unary()]
        while True:
            token = self.lex.peek(Mode.FILTER)
            if token.kind in ("EOF", "PIPE", "RPAREN") or _keyword(token, "OR"):
                break
            if _keyword(token, "AND"):
                self.lex.take(Mode.FILTER)
            items.append(self.unary())
        return items[0] if len(items) == 1 else ast.And(tuple(items))

    def unary(self) -> ast.Filter:
        token = self.lex.peek(Mode.FILTER)
        if _keyword(token, "NOT") or token.kind == "MINUS":
            self.lex.take(Mode.FILTER)
            self.nest(token)
            operand = self.unary()
            self.depth -= 1
            return ast.Not(operand)
        if token.kind == "PLUS":
            self.lex.take(Mode.FILTER)
            return self.unary()
        return self.primary()

    def primary(self) -> ast.Filter:
        token = self.lex.take(Mode.FILTER)
        if token.kind == "LPAREN":
            self.nest(token)
            inner = self.filter()
            self.expect(Mode.FILTER, "RPAREN", f"')' to close the '(' at {token.start}")
            self.depth -= 1
            return inner
        if token.kind == "FIELD":
            return self.field_value(token)
        if token.kind == "WORD":
            if _keyword(token, "AND", "OR"):
                raise self.fail(token, "a search term before " + token.value.upper())
            if token.wild and token.pattern == "*":
                return ast.MatchAll()
            matcher = ast.Wildcard(token.pattern) if token.wild else ast.Word(token.value)
            return ast.Match(None, matcher, pos=token.start)
        if token.kind == "PHRASE":
            return ast.Match(None, ast.Phrase(token.value), pos=token.start)
        if token.kind == "REGEX":
            return ast.Match(None, self.regex(token), pos=token.start)
        raise self.fail(token, "a search term, a field:value or '('")

    def expect(self, mode: Mode, kind: str, what: str) -> Token:
        token = self.lex.take(mode)
        if token.kind != kind:
            raise self.fail(token, what)
        return token

    def regex(self, token: Token) -> ast.Regex:
        if not token.value:
            raise QuerySyntaxError(f"expected a pattern inside the regex at {token.start}", token.start)
        return ast.Regex(token.value)

    # ----------------------------------------------------------------------------- field:value

    def field_value(self, field_token: Token) -> ast.Filter:
        field = field_token.value
        if field == "_exists_":
            token = self.lex.take_name() or self.lex.take(Mode.VALUE)
            if token.kind != "WORD" or token.wild or not FIELD_NAME.fullmatch(token.value):
                raise QuerySyntaxError(
                    f"expected a field name after '_exists_:' at {token.start}, found {_describe(token)}",
                    token.start,
                )
            return ast.Exists(token.value, pos=field_token.start)
        return self.value_or(field, field_token)

    def value_or(self, field: str, field_token: Token) -> ast.Filter:
        token = self.lex.peek(Mode.VALUE)
        if token.kind != "LPAREN":
            return self.value(field, field_token)
        self.lex.take(Mode.VALUE)
        self.nest(token)
        inner = self.value_group(field, field_token)
        self.expect(Mode.VALUE, "RPAREN", f"')' to close the '(' at {token.start}")
        self.depth -= 1
        return inner

    def value_group(self, field: str, field_token: Token) -> ast.Filter:
        ors = [self.value_and(field, field_token)]
        while _keyword(self.lex.peek(Mode.VALUE), "OR"):
            self.lex.take(Mode.VALUE)
            ors.append(self.value_and(field, field_token))
        return ors[0] if len(ors) == 1 else ast.Or(tuple(ors))

    def value_and(self, field: str, field_token: Token) -> ast.Filter:
        items = [self.value_unary(field, field_token)]
        while True:
            token = self.lex.peek(Mode.VALUE)
            if token.kind in ("EOF", "RPAREN", "PIPE") or _keyword(token, "OR"):
                break
            if _keyword(token, "AND"):
                self.lex.take(Mode.VALUE)
            items.append(self.value_unary(field, field_token))
        return items[0] if len(items) == 1 else ast.And(tuple(items))

    def value_unary(self, field: str, field_token: Token) -> ast.Filter:
        if _keyword(self.lex.peek(Mode.VALUE), "NOT"):
            token = self.lex.take(Mode.VALUE)
            self.nest(token)
            operand = self.value_unary(field, field_token)
            self.depth -= 1
            return ast.Not(operand)
        return self.value_or(field, field_token)

    def value(self, field: str, field_token: Token) -> ast.Filter:
        token = self.lex.take(Mode.VALUE)
        kind = token.kind
        at = field_token.start
        if kind == "WORD" and not _keyword(token, "AND", "OR", "NOT"):
            if token.wild and token.pattern == "*":
                return ast.Exists(field, pos=at)
            matcher = ast.Wildcard(token.pattern) if token.wild else ast.Word(token.value)
            return ast.Match(field, matcher, pos=at)
        if kind == "PHRASE":
            return ast.Match(field, ast.Phrase(token.value), pos=at)
        if kind == "REGEX":
            return ast.Match(field, self.regex(token), pos=at)
        if kind == "CMP":
            operand = self.lex.take(Mode.VALUE)
            if operand.kind not in ("WORD", "PHRASE") or operand.wild:
                raise QuerySyntaxError(
                    f"expected a value after '{field}:{token.value}' at {operand.start}", operand.start
                )
            return ast.Match(field, ast.Compare(token.value, operand.value), pos=at)  # type: ignore[arg-type]
        if kind in ("LBRACKET", "LBRACE"):
            return ast.Match(field, self.range(token), pos=at)
        raise QuerySyntaxError(f"expected a value after '{field}:' at {token.start}", token.start)

    def range(self, opener: Token) -> ast.Range:
        lo = self.bound()
        to = self.lex.take(Mode.RANGE)
        if not _keyword(to, "TO") and not (to.kind == "WORD" and to.value == "TO"):
            raise self.fail(to, "TO inside the range")
        hi = self.bound()
        closer = self.lex.take(Mode.RANGE)
        if closer.kind not in ("RBRACKET", "RBRACE"):
            raise self.fail(closer, f"']' or '}}' to close the range at {opener.start}")
        return ast.Range(lo, hi, opener.kind == "LBRACKET", closer.kind == "RBRACKET")

    def bound(self) -> str | None:
        token = self.lex.take(Mode.RANGE)
        if token.kind == "PHRASE":
            return token.value
        if token.kind == "WORD" and token.value != "TO":
            return None if token.wild and token.pattern == "*" else token.value
        raise self.fail(token, "a range bound or '*'")

    # ----------------------------------------------------------------------------------- pipes

    def name(self, what: str = "a field name") -> str:
        token = self.lex.take_name() or self.lex.take(Mode.PIPE)
        if token.kind != "WORD" or not FIELD_NAME.fullmatch(token.value) or token.raw != token.value:
            raise self.fail(token, what)
        if self.lex.peek(Mode.PIPE).kind == "LPAREN":  # a stats column named after its call
            self.lex.take(Mode.PIPE)
            arg = ""
            if self.lex.peek(Mode.PIPE).kind == "WORD":
                arg = self.name()
            self.expect(Mode.PIPE, "RPAREN", "')'")
            return f"{token.value}({arg})"
        return token.value

    def names(self) -> tuple[str, ...]:
        out = [self.name()]
        while self.lex.peek(Mode.PIPE).kind == "COMMA":
            self.lex.take(Mode.PIPE)
            out.append(self.name())
        return tuple(out)

    def number(self, what: str) -> int:
        token = self.lex.take(Mode.PIPE)
        if token.kind != "WORD" or not token.value.isascii() or not token.value.isdigit():
            raise self.fail(token, what)
        return int(token.value)

    def pipe(self) -> ast.Pipe:
        token = self.lex.take(Mode.PIPE)
        name = token.value.lower() if token.kind == "WORD" else ""
        if name not in _PIPES:
            raise QuerySyntaxError(
                f"expected a pipe ({', '.join(_PIPES)}) at {token.start}, found {_describe(token)}",
                token.start,
            )
        at = token.start
        if name == "where":
            if self.lex.peek(Mode.FILTER).kind in ("EOF", "PIPE"):
                raise self.fail(self.lex.peek(Mode.FILTER), "a filter after 'where'")
            return ast.Where(self.filter(), pos=at)
        if name == "fields":
            return ast.Fields(self.names(), pos=at)
        if name == "dedup":
            return ast.Dedup(self.names(), pos=at)
        if name in ("limit", "head"):
            return ast.Limit(self.number(f"a number after '{name}'"))
        if name == "sort":
            return replace(self.sort(), pos=at)
        if name in ("top", "rare"):
            count = 10
            if self.lex.peek(Mode.PIPE).kind == "WORD" and self.lex.peek(Mode.PIPE).value.isdigit():
                count = self.number("a number")
            return ast.Top(count, self.name(), rare=name == "rare", pos=at)
        if name == "patterns":
            nxt = self.lex.peek(Mode.PIPE)
            if not (nxt.kind == "WORD" and nxt.value.lower() == "compare"):
                return ast.Patterns(pos=at)
            self.lex.take(Mode.PIPE)
            value = self.lex.take(Mode.PIPE)
            if value.kind != "WORD" or value.raw != value.value:
                raise self.fail(value, "a duration after 'compare' such as 1h")
            return ast.Patterns(value.value, pos=at)
        if name == "stats":
            aggs = self.aggs()
            return ast.Stats(aggs, self.by(), pos=at)
        return replace(self.timechart(), pos=at)

    def sort(self) -> ast.Sort:
        if _keyword(self.lex.peek(Mode.PIPE), "BY"):  # "sort by x" and "sort x" are the same
            self.lex.take(Mode.PIPE)
        keys = []
        while True:
            name = self.name()
            descending = False
            nxt = self.lex.peek(Mode.PIPE)
            if nxt.kind == "WORD" and nxt.value.lower() in ("asc", "desc"):
                self.lex.take(Mode.PIPE)
                descending = nxt.value.lower() == "desc"
            keys.append(ast.SortKey(name, descending))
            if self.lex.peek(Mode.PIPE).kind != "COMMA":
                return ast.Sort(tuple(keys))
            self.lex.take(Mode.PIPE)

    def timechart(self) -> ast.Timechart:
        span = ""
        first = self.lex.peek(Mode.PIPE)
        if first.kind == "WORD" and first.value.lower() == "span":
            self.lex.take(Mode.PIPE)
            self.expect(Mode.PIPE, "EQ", "'=' after span")
            value = self.lex.take(Mode.PIPE)
            if value.kind != "WORD":
                raise self.fail(value, "a duration after 'span=' such as 1m")
            span = value.value
        aggs = self.aggs()
        return ast.Timechart(span, aggs, self.by())

    def by(self) -> tuple[str, ...]:
        token = self.lex.peek(Mode.PIPE)
        if not (token.kind == "WORD" and token.value.lower() == "by"):
            return ()
        self.lex.take(Mode.PIPE)
        if self.lex.peek(Mode.PIPE).kind == "LPAREN":
            self.lex.take(Mode.PIPE)
            names = self.names()
            self.expect(Mode.PIPE, "RPAREN", "')' after the by-list")
            return names
        return self.names()

    def aggs(self) -> tuple[ast.Agg, ...]:
        out = [self.agg()]
        while self.lex.peek(Mode.PIPE).kind == "COMMA":
            self.lex.take(Mode.PIPE)
            out.append(self.agg())
        return tuple(out)

    def agg(self) -> ast.Agg:
        token = self.lex.take(Mode.PIPE)
        if token.kind != "WORD":
            raise self.fail(token, "a function such as count()")
        fn = token.value.lower()
        if not is_function(fn):
            raise UnknownFunctionError(
                f"unknown function {token.value!r} at {token.start}; known: "
                "count count_uniq sum avg min max p50 p90 p95 p99 rate first last",
                token.start,
            )
        self.expect(Mode.PIPE, "LPAREN", f"'(' after {fn}")
        arg = None
        if self.lex.peek(Mode.PIPE).kind == "WORD":
            arg_token = self.lex.peek(Mode.PIPE)
            arg = self.name()
            if fn in _NO_ARG:
                raise QuerySyntaxError(f"{fn}() takes no field, found {arg!r} at {arg_token.start}",
                                       arg_token.start)
        close = self.expect(Mode.PIPE, "RPAREN", f"')' to close {fn}(")
        if arg is None and fn not in _NO_ARG and fn not in _OPTIONAL_ARG:
            raise QuerySyntaxError(f"expected a field inside {fn}() at {close.start}", close.start)
        alias = None
        nxt = self.lex.peek(Mode.PIPE)
        if nxt.kind == "WORD" and nxt.value.lower() == "as":
            self.lex.take(Mode.PIPE)
            alias = self.name("a column name after 'as'")
        return ast.Agg(fn, arg, alias, pos=token.start)
