"""A LogQL subset parsed to logharbor's own query AST (:mod:`logharbor.server.query.ast`).

Why: Grafana's Loki data source speaks LogQL; logharbor answers it with the same compiler and
engine as its own language, so a LogQL query and its logharbor twin can never disagree.
Selectors, line filters and label filters become one :class:`~logharbor.server.query.ast.Filter`;
what the query language has no node for (the output shaping of ``line_format``/``label_format``,
range and vector aggregations) is kept in the small wrappers of :mod:`.nodes`, next to that filter.

Every construct outside the subset raises :class:`LogQLError` naming it (a 400 upstream), and so
does a query nested deeper than the native parser's :data:`~logharbor.server.query.parser.MAX_DEPTH`
(parentheses, aggregations, and each operator of an arithmetic chain, whose tree is as deep as the
chain is long): input never reaches Python's recursion limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from logharbor.server.query import ast
from logharbor.server.query.parser import MAX_DEPTH

from .lexer import LABEL, Tok, duration, lex, line_regex, number_of, unquote, whole_tokens
from .matchers import label_match
from .nodes import (
    KNOWN_UNSUPPORTED,
    RANGE_FUNCTIONS,
    UNWRAP_FUNCTIONS,
    VECTOR_OPS,
    Binary,
    Constant,
    Expr,
    LabelFormat,
    LogQLError,
    LogQuery,
    RangeAgg,
    VectorAgg,
    combine,
    field_name,
)
from .templates import check_pattern, check_template, pattern_extractor, regexp_extractor, render_template

__all__ = ["Binary", "Constant", "Expr", "LabelFormat", "LogQLError", "LogQuery", "RangeAgg", "VectorAgg",
           "field_name", "line_regex", "parse_logql", "render_template"]



@dataclass
class _Pipeline:
    items: list[ast.Filter] = field(default_factory=list)
    parsed: bool = False
    extracted: set[str] = field(default_factory=set)
    extractors: list[re.Pattern[str]] = field(default_factory=list)
    line_format: str | None = None
    label_formats: list[LabelFormat] = field(default_factory=list)
    unwrap: str | None = None
    keep: list[str] | None = None
    drop: list[str] = field(default_factory=list)
    decolorize: bool = False


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = lex(text)
        self.i = 0
        self.depth = 0

    def nest(self, tok: Tok, levels: int = 1) -> None:
        """``levels`` deeper (``-levels`` to come back up); refused past MAX_DEPTH."""
        self.depth += levels
        if self.depth > MAX_DEPTH:
            raise LogQLError(f"the query nests deeper than {MAX_DEPTH} levels at {tok.pos}", tok.pos)

    # ------------------------------------------------------------------------------ helpers
    def peek(self, offset: int = 0) -> Tok:
        return self.toks[min(self.i + offset, len(self.toks) - 1)]

    def take(self) -> Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def accept(self, text: str) -> bool:
        if self.peek().text == text and self.peek().kind in ("op", "name"):
            self.i += 1
            return True
        return False

    def expect(self, text: str, what: str) -> Tok:
        tok = self.take()
        if tok.text != text:
            raise LogQLError(f"expected {what} at {tok.pos}, found {tok.text or 'the end'!r}", tok.pos)
        return tok

    def string(self, what: str) -> str:
        tok = self.take()
        if tok.kind != "str":
            raise LogQLError(f"expected a quoted {what} at {tok.pos}", tok.pos)
        return unquote(tok)

    def label(self) -> str:
        tok = self.take()
        if tok.kind != "name" or not LABEL.fullmatch(tok.text):
            raise LogQLError(f"expected a label name at {tok.pos}, found {tok.text or 'the end'!r}", tok.pos)
        return tok.text

    # ------------------------------------------------------------------------------ grammar
    def parse(self) -> Expr:
        expr = self.expr()
        tok = self.peek()
        if tok.kind != "eof":
            raise LogQLError(f"unexpected {tok.text!r} at {tok.pos}", tok.pos)
        return expr

    def expr(self) -> Expr:
        left = self.product()
        chain = 0  # `a + b + c` is a left-deep tree: each operator is one level
        while self.peek().text in ("+", "-") and self.peek().kind == "op":
            op = self.take()
            self.nest(op)
            chain += 1
            left = combine(op.text, op.pos, left, self.product())
        self.depth -= chain
        return left

    def product(self) -> Expr:
        left = self.term()
        chain = 0
        while self.peek().text in ("*", "/") and self.peek().kind == "op":
            op = self.take()
            self.nest(op)
            chain += 1
            left = combine(op.text, op.pos, left, self.term())
        self.depth -= chain
        return left

    def term(self) -> Expr:
        tok = self.peek()
        if tok.kind == "num":
            self.take()
            return Constant(float(tok.text), is_vector=False)
        if tok.text == "(":
            self.take()
            self.nest(tok)
            inner = self.expr()
            self.expect(")", "')'")
            self.nest(tok, -1)
            return inner
        if tok.text == "{":
            return self.log_query()
        if tok.kind != "name":
            raise LogQLError(f"expected a stream selector or a function at {tok.pos}", tok.pos)
        name = tok.text
        if name == "vector":
            self.take()
            self.expect("(", "'('")
            value = self.take()
            if value.kind != "num":
                raise LogQLError(f"vector() takes a number (at {value.pos})", value.pos)
            self.expect(")", "')'")
            return Constant(float(value.text))
        if name in RANGE_FUNCTIONS:
            return self.range_agg()
        if name in VECTOR_OPS:
            return self.vector_agg()
        if name in KNOWN_UNSUPPORTED:
            raise LogQLError(f"'{name}' is not supported by logharbor's LogQL subset", tok.pos)
        raise LogQLError(f"unknown function or syntax {name!r} at {tok.pos}", tok.pos)

    def range_agg(self) -> RangeAgg:
        fn = self.take()
        self.expect("(", "'('")
        quantile = None
        if fn.text == "quantile_over_time":
            q = self.take()
            if q.kind != "num" or not 0 <= float(q.text) <= 1:
                raise LogQLError(f"quantile_over_time needs a quantile between 0 and 1 (at {q.pos})", q.pos)
            quantile = float(q.text)
            self.expect(",", "','")
        if self.accept("("):
            log = self.log_query()
            self.expect(")", "')'")
        else:
            log = self.log_query()
        self.expect("[", "a range such as [5m]")
        dur = self.take()
        if dur.kind != "dur":
            raise LogQLError(f"expected a duration at {dur.pos}", dur.pos)
        self.expect("]", "']'")
        if self.peek().text == "offset":
            raise LogQLError("'offset' is not supported by logharbor's LogQL subset", self.peek().pos)
        self.expect(")", "')'")
        if self.peek().text in ("by", "without"):
            raise LogQLError(f"'{self.peek().text}' on a range aggregation is not supported; put it on "
                             "an outer sum/avg/min/max", self.peek().pos)
        needs_unwrap = fn.text in UNWRAP_FUNCTIONS
        if needs_unwrap and log.unwrap is None:
            raise LogQLError(f"{fn.text} needs '| unwrap <field>'", fn.pos)
        if not needs_unwrap and log.unwrap is not None:
            raise LogQLError(f"{fn.text} counts lines; '| unwrap' is for sum/avg/min/max/quantile_over_time",
                             fn.pos)
        return RangeAgg(fn.text, log, duration(dur), quantile)

    def vector_agg(self) -> VectorAgg:
        op = self.take()
        by, without = self.grouping()
        self.expect("(", "'('")
        param = None
        if op.text in ("topk", "bottomk"):
            k = self.take()
            if k.kind != "num" or not k.text.isdigit() or int(k.text) < 1:
                raise LogQLError(f"{op.text} needs a whole number k >= 1 (at {k.pos})", k.pos)
            param = int(k.text)
            self.expect(",", "','")
        self.nest(op)
        inner = self.expr()
        self.expect(")", "')'")
        self.nest(op, -1)
        if by is None and without is None:
            by, without = self.grouping()
        if not isinstance(inner, RangeAgg | VectorAgg | Binary):
            raise LogQLError(f"{op.text}() needs a metric query such as count_over_time(…)", op.pos)
        return VectorAgg(op.text, inner, by, without, param)

    def grouping(self) -> tuple[tuple[str, ...] | None, tuple[str, ...] | None]:
        word = self.peek().text
        if word not in ("by", "without") or self.peek().kind != "name":
            return None, None
        self.take()
        self.expect("(", "'(' after " + word)
        names: list[str] = []
        while not self.accept(")"):
            names.append(self.label())
            if not self.accept(","):
                self.expect(")", "')'")
                break
        return (tuple(names), None) if word == "by" else (None, tuple(names))

    def log_query(self) -> LogQuery:
        self.expect("{", "'{'")
        items: list[ast.Filter] = []
        selector: list[str] = []
        while not self.accept("}"):
            name = self.label()
            op = self.take()
            if op.text not in ("=", "!=", "=~", "!~"):
                raise LogQLError(f"expected = != =~ or !~ after {name!r} at {op.pos}", op.pos)
            items.append(label_match(name, op.text, self.string("label value")))
            selector.append(name)
            if not self.accept(","):
                self.expect("}", "'}'")
                break
        pipe = _Pipeline(items=items)
        while self.peek().text in ("|=", "!=", "|~", "!~", "|") and self.peek().kind == "op":
            self.stage(pipe)
        flt: ast.Filter = (ast.MatchAll() if not pipe.items else pipe.items[0] if len(pipe.items) == 1
                           else ast.And(tuple(pipe.items)))
        return LogQuery(ast.Query(flt), tuple(dict.fromkeys(selector)), pipe.parsed,
                        tuple(pipe.extractors), pipe.line_format, tuple(pipe.label_formats), pipe.unwrap,
                        None if pipe.keep is None else tuple(pipe.keep), tuple(pipe.drop), pipe.decolorize)

    def stage(self, pipe: _Pipeline) -> None:
        tok = self.take()
        if tok.text != "|":
            if pipe.line_format is not None or pipe.decolorize:
                after = "line_format" if pipe.line_format is not None else "decolorize"
                raise LogQLError(f"a line filter after {after} is not supported (at {tok.pos})", tok.pos)
            values = [self.string("line filter")]
            while self.accept("or"):  # |= "a" or "b": either; != "a" or "b": neither (as Loki)
                values.append(self.string("line filter"))
            if "" in values:  # an empty literal matches every line
                if tok.text in ("|=", "|~"):
                    return
                values = [v for v in values if v]
            alternatives: list[ast.Filter] = []
            for value in values:
                pattern = line_regex(value) if tok.text in ("|=", "!=") else value
                if tok.text in ("|~", "!~"):
                    check_pattern(pattern, tok.pos)
                alternatives.append(ast.Match(None, ast.Regex(pattern), pos=tok.pos))
            if not alternatives:
                pipe.items.append(ast.Not(ast.MatchAll()))  # != "": no line lacks the empty string
                return
            if tok.text == "|=" and len(values) == 1:  # whole words of the literal narrow through the index
                pipe.items.extend(ast.Match(None, ast.Word(w)) for w in whole_tokens(values[0]))
            m = alternatives[0] if len(alternatives) == 1 else ast.Or(tuple(alternatives))
            pipe.items.append(ast.Not(m) if tok.text.startswith("!") else m)
            return
        word = self.peek()
        if pipe.unwrap is not None and word.text != "__error__":
            raise LogQLError(f"'| {word.text}' after unwrap is not supported (at {word.pos})", word.pos)
        if word.text in ("json", "logfmt"):
            self.take()
            pipe.parsed = True
            while self.peek().text == "-" and self.peek(1).text == "-":  # logfmt --strict, --keep-empty
                self.i += 3
            if word.text == "json":
                pipe.label_formats.extend(self.json_params())
            return
        if word.text in ("regexp", "pattern"):
            self.take()
            text = self.string(word.text)
            make = regexp_extractor if word.text == "regexp" else pattern_extractor
            compiled = make(text, word.pos)
            pipe.extractors.append(compiled)
            pipe.extracted.update(compiled.groupindex)
            return
        if word.text == "line_format":
            self.take()
            pipe.line_format = check_template(self.string("template"), word.pos)
            return
        if word.text == "label_format":
            self.take()
            while True:
                name = self.label()
                self.expect("=", "'='")
                src = self.peek()
                if src.kind == "str":
                    made = LabelFormat(name, template=check_template(self.string("template"), src.pos))
                else:
                    made = LabelFormat(name, source=self.resolve(pipe, self.label(), src.pos))
                pipe.label_formats.append(made)
                if not self.accept(","):
                    return
        if word.text in ("drop", "keep"):
            self.take()
            names = []
            while True:
                name = self.label()
                if self.peek().text in ("=", "!=", "=~", "!~"):
                    raise LogQLError(f"'| {word.text} {name}{self.peek().text}…' (conditional) is not "
                                     "supported; name the labels only", word.pos)
                if name not in ("__error__", "__error_details__"):  # logharbor never sets these
                    names.append(name)
                if not self.accept(","):
                    break
            if word.text == "drop":
                pipe.drop.extend(names)
            else:
                pipe.keep = [n for n in names if pipe.keep is None or n in pipe.keep]
            return
        if word.text == "decolorize":
            self.take()
            pipe.decolorize = True
            return
        if word.text == "unwrap":
            self.take()
            name = self.label()
            if self.peek().text == "(":
                raise LogQLError(f"unwrap conversion function {name}() is not supported; unwrap a "
                                 "numeric field", word.pos)
            pipe.unwrap = self.resolve(pipe, name, word.pos)
            return
        if word.kind == "name" and word.text in KNOWN_UNSUPPORTED:
            raise LogQLError(f"'| {word.text}' is not supported by logharbor's LogQL subset", word.pos)
        pipe.items.append(self.label_expr(pipe))

    def json_params(self) -> list[LabelFormat]:
        out = []
        while self.peek().kind == "name" and self.peek(1).text == "=":
            name = self.label()
            self.take()
            path = self.string("json path")
            out.append(LabelFormat(name, source=re.sub(r"\[\"?([^\]\"]+)\"?\]", r".\1", path).strip(".")))
            if not self.accept(","):
                break
        return out

    def resolve(self, pipe: _Pipeline, name: str, pos: int) -> str:
        """The field behind a label name in a filter: renames followed, extracted labels refused."""
        for lf in reversed(pipe.label_formats):
            if lf.name == name:
                if lf.template is not None:
                    raise LogQLError(f"filtering on {name!r}, made by a label_format template, is not "
                                     "supported", pos)
                return lf.source or name
        if name in pipe.extracted:
            raise LogQLError(f"filtering or aggregating on {name!r}, extracted by regexp/pattern, is not "
                             "supported; filter the line with |~ instead", pos)
        return field_name(name)

    def label_expr(self, pipe: _Pipeline) -> ast.Filter:
        left = self.label_and(pipe)
        items = [left]
        while self.accept("or"):
            items.append(self.label_and(pipe))
        return items[0] if len(items) == 1 else ast.Or(tuple(items))

    def label_and(self, pipe: _Pipeline) -> ast.Filter:
        items = [self.label_atom(pipe)]
        while self.peek().text in ("and", ",") or (
                self.peek().kind == "name" and self.peek(1).kind == "op" and self.peek(1).text in _CMP):
            if self.peek().text in ("and", ","):
                self.take()
            items.append(self.label_atom(pipe))
        return items[0] if len(items) == 1 else ast.And(tuple(items))

    def label_atom(self, pipe: _Pipeline) -> ast.Filter:
        if self.peek().text == "(":
            paren = self.take()
            self.nest(paren)
            inner = self.label_expr(pipe)
            self.expect(")", "')'")
            self.nest(paren, -1)
            return inner
        tok = self.peek()
        name = self.label()
        op = self.take()
        if op.text not in _CMP:
            raise LogQLError(f"expected a comparison after {name!r} at {op.pos}", op.pos)
        value_tok = self.take()
        if name == "__error__":
            if value_tok.kind != "str" or op.text not in ("=", "!=", "=="):
                raise LogQLError("__error__ compares with a string", value_tok.pos)
            empty = unquote(value_tok) == ""
            return ast.MatchAll() if (op.text != "!=") == empty else ast.Not(ast.MatchAll())
        target = self.resolve(pipe, name, tok.pos)
        if value_tok.kind == "str":
            return label_match(target, op.text, unquote(value_tok))
        if value_tok.kind not in ("num", "dur", "bytes"):
            raise LogQLError(f"expected a value after {name} {op.text} at {value_tok.pos}", value_tok.pos)
        number = number_of(value_tok, target)
        if op.text in ("=~", "!~"):
            raise LogQLError(f"{op.text} needs a quoted regex (at {op.pos})", op.pos)
        if op.text in ("=", "=="):
            return ast.Match(target, ast.Phrase(number), pos=tok.pos)
        if op.text == "!=":
            return ast.Not(ast.Match(target, ast.Phrase(number), pos=tok.pos))
        return ast.Match(target, ast.Compare(op.text, number), pos=tok.pos)  # type: ignore[arg-type]


_CMP = {"=", "!=", "=~", "!~", "==", ">", ">=", "<", "<="}


def parse_logql(text: str) -> Expr:
    """Parse LogQL text; raises :class:`LogQLError` (code ``invalid_logql``) with a position."""
    if not text.strip():
        raise LogQLError("the query is empty")
    return _Parser(text).parse()
