"""The log half of LogQL: a stream selector and its pipeline, parsed to one query-AST filter.

Why separate from :mod:`.logql`: the metric grammar (aggregations, binary operators) only wraps
log queries; what a selector, a line filter, a parser stage or a label filter means is here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from logharbor.server.features.query import ast
from logharbor.server.features.query.parser import MAX_DEPTH

from .ipmatch import ip_field_regex, ip_line_regex
from .lexer import LABEL, Tok, lex, line_regex, number_of, whole_tokens
from .matchers import label_match, matches_empty
from .nodes import KNOWN_UNSUPPORTED, LabelFormat, LogQLError, LogQuery, field_name
from .templates import (
    check_pattern,
    check_template,
    pattern_extractor,
    pattern_filter_regex,
    regexp_extractor,
)

__all__ = ["LogParser"]

_CMP = {"=", "!=", "=~", "!~", "==", ">", ">=", "<", "<="}
_LINE_OPS = ("|=", "!=", "|~", "!~", "|>", "!>")
_ERROR_LABELS = ("__error__", "__error_details__")


@dataclass
class _Pipeline:
    items: list[ast.Filter] = field(default_factory=list)
    parsed: bool = False
    extracted: set[str] = field(default_factory=set)
    extractors: list[Any] = field(default_factory=list)
    line_format: str | None = None
    label_formats: list[LabelFormat] = field(default_factory=list)
    unwrap: str | None = None
    conversion: str | None = None
    keep: list[str] | None = None
    drop: list[str] = field(default_factory=list)
    drop_if: list[tuple[str, str, str]] = field(default_factory=list)
    keep_if: list[tuple[str, str, str]] = field(default_factory=list)
    decolorize: bool = False
    unpack: bool = False


class LogParser:
    """Token helpers and the log-query grammar; :class:`.logql._Parser` adds the metrics."""

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

    def at(self, text: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok.text == text and tok.kind in ("op", "name")

    def accept(self, text: str) -> bool:
        if self.at(text):
            self.i += 1
            return True
        return False

    def expect(self, text: str, what: str) -> Tok:
        tok = self.take()
        if tok.text != text or tok.kind not in ("op", "name"):
            raise LogQLError(f"expected {what} at {tok.pos}, found {tok.text or 'the end'!r}", tok.pos)
        return tok

    def string(self, what: str) -> str:
        tok = self.take()
        if tok.kind != "str":
            raise LogQLError(f"expected a quoted {what} at {tok.pos}, found {tok.text or 'the end'!r}",
                             tok.pos)
        return str(tok.value)

    def label(self) -> str:
        tok = self.take()
        if tok.kind != "name" or not LABEL.fullmatch(tok.text):
            raise LogQLError(f"expected a label name at {tok.pos}, found {tok.text or 'the end'!r}", tok.pos)
        return tok.text

    # ------------------------------------------------------------------------------ log queries
    def selector(self) -> tuple[list[ast.Filter], list[str]]:
        start = self.expect("{", "'{'")
        items: list[ast.Filter] = []
        names: list[str] = []
        usable = False
        while not self.accept("}"):
            name = self.label()
            op = self.take()
            if op.text not in ("=", "!=", "=~", "!~"):
                raise LogQLError(f"expected = != =~ or !~ after {name!r} at {op.pos}", op.pos)
            value = self.string("label value")
            items.append(label_match(name, op.text, value))
            names.append(name)
            usable = usable or not matches_empty(op.text, value)
            if not self.accept(","):
                self.expect("}", "'}'")
                break
        if not usable:
            raise LogQLError("queries require at least one regexp or equality matcher that does not match "
                             f"an empty value, e.g. {{app=\"x\"}} or {{app=~\".+\"}} (at {start.pos})",
                             start.pos)
        return items, names

    def log_query(self, *, allow_unwrap: bool = False) -> LogQuery:
        items, names = self.selector()
        pipe = _Pipeline(items=items)
        self.pipeline(pipe, allow_unwrap=allow_unwrap)
        return self.finish(pipe, names)

    def pipeline(self, pipe: _Pipeline, *, allow_unwrap: bool) -> None:
        while self.peek().kind == "op" and self.peek().text in (*_LINE_OPS, "|"):
            self.stage(pipe, allow_unwrap=allow_unwrap)

    def finish(self, pipe: _Pipeline, names: list[str]) -> LogQuery:
        flt: ast.Filter = (ast.MatchAll() if not pipe.items else pipe.items[0] if len(pipe.items) == 1
                           else ast.And(tuple(pipe.items)))
        return LogQuery(ast.Query(flt), tuple(dict.fromkeys(names)), pipe.parsed, tuple(pipe.extractors),
                        pipe.line_format, tuple(pipe.label_formats), pipe.unwrap,
                        None if pipe.keep is None else tuple(pipe.keep), tuple(pipe.drop), pipe.decolorize,
                        pipe.conversion, pipe.unpack, tuple(pipe.drop_if), tuple(pipe.keep_if))

    def line_filter(self, pipe: _Pipeline, tok: Tok) -> None:
        if pipe.line_format is not None or pipe.decolorize:
            after = "line_format" if pipe.line_format is not None else "decolorize"
            raise LogQLError(f"a line filter after {after} is not supported: logharbor filters the stored "
                             f"line (at {tok.pos})", tok.pos)
        kinds = {"|=": "exact", "!=": "exact", "|~": "regex", "!~": "regex", "|>": "pattern", "!>": "pattern"}
        alternatives: list[ast.Filter] = []
        literals: list[str] = []
        while True:
            if self.at("ip") and self.at("(", 1):
                ip_tok = self.take()
                self.take()
                spec = self.string("ip address")
                self.expect(")", "')'")
                if tok.text not in ("|=", "!="):
                    raise LogQLError(f"ip() goes with |= or != (at {ip_tok.pos})", ip_tok.pos)
                alternatives.append(ast.Match(None, ast.Regex(ip_line_regex(spec, ip_tok.pos)), pos=tok.pos))
            else:
                value = self.string("line filter")
                kind = kinds[tok.text]
                if value == "" and kind != "pattern":
                    alternatives.append(ast.MatchAll())
                else:
                    if kind == "regex":  # Go's defaults in Loki's line filters: `.` stops at a newline
                        check_pattern(value, tok.pos)
                    pattern = (line_regex(value) if kind == "exact" else pattern_filter_regex(value)
                               if kind == "pattern" else f"(?-s:{value})")
                    literals.append(value)
                    alternatives.append(ast.Match(None, ast.Regex(pattern), pos=tok.pos))
            if not self.accept("or"):
                break
        if any(isinstance(a, ast.MatchAll) for a in alternatives):  # an empty literal matches every line
            if tok.text.startswith("!"):
                pipe.items.append(ast.Not(ast.MatchAll()))
            return
        # whole words of a single literal narrow through the index
        if tok.text == "|=" and len(alternatives) == 1 and len(literals) == 1:
            # on message only (a bare word is free text, which also reads the short fields)
            pipe.items.extend(ast.Match("message", ast.Word(w)) for w in whole_tokens(literals[0]))
        m = alternatives[0] if len(alternatives) == 1 else ast.Or(tuple(alternatives))
        pipe.items.append(ast.Not(m) if tok.text.startswith("!") else m)

    def stage(self, pipe: _Pipeline, *, allow_unwrap: bool) -> None:
        tok = self.take()
        if tok.text != "|":
            self.line_filter(pipe, tok)
            return
        word = self.peek()
        if pipe.unwrap is not None and word.text not in ("(", *_ERROR_LABELS) and not self._is_label_filter():
            raise LogQLError(f"'| {word.text}' after unwrap: only label filters may follow it "
                             f"(at {word.pos})",
                             word.pos)
        if word.kind == "name" and word.text in ("json", "logfmt") and not self._is_label_filter():
            self.take()
            pipe.parsed = True
            while self.peek().kind == "flag":  # --strict, --keep-empty: records are parsed at ingest
                if word.text != "logfmt":
                    flag = self.peek()
                    raise LogQLError(f"{flag.text} is a logfmt flag (at {flag.pos})", flag.pos)
                self.take()
            pipe.label_formats.extend(self.extraction_params())
            return
        if word.kind == "name" and word.text == "unpack" and not self._is_label_filter():
            self.take()
            pipe.parsed = pipe.unpack = True
            return
        if word.kind == "name" and word.text in ("regexp", "pattern") and self.peek(1).kind == "str":
            self.take()
            text = self.string(word.text)
            compiled = (regexp_extractor if word.text == "regexp" else pattern_extractor)(text, word.pos)
            pipe.extractors.append(compiled)
            pipe.extracted.update(compiled.groupindex)
            return
        if word.kind == "name" and word.text == "line_format" and self.peek(1).kind == "str":
            self.take()
            pipe.line_format = check_template(self.string("template"), word.pos)
            return
        if word.kind == "name" and word.text == "label_format" and not self._is_label_filter():
            self.take()
            self.label_format(pipe)
            return
        if word.kind == "name" and word.text in ("drop", "keep") and not self._is_label_filter():
            self.take()
            self.drop_keep(pipe, word.text)
            return
        if word.kind == "name" and word.text == "decolorize" and not self._is_label_filter():
            self.take()
            pipe.decolorize = True
            return
        if word.kind == "name" and word.text == "unwrap" and not self._is_label_filter():
            self.take()
            if not allow_unwrap:
                raise LogQLError(f"'| unwrap' belongs in a range aggregation such as sum_over_time "
                                 f"(at {word.pos})",
                                 word.pos)
            self.unwrap(pipe, word)
            return
        if word.kind == "name" and word.text in KNOWN_UNSUPPORTED and not self._is_label_filter():
            raise LogQLError(f"'| {word.text}' is not supported by logharbor's LogQL subset", word.pos)
        if word.kind != "name" and word.text != "(":
            raise LogQLError(f"expected a parser, a label filter or a format after '|' at {word.pos}, "
                             f"found {word.text or 'the end'!r}", word.pos)
        pipe.items.append(self.label_expr(pipe))

    def _is_label_filter(self) -> bool:
        """``| json="x"`` filters a label called json; ``| json`` is the parser."""
        return self.peek(1).kind == "op" and self.peek(1).text in _CMP

    def extraction_params(self) -> list[LabelFormat]:
        """``| json a="b.c", d`` / ``| logfmt a="b", c``: the labels named (a bare name is itself)."""
        out = []
        while self.peek().kind == "name" and not (
                self.peek(1).kind == "op" and self.peek(1).text in _CMP - {"="}):
            if self.peek(1).text == "=" and self.peek(2).kind != "str":
                break
            name = self.label()
            path = name
            if self.accept("="):
                path = self.string("json path")
            out.append(LabelFormat(name, source=_json_path(path)))
            if not self.accept(","):
                break
        return out

    def label_format(self, pipe: _Pipeline) -> None:
        while True:
            name = self.label()
            self.expect("=", "'='")
            src = self.peek()
            if src.kind == "str":
                made = LabelFormat(name, template=check_template(self.string("template"), src.pos))
            else:
                made = LabelFormat(name, source=self.resolve(pipe, self.label(), src.pos))
            pipe.label_formats.append(made)
            if not (self.at(",") and self.peek(1).kind == "name" and self.at("=", 2)):
                return
            self.take()

    def drop_keep(self, pipe: _Pipeline, word: str) -> None:
        names: list[str] = []
        conditions: list[tuple[str, str, str]] = []
        while True:
            name = self.label()
            if self.peek().text in ("=", "!=", "=~", "!~") and self.peek().kind == "op":
                op = self.take().text
                value = self.string("label value")
                if op in ("=~", "!~"):
                    check_pattern(f"^(?:{value})$", self.peek().pos)
                conditions.append((name, op, value))
            elif name not in _ERROR_LABELS:  # logharbor never sets these
                names.append(name)
            if not self.accept(","):
                break
        if word == "drop":
            pipe.drop.extend(names)
            pipe.drop_if.extend(conditions)
        else:
            kept = [n for n in names if pipe.keep is None or n in pipe.keep]
            pipe.keep = [*kept, *(c[0] for c in conditions)]
            pipe.keep_if.extend(conditions)

    def unwrap(self, pipe: _Pipeline, word: Tok) -> None:
        if self.peek().text in ("bytes", "duration", "duration_seconds") and self.at("(", 1):
            pipe.conversion = self.take().text
            self.take()
            name = self.label()
            self.expect(")", "')'")
        else:
            name = self.label()
        pipe.unwrap = self.resolve(pipe, name, word.pos)

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
        items = [self.label_and(pipe)]
        while self.accept("or"):
            items.append(self.label_and(pipe))
        return items[0] if len(items) == 1 else ast.Or(tuple(items))

    def label_and(self, pipe: _Pipeline) -> ast.Filter:
        items = [self.label_atom(pipe)]
        while self.peek().text in ("and", ",") or self.at("(") or (
                self.peek().kind == "name" and self.peek(1).kind == "op" and self.peek(1).text in _CMP):
            if self.peek().text in ("and", ","):
                self.take()
            items.append(self.label_atom(pipe))
        return items[0] if len(items) == 1 else ast.And(tuple(items))

    def label_atom(self, pipe: _Pipeline) -> ast.Filter:
        if self.at("("):
            paren = self.take()
            self.nest(paren)
            inner = self.label_expr(pipe)
            self.expect(")", "')'")
            self.nest(paren, -1)
            return inner
        tok = self.peek()
        name = self.label()
        op = self.take()
        if op.text not in _CMP or op.kind != "op":
            raise LogQLError(f"expected a comparison after {name!r} at {op.pos}", op.pos)
        if self.at("ip") and self.at("(", 1):
            ip_tok = self.take()
            self.take()
            spec = self.string("ip address")
            self.expect(")", "')'")
            if op.text not in ("=", "!="):
                raise LogQLError(f"ip() compares with = or != only (at {op.pos})", op.pos)
            regex = ast.Regex(ip_field_regex(spec, ip_tok.pos))
            m = ast.Match(self.resolve(pipe, name, tok.pos), regex, pos=tok.pos)
            return ast.Not(m) if op.text == "!=" else m
        negative = self.peek().text in ("-", "+") and self.peek().kind == "op" and \
            self.peek(1).kind in ("num", "dur", "bytes")
        sign = self.take().text if negative else "+"
        value_tok = self.take()
        if name in _ERROR_LABELS:  # logharbor has no parse errors: the label is always empty
            if value_tok.kind != "str":
                raise LogQLError(f"{name} compares with a string (at {value_tok.pos})", value_tok.pos)
            holds = matches_empty(op.text, str(value_tok.value))
            return ast.MatchAll() if holds else ast.Not(ast.MatchAll())
        target = self.resolve(pipe, name, tok.pos)
        if value_tok.kind == "str":
            if op.text not in ("=", "!=", "=~", "!~", "=="):
                raise LogQLError(f"{op.text} compares numbers, durations or sizes, not a string "
                                 f"(at {op.pos})", op.pos)
            return label_match(target, op.text, str(value_tok.value))
        if value_tok.kind not in ("num", "dur", "bytes"):
            raise LogQLError(f"expected a value after {name} {op.text} at {value_tok.pos}", value_tok.pos)
        if op.text in ("=~", "!~"):
            raise LogQLError(f"{op.text} needs a quoted regex (at {op.pos})", op.pos)
        number = number_of(value_tok, target, negative=sign == "-")
        if op.text in ("=", "=="):
            return ast.Match(target, ast.Phrase(number), pos=tok.pos)
        if op.text == "!=":
            return ast.Not(ast.Match(target, ast.Phrase(number), pos=tok.pos))
        return ast.Match(target, ast.Compare(op.text, number), pos=tok.pos)  # type: ignore[arg-type]


def _json_path(path: str) -> str:
    """``a.b``, ``a["b"]``, ``a[0]`` as the dotted path of the stored attribute."""
    return re.sub(r"\[\"?([^\]\"]+)\"?\]", r".\1", path).strip(".")
