"""LogQL tokens and literals: strings, durations, sizes, numbers.

Why separate: the parser reads tokens; how a duration or a size becomes a number is its own rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from logharbor.server.query.filters import tokens
from logharbor.server.query.timeparse import TimeParseError, parse_duration_ns

from .nodes import LogQLError

__all__ = ["LABEL", "Tok", "duration", "lex", "line_regex", "number_of", "plain", "unquote",
           "whole_tokens"]

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<dur>(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h|d|w|y))+)(?![A-Za-z0-9_])
  | (?P<bytes>\d+(?:\.\d+)?(?:[KMGTPE]i?B|B))(?![A-Za-z0-9_])
  | (?P<num>[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<op>\|=|\|~|!=|!~|=~|==|>=|<=|[{}()\[\],|=<>+\-*/])
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
""", re.VERBOSE)
LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")


@dataclass
class Tok:
    kind: str
    text: str
    pos: int


def lex(text: str) -> list[Tok]:
    out: list[Tok] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            raise LogQLError(f"unexpected character {text[i]!r} at {i}", i)
        if m.lastgroup != "ws":
            out.append(Tok(str(m.lastgroup), m.group(), i))
        i = m.end()
    out.append(Tok("eof", "", len(text)))
    return out


def unquote(tok: Tok) -> str:
    if tok.text.startswith("`"):
        return tok.text[1:-1]
    body = tok.text[1:-1]
    escapes = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m[1], "\\" + m[1]), body)


def whole_tokens(literal: str) -> list[str]:
    """The words of ``literal`` that are whole index tokens wherever it occurs as a substring.

    A ``|=`` literal may start or end inside a word (``|= "ime"`` finds ``timeout``), so only the
    words bounded by separators within the literal itself are certain to be tokens of the line;
    requiring them (``hasAllTokens`` on the text index) never drops a matching line.
    """
    words = tokens(literal)
    if not words:
        return []
    starts_whole, ends_whole = not tokens(literal[:1]), not tokens(literal[-1:])
    if len(words) == 1:
        return words if starts_whole and ends_whole else []
    inner = words[1:-1]
    if starts_whole:
        inner.insert(0, words[0])
    if ends_whole:
        inner.append(words[-1])
    return list(dict.fromkeys(inner))


def line_regex(text: str) -> str:
    """A literal as an RE2 pattern (only RE2's metacharacters escaped)."""
    return re.sub(r"([\\.+*?()|\[\]{}^$])", r"\\\1", text)


def duration(tok: Tok) -> int:
    try:
        return parse_duration_ns(tok.text)
    except TimeParseError as exc:
        raise LogQLError(f"bad duration {tok.text!r}: {exc}", tok.pos) from None


_BYTE_UNITS = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15, "EB": 10**18,
               "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50, "EiB": 2**60}


def number_of(tok: Tok, target: str) -> str:
    """A number, a duration (seconds, or ms for ``*_ms`` fields) or a size in bytes, as text."""
    if tok.kind == "num":
        return tok.text
    if tok.kind == "bytes":
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(\w+)", tok.text)
        assert m is not None
        return plain(float(m[1]) * _BYTE_UNITS[m[2]])
    seconds = duration(tok) / 1e9
    return plain(seconds * 1000 if target.endswith("_ms") else seconds)


def plain(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)
