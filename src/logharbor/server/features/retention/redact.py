"""What a delete-by-query names, and how its traces are redacted where the filter was stored.

A delete's filter holds the very values it erases (``user_id:u-123``). Once the job is over the
server keeps only its *shape* (``user_id:…``), so the audit log and the job table record that a
delete happened, by whom, when and how many records it removed, without the value; the one
who asked keeps the job id with their own record of the request. The literal values are also
what :mod:`.scrub` looks for in the metadata (alert labels, notification payloads, old audit
entries) and in damaged WAL copies.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable

from logharbor.server.features.query import ast, parse, to_text

__all__ = ["Redactor", "filter_literals", "redacted_filter"]

MASK = "…"
REPLACEMENT = "[deleted]"
#: shorter literals are replaced only where a whole string equals them (not inside other text)
MIN_SUBSTRING = 4
#: fields whose values are a fixed vocabulary, never looked for in the metadata
_VOCABULARY = frozenset({"level", "severity_number"})


def _matchers(f: ast.Filter) -> Iterable[ast.Match]:
    if isinstance(f, ast.Match):
        yield f
    elif isinstance(f, ast.Not):
        yield from _matchers(f.operand)
    elif isinstance(f, ast.And | ast.Or):
        for item in f.items:
            yield from _matchers(item)


def _filters(q: ast.Query) -> list[ast.Filter]:
    return [q.filter, *(p.filter for p in q.pipes if isinstance(p, ast.Where))]


def filter_literals(text: str) -> list[str]:
    """The exact values a filter names (words and phrases, of any field), longest first."""
    out: set[str] = set()
    for f in _filters(parse(text)):
        for match in _matchers(f):
            if match.field in _VOCABULARY:
                continue  # a level is no one's data, and "ERROR" is in every other text
            m = match.matcher
            if isinstance(m, ast.Word | ast.Phrase) and m.value.strip():
                out.add(m.value)
            elif isinstance(m, ast.Wildcard):
                # the fixed runs of a wildcard are literals too (``u-12*`` → ``u-12``)
                out.update(part for part in re.split(r"(?<!\\)[*?]", m.pattern)
                           if len(part) >= MIN_SUBSTRING)
    return sorted(out, key=lambda v: (-len(v), v))


def _mask(f: ast.Filter) -> ast.Filter:
    if isinstance(f, ast.Match):
        m = f.matcher
        if isinstance(m, ast.Range):
            masked: ast.Matcher = ast.Range(None if m.lo is None else MASK, None if m.hi is None else MASK,
                                            m.lo_inclusive, m.hi_inclusive)
        elif isinstance(m, ast.Compare):
            masked = ast.Compare(m.op, MASK)
        else:
            masked = ast.Word(MASK)
        return dataclasses.replace(f, matcher=masked)
    if isinstance(f, ast.Not):
        return ast.Not(_mask(f.operand))
    if isinstance(f, ast.And):
        return ast.And(tuple(_mask(i) for i in f.items))
    if isinstance(f, ast.Or):
        return ast.Or(tuple(_mask(i) for i in f.items))
    return f


def redacted_filter(text: str) -> str:
    """The filter with every value replaced by ``…`` (field names and structure kept)."""
    try:
        q = parse(text)
    except Exception:
        return "(a filter that no longer parses)"
    pipes = tuple(dataclasses.replace(p, filter=_mask(p.filter)) if isinstance(p, ast.Where) else p
                  for p in q.pipes)
    return to_text(ast.Query(_mask(q.filter), pipes))


class Redactor:
    """Replaces erased values in text and in JSON-shaped metadata.

    ``literals`` (a filter's values) are replaced inside any string, case-insensitively, when at
    least :data:`MIN_SUBSTRING` characters long, and as whole strings otherwise; ``texts``
    (erased messages) are replaced wherever they occur.
    """

    def __init__(self, literals: Iterable[str], texts: Iterable[str] = ()) -> None:
        self.literals = sorted({v for v in literals if v}, key=lambda v: (-len(v), v))
        self.texts = sorted({t for t in texts if len(t) >= MIN_SUBSTRING}, key=lambda v: (-len(v), v))
        self.exact = {v.lower() for v in self.literals} | set(self.texts)
        long = [re.escape(v) for v in self.literals if len(v) >= MIN_SUBSTRING]
        self._pattern = re.compile("|".join(long), re.IGNORECASE) if long else None

    def __bool__(self) -> bool:
        return bool(self.literals or self.texts)

    @property
    def needles(self) -> list[str]:
        """What to look for in stored text first (a cheap prefilter before redacting)."""
        return [*self.texts, *self.literals]

    def text(self, value: str) -> str:
        """``value`` with every erased value replaced by ``[deleted]``."""
        if value.lower() in self.exact or value in self.exact:
            return REPLACEMENT
        for message in self.texts:
            if message in value:
                value = value.replace(message, REPLACEMENT)
        if self._pattern is not None:
            value = self._pattern.sub(REPLACEMENT, value)
        return value

    def value(self, data: object) -> object:
        """A JSON-shaped value with every string (keys too) redacted."""
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, list):
            return [self.value(v) for v in data]
        if isinstance(data, dict):
            return {self.text(str(k)): self.value(v) for k, v in data.items()}
        return data
