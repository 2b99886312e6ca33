"""AST → query text, so a parsed query can be shown, stored and edited as text again.

``parse(to_text(q)) == q`` for every query the parser can produce (a property test checks it).
Words are escaped rather than quoted so a word stays a word; a range bound or comparison value
that is not plain is written as a phrase, which the parser reads back as the same string.
"""

from __future__ import annotations

import re

from . import ast

__all__ = ["to_text"]

_PLAIN_BOUND = re.compile(r"[A-Za-z0-9_.:+\-@/]+")
_ALWAYS_ESCAPE = frozenset(' \t\r\n()[]{}"|\\:')
_KEYWORDS = frozenset({"AND", "OR", "NOT", "TO"})


def _escape_literal(ch: str) -> str:
    return "\\" + ch if ch in _ALWAYS_ESCAPE or ch in "*?" else ch


def _word(value: str) -> str:
    """A literal word: every special character escaped, and a leading one that starts an operator."""
    out = "".join(_escape_literal(ch) for ch in value)
    return _guard_start(out, value)


def _guard_start(out: str, value: str) -> str:
    if value.upper() in _KEYWORDS or (out and out[0] in "-+/<>"):
        return "\\" + out
    return out


def _wildcard(pattern: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append("\\" + pattern[i + 1])
            i += 2
            continue
        out.append(ch if ch in "*?" else _escape_literal(ch))
        i += 1
    text = "".join(out)
    return "\\" + text if text and text[0] in "-+/<>" else text


def _phrase(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _plain_or_phrase(value: str) -> str:
    if _PLAIN_BOUND.fullmatch(value) and value.upper() not in _KEYWORDS and value[0] not in "-+/<>":
        return value
    return _phrase(value)


def _matcher(m: ast.Matcher) -> str:
    if isinstance(m, ast.Word):
        return _word(m.value)
    if isinstance(m, ast.Phrase):
        return _phrase(m.value)
    if isinstance(m, ast.Wildcard):
        return _wildcard(m.pattern)
    if isinstance(m, ast.Regex):
        return "/" + m.pattern.replace("/", "\\/") + "/"
    if isinstance(m, ast.Compare):
        return m.op + _plain_or_phrase(m.value)
    lo = "*" if m.lo is None else _plain_or_phrase(m.lo)
    hi = "*" if m.hi is None else _plain_or_phrase(m.hi)
    return f"{'[' if m.lo_inclusive else '{'}{lo} TO {hi}{']' if m.hi_inclusive else '}'}"


def filter_text(f: ast.Filter) -> str:
    """One filter as text (used for ``where`` too)."""
    if isinstance(f, ast.MatchAll):
        return "*"
    if isinstance(f, ast.Exists):
        return f"_exists_:{f.field}"
    if isinstance(f, ast.Match):
        body = _matcher(f.matcher)
        return body if f.field is None else f"{f.field}:{body}"
    if isinstance(f, ast.Not):
        inner = f.operand
        text = filter_text(inner)
        return f"NOT ({text})" if isinstance(inner, ast.And | ast.Or) else f"NOT {text}"
    joiner = " AND " if isinstance(f, ast.And) else " OR "
    parts = []
    for item in f.items:
        text = filter_text(item)
        parts.append(f"({text})" if isinstance(item, ast.And | ast.Or) else text)
    return joiner.join(parts)


def _agg(a: ast.Agg) -> str:
    call = f"{a.fn}({a.arg or ''})"
    return f"{call} as {a.alias}" if a.alias else call


def _by(names: tuple[str, ...]) -> str:
    return f" by {', '.join(names)}" if names else ""


def pipe_text(p: ast.Pipe) -> str:
    """One pipe as text, without the leading ``|``."""
    if isinstance(p, ast.Where):
        return f"where {filter_text(p.filter)}"
    if isinstance(p, ast.Fields):
        return "fields " + ", ".join(p.names)
    if isinstance(p, ast.Dedup):
        return "dedup " + ", ".join(p.names)
    if isinstance(p, ast.Sort):
        return "sort by " + ", ".join(k.name + (" desc" if k.descending else "") for k in p.keys)
    if isinstance(p, ast.Limit):
        return f"limit {p.count}"
    if isinstance(p, ast.Top):
        return f"{'rare' if p.rare else 'top'} {p.count} {p.field}"
    if isinstance(p, ast.Patterns):
        return "patterns" + (f" compare {p.compare}" if p.compare is not None else "")
    if isinstance(p, ast.Stats):
        return "stats " + ", ".join(_agg(a) for a in p.aggs) + _by(p.by)
    span = f"span={p.span} " if p.span else ""
    return "timechart " + span + ", ".join(_agg(a) for a in p.aggs) + _by(p.by)


def to_text(q: ast.Query) -> str:
    """The canonical text of a query."""
    parts = [filter_text(q.filter)]
    parts.extend(pipe_text(p) for p in q.pipes)
    return " | ".join(parts)
