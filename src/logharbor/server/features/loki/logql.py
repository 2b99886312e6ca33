"""LogQL parsed to logharbor's own query AST (:mod:`logharbor.server.features.query.ast`), as Loki parses it.

Why: Grafana's Loki data source speaks LogQL; logharbor answers it with the same compiler and
engine as its own language, so a LogQL query and its logharbor twin can never disagree.
Selectors, line filters and label filters become one :class:`~logharbor.server.features.query.ast.Filter`
(:mod:`.pipeline`); what the query language has no node for (output shaping, range and vector
aggregations, binary operators, ``label_replace``) is kept in the small wrappers of :mod:`.nodes`.

The grammar is Loki's (``pkg/logql/syntax/syntax.y``): operator precedence ``or`` < ``and
unless`` < comparisons < ``+ -`` < ``* / %`` < ``^`` (right-associative), ``bool``, ``on``/
``ignoring``, ``group_left``/``group_right``; grouping before or after an aggregation's
parentheses; a range before or after the pipeline, ``offset``; and Loki's validity rules (a
selector needs a matcher that does not match the empty value; which range functions take
``unwrap`` or a grouping). Every construct outside it raises :class:`LogQLError` naming it (a 400
upstream), and so does a query nested deeper than the native parser's
:data:`~logharbor.server.features.query.parser.MAX_DEPTH`: input never reaches Python's recursion limit.
"""

from __future__ import annotations

from logharbor.server.features.query.regex_re2 import Re2Error, compile_re2

from .lexer import LABEL, Tok, line_regex
from .nodes import (
    COMPARISONS,
    GROUPABLE,
    KNOWN_UNSUPPORTED,
    RANGE_FUNCTIONS,
    SET_OPS,
    UNWRAP_FUNCTIONS,
    VECTOR_OPS,
    Binary,
    Constant,
    Expr,
    LabelFormat,
    LabelReplace,
    LogQLError,
    LogQuery,
    Matching,
    RangeAgg,
    VectorAgg,
    combine,
    field_name,
)
from .pipeline import LogParser, _Pipeline
from .templates import render_template

__all__ = ["Binary", "Constant", "Expr", "LabelFormat", "LabelReplace", "LogQLError", "LogQuery", "RangeAgg",
           "VectorAgg", "field_name", "line_regex", "parse_logql", "render_template"]

_PRECEDENCE = {"or": 1, "and": 2, "unless": 2, "==": 3, "!=": 3, ">": 3, ">=": 3, "<": 3, "<=": 3,
               "+": 4, "-": 4, "*": 5, "/": 5, "%": 5, "^": 6}
#: range functions that take no unwrap (Loki's "invalid aggregation … with/without unwrap")
_NO_UNWRAP = {"count_over_time", "bytes_over_time", "bytes_rate", "rate", "absent_over_time"}
_MAY_UNWRAP = UNWRAP_FUNCTIONS | {"rate", "absent_over_time"}


class _Parser(LogParser):
    def parse(self) -> Expr:
        if self.peek().kind == "eof":
            raise LogQLError("the query is empty (or only a # comment)", 0)
        expr = self.binary(1)
        tok = self.peek()
        if tok.kind != "eof":
            raise LogQLError(f"unexpected {tok.text!r} at {tok.pos}", tok.pos)
        return expr

    def _binary_op(self) -> str | None:
        tok = self.peek()
        if tok.kind in ("op", "name") and tok.text in _PRECEDENCE:
            return tok.text
        return None

    def binary(self, min_prec: int) -> Expr:
        left = self.unary()
        chain = 0  # each operator of a chain is one level of the tree
        while (op := self._binary_op()) is not None and _PRECEDENCE[op] >= min_prec:
            tok = self.take()
            self.nest(tok)
            chain += 1
            is_bool, matching = self.modifiers(op, tok)
            right = self.binary(_PRECEDENCE[op] if op == "^" else _PRECEDENCE[op] + 1)
            left = combine(op, tok.pos, left, right, is_bool=is_bool, matching=matching)
        self.depth -= chain
        return left

    def modifiers(self, op: str, tok: Tok) -> tuple[bool, Matching]:
        is_bool = self.accept("bool")
        if is_bool and op not in COMPARISONS:
            raise LogQLError(f"bool goes with a comparison, not {op!r} (at {tok.pos})", tok.pos)
        on: tuple[str, ...] | None = None
        ignoring: tuple[str, ...] = ()
        card, include = "one-to-one", ()
        if self.at("on") or self.at("ignoring"):
            word = self.take().text
            names = self.label_list()
            if word == "on":
                on = names
            else:
                ignoring = names
            if self.at("group_left") or self.at("group_right"):
                if op in SET_OPS:
                    raise LogQLError(f"{self.peek().text} cannot be used with a set operation (at {tok.pos})",
                                     tok.pos)
                card = "many-to-one" if self.take().text == "group_left" else "one-to-many"
                include = self.label_list() if self.at("(") else ()
        return is_bool, Matching(on, ignoring, card, include)

    def label_list(self) -> tuple[str, ...]:
        self.expect("(", "'('")
        names: list[str] = []
        while not self.accept(")"):
            names.append(self.label())
            if not self.accept(","):
                self.expect(")", "')'")
                break
        return tuple(names)

    def unary(self) -> Expr:
        tok = self.peek()
        if tok.text in ("-", "+") and tok.kind == "op" and self.peek(1).kind == "num":
            self.take()
            number = self.take()
            return Constant(float(number.value) * (-1 if tok.text == "-" else 1), is_vector=False)  # type: ignore[arg-type]
        return self.term()

    def term(self) -> Expr:
        tok = self.peek()
        if tok.kind == "num":
            self.take()
            return Constant(float(tok.value), is_vector=False)  # type: ignore[arg-type]
        if tok.text == "(" and tok.kind == "op":
            self.take()
            self.nest(tok)
            inner = self.binary(1)
            self.expect(")", "')'")
            self.nest(tok, -1)
            return inner
        if tok.text == "{" and tok.kind == "op":
            return self.log_query()
        if tok.kind != "name":
            raise LogQLError(f"expected a stream selector, a number or a function at {tok.pos}, found "
                             f"{tok.text or 'the end'!r}", tok.pos)
        name = tok.text
        if name == "vector" and self.at("(", 1):
            self.take()
            self.take()
            value = self.take()
            if value.kind != "num":
                raise LogQLError(f"vector() takes a number (at {value.pos})", value.pos)
            self.expect(")", "')'")
            return Constant(float(value.value))  # type: ignore[arg-type]
        if name == "label_replace" and self.at("(", 1):
            return self.label_replace()
        if name in RANGE_FUNCTIONS and self.at("(", 1):
            return self.range_agg()
        if name in VECTOR_OPS and (self.at("(", 1) or self.peek(1).text in ("by", "without")):
            return self.vector_agg()
        if name in KNOWN_UNSUPPORTED:
            raise LogQLError(f"'{name}' is not a LogQL function (at {tok.pos})", tok.pos)
        raise LogQLError(f"unknown function or syntax {name!r} at {tok.pos}", tok.pos)

    # ------------------------------------------------------------------------------ aggregations
    def range_agg(self) -> RangeAgg:
        fn = self.take()
        open_paren = self.expect("(", "'('")
        self.nest(open_paren)
        quantile = None
        if self.peek().kind == "num":
            q = self.take()
            if fn.text != "quantile_over_time":
                raise LogQLError(f"{fn.text} takes no parameter (at {q.pos})", q.pos)
            quantile = float(q.value)  # type: ignore[arg-type]
            self.expect(",", "','")
        elif fn.text == "quantile_over_time":
            raise LogQLError(f"quantile_over_time needs a quantile such as 0.99 first (at {self.peek().pos})",
                             self.peek().pos)
        log, range_ns, offset_ns = self.log_range()
        self.expect(")", "')'")
        self.nest(open_paren, -1)
        by, without = self.grouping()
        if (by is not None or without is not None) and fn.text not in GROUPABLE:
            raise LogQLError(f"grouping not allowed for {fn.text} aggregation (at {fn.pos})", fn.pos)
        if log.unwrap is None and fn.text not in _NO_UNWRAP:
            raise LogQLError(f"invalid aggregation {fn.text} without unwrap: it needs '| unwrap <field>' "
                             f"(at {fn.pos})", fn.pos)
        if log.unwrap is not None and fn.text not in _MAY_UNWRAP:
            raise LogQLError(f"invalid aggregation {fn.text} with unwrap: it counts lines (at {fn.pos})",
                             fn.pos)
        if range_ns <= 0:
            raise LogQLError(f"the range of {fn.text} must be longer than zero (at {fn.pos})", fn.pos)
        return RangeAgg(fn.text, log, range_ns, quantile, by, without, offset_ns)

    def log_range(self) -> tuple[LogQuery, int, int]:
        """Loki's logRangeExpr: ``{…} [5m] | …``, ``{…} | … [5m]``, ``({…} | …)[5m]``, ``offset``."""
        if self.at("("):
            paren = self.take()
            self.nest(paren)
            if self.at("("):
                log, range_ns, offset_ns = self.log_range()
                self.expect(")", "')'")
                self.nest(paren, -1)
                return log, range_ns, offset_ns
            items, names = self.selector()
            pipe = _Pipeline(items=items)
            self.pipeline(pipe, allow_unwrap=True)
            range_ns, offset_ns = None, 0
            if self.peek().kind == "range":
                range_ns, offset_ns = self.range_and_offset()
            self.expect(")", "')'")
            self.nest(paren, -1)
            if range_ns is None:
                range_ns, offset_ns = self.range_and_offset()
                self.pipeline(pipe, allow_unwrap=True)  # ({…})[5m] | unwrap x
            return self.finish(pipe, names), range_ns, offset_ns
        items, names = self.selector()
        pipe = _Pipeline(items=items)
        if self.peek().kind == "range":
            range_ns, offset_ns = self.range_and_offset()
            self.pipeline(pipe, allow_unwrap=True)
        else:
            self.pipeline(pipe, allow_unwrap=True)
            range_ns, offset_ns = self.range_and_offset()
            self.pipeline(pipe, allow_unwrap=True)  # | unwrap x | __error__="" after the range
        return self.finish(pipe, names), range_ns, offset_ns

    def range_and_offset(self) -> tuple[int, int]:
        tok = self.take()
        if tok.kind != "range":
            raise LogQLError(f"expected a range such as [5m] at {tok.pos}, found {tok.text or 'the end'!r}",
                             tok.pos)
        offset = 0
        if self.accept("offset"):
            sign = -1 if self.accept("-") else 1
            dur = self.take()
            if dur.kind != "dur":
                raise LogQLError(f"offset needs a duration such as 1h (at {dur.pos})", dur.pos)
            offset = sign * int(dur.value)  # type: ignore[call-overload]
        return int(tok.value), offset  # type: ignore[call-overload]

    def vector_agg(self) -> VectorAgg:
        op = self.take()
        by, without = self.grouping()
        open_paren = self.expect("(", "'('")
        param = None
        if op.text in ("topk", "bottomk", "approx_topk"):
            k = self.take()
            if k.kind != "num" or not float(k.value).is_integer() or float(k.value) < 1:  # type: ignore[arg-type]
                raise LogQLError(f"{op.text} needs a whole number k > 0 first (at {k.pos})", k.pos)
            param = int(float(k.value))  # type: ignore[arg-type]
            self.expect(",", "','")
        elif self.peek().kind == "num" and self.at(",", 1):
            raise LogQLError(f"{op.text} takes no parameter (at {self.peek().pos})", self.peek().pos)
        self.nest(op)
        inner = self.binary(1)
        self.expect(")", "')'")
        self.nest(op, -1)
        if by is None and without is None:
            by, without = self.grouping()
        if op.text == "approx_topk" and (by is not None or without is not None):
            raise LogQLError(f"grouping not allowed for approx_topk aggregation (at {op.pos})", op.pos)
        if isinstance(inner, LogQuery) or (isinstance(inner, Constant) and not inner.is_vector):
            raise LogQLError(f"{op.text}() needs a metric query such as count_over_time(…) "
                             f"(at {open_paren.pos})",
                             open_paren.pos)
        return VectorAgg(op.text, inner, by, without, param)  # type: ignore[arg-type]

    def grouping(self) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
        if not (self.at("by") or self.at("without")):
            return None, None
        word = self.take().text
        names = self.label_list()
        return (names, None) if word == "by" else (None, names)

    def label_replace(self) -> LabelReplace:
        word = self.take()
        self.expect("(", "'('")
        self.nest(word)
        inner = self.binary(1)
        if isinstance(inner, LogQuery):
            raise LogQLError(f"label_replace needs a metric query (at {word.pos})", word.pos)
        args = []
        for what in ("destination label", "replacement", "source label", "regex"):
            self.expect(",", f"',' and the {what}")
            args.append(self.string(what))
        self.expect(")", "')'")
        self.nest(word, -1)
        dst, replacement, src, regex = args
        if not LABEL.fullmatch(dst) or "." in dst:
            raise LogQLError(f"label_replace: {dst!r} is not a valid label name (at {word.pos})", word.pos)
        try:
            compile_re2(f"^(?:{regex})$", dot_nl=False)
        except Re2Error as exc:
            raise LogQLError(f"label_replace: invalid regex {regex!r}: {exc} (at {word.pos})",
                             word.pos) from None
        return LabelReplace(inner, dst, replacement, src, regex)  # type: ignore[arg-type]


def parse_logql(text: str) -> Expr:
    """Parse LogQL text; raises :class:`LogQLError` (code ``invalid_logql``) with a position."""
    if not text.strip():
        raise LogQLError("the query is empty", 0)
    return _Parser(text).parse()
