"""LogQL tokens and literals, read as Loki's lexer reads them (``pkg/logql/syntax/lex.go``).

Why separate: the parser reads tokens; how a duration, a size or a quoted string becomes a value is
its own rule, and each rule follows Loki's: ``#`` starts a comment to the end of the line; keywords
are case-insensitive (``SUM BY``), function names only where a ``(`` follows; a number followed by
duration units is a duration (Prometheus' ``1h30m``/``5d`` or Go's ``1.5s``/``0ms``, a sign
allowed), by size units a byte count (``250kB``, ``1.5KiB``: humanize's units, case-insensitive);
``[5m]`` is one range token; double-quoted strings take Go's escapes (``\\d`` is an error, as in
Loki: write ``\\\\d`` or a backtick string) and must be valid UTF-8.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from logharbor.server.features.query.filters import tokens

from .nodes import LogQLError

__all__ = ["LABEL", "Tok", "go_duration", "lex", "line_regex", "number_of", "plain", "whole_tokens"]

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<flag>--[A-Za-z][A-Za-z-]*)
  | (?P<numeric>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<op>\|=|\|~|\|>|!>|!=|!~|=~|==|>=|<=|[{}()\[\],|=<>+\-*/%^])
  | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
""", re.VERBOSE)
LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")

#: words that are keywords wherever they stand (Loki's ``tokens``), matched case-insensitively
KEYWORDS = frozenset({
    "by", "without", "bool", "offset", "on", "ignoring", "group_left", "group_right", "or", "and", "unless",
    "json", "regexp", "logfmt", "unpack", "pattern", "line_format", "label_format", "ip", "decolorize",
    "drop", "keep", "unwrap", "label_replace",
})
#: words that are keywords only when a ``(`` (or ``by``/``without``) follows (Loki's ``functionTokens``)
FUNCTIONS = frozenset({
    "rate", "rate_counter", "count_over_time", "bytes_rate", "bytes_over_time", "avg_over_time",
    "sum_over_time", "min_over_time", "max_over_time", "stdvar_over_time", "stddev_over_time",
    "quantile_over_time", "first_over_time", "last_over_time", "absent_over_time", "vector", "sum", "avg",
    "max", "min", "count", "stddev", "stdvar", "bottomk", "topk", "sort", "sort_desc", "approx_topk",
    "bytes", "duration", "duration_seconds",
})
_FLAGS = {"--strict", "--keep-empty"}
_GO_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\",
               '"': '"'}


@dataclass
class Tok:
    kind: str  # str dur bytes num op name flag range eof
    text: str
    pos: int
    value: object = None  # the decoded value: str for str, ns for dur/range, float for num/bytes


def lex(text: str) -> list[Tok]:
    out: list[Tok] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            raise LogQLError(f"unexpected character {text[i]!r} at {i}", i)
        kind = str(m.lastgroup)
        if kind == "numeric":
            tok, i = _numeric(text, i, m.end())
            out.append(tok)
            continue
        if kind == "str":
            out.append(Tok("str", m.group(), i, _unquote(m.group(), i)))
        elif kind == "range":
            out.append(Tok("range", m.group(), i, _range(m.group(), i)))
        elif kind == "flag":
            if m.group() not in _FLAGS:
                raise LogQLError(f"unknown parser flag {m.group()!r} at {i} (--strict and --keep-empty are)",
                                 i)
            out.append(Tok("flag", m.group(), i))
        elif kind == "name":
            out.append(Tok("name", _keyword(m.group(), text, m.end()), i))
        elif kind not in ("ws", "comment"):
            out.append(Tok(kind, m.group(), i))
        i = m.end()
    out.append(Tok("eof", "", len(text)))
    return out


def _keyword(word: str, text: str, end: int) -> str:
    lower = word.lower()
    if lower == word:
        return word
    if lower in KEYWORDS:
        return lower
    if lower in FUNCTIONS:
        rest = text[end:].lstrip()
        if rest.startswith("(") or re.match(r"(?i)(by|without)\s*\(", rest):
            return lower
    return word


_DUR_TAIL = re.compile(r"[0-9.nuµμmshdwy]+")
_BYTES_TAIL = re.compile(r"\s?[A-Za-z]+")


def _numeric(text: str, start: int, end: int) -> tuple[Tok, int]:
    """A number, or a duration/size when units follow without a space (Loki's tryScan* order)."""
    number = text[start:end]
    tail = _DUR_TAIL.match(text, end)
    if tail is not None:
        ns = go_duration(number + tail.group())
        if ns is not None:
            return Tok("dur", number + tail.group(), start, ns), tail.end()
    tail = _BYTES_TAIL.match(text, end)
    if tail is not None and not tail.group().startswith(" "):
        size = _humanize_bytes(number, tail.group())
        if size is not None:
            return Tok("bytes", number + tail.group(), start, size), tail.end()
    return Tok("num", number, start, float(number)), end


_PROM_DURATION = re.compile(r"(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?")
_PROM_UNITS = (365 * 86400 * 10**9, 7 * 86400 * 10**9, 86400 * 10**9, 3600 * 10**9, 60 * 10**9, 10**9, 10**6)
_GO_PART = re.compile(r"(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
             "h": 3600 * 10**9}
_MAX_NS = 2**63 - 1


def go_duration(text: str) -> int | None:
    """Nanoseconds of a Prometheus (``5d``, ``1h30m``) or Go (``1.5s``, ``-2m``) duration, or None."""
    if text == "0":
        return 0
    m = _PROM_DURATION.fullmatch(text)
    if m is not None and text:
        total = sum(int(v) * unit for v, unit in zip(m.groups(), _PROM_UNITS, strict=True) if v)
        return total if total <= _MAX_NS else None
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.removeprefix("+"))
    if not body:
        return None
    pos, total = 0, 0.0
    while pos < len(body):
        part = _GO_PART.match(body, pos)
        if part is None or part.group(1) in ("", "."):
            return None
        total += float(part.group(1)) * _GO_UNITS[part.group(2)]
        pos = part.end()
    return sign * round(total) if total <= _MAX_NS else None


_BYTE_UNITS = {"b": 1, "": 1}
for _i, _p in enumerate("kmgtpezy", start=1):
    _BYTE_UNITS.update({f"{_p}b": 1000**_i, _p: 1000**_i, f"{_p}ib": 1024**_i, f"{_p}i": 1024**_i})


def _humanize_bytes(number: str, unit: str) -> float | None:
    """go-humanize's ``ParseBytes``: SI (kB = 1000) and IEC (KiB = 1024) units, any case."""
    factor = _BYTE_UNITS.get(unit.strip().lower())
    return None if factor is None else float(number) * factor


def _range(text: str, pos: int) -> int:
    """``[5m]``: Prometheus' duration syntax (``1h30m``, no fractions), as Loki reads a range."""
    body = text[1:-1]
    m = _PROM_DURATION.fullmatch(body)
    if not body or m is None:
        raise LogQLError(f"bad range {text} at {pos}: not a duration such as [5m] or [1h30m]", pos)
    return sum(int(v) * unit for v, unit in zip(m.groups(), _PROM_UNITS, strict=True) if v)


def _unquote(text: str, pos: int) -> str:
    """Go's ``strconv.Unquote``: raw backtick strings as written; escapes in double quotes."""
    if text.startswith("`"):
        return text[1:-1]
    out = bytearray()
    body = text[1:-1]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out += ch.encode("utf-8", "surrogatepass")
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _GO_ESCAPES:
            out += _GO_ESCAPES[nxt].encode()
            i += 2
        elif nxt in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[nxt]
            digits = body[i + 2:i + 2 + width]
            if len(digits) != width or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
                raise LogQLError(f"bad \\{nxt} escape in the string at {pos}", pos)
            code = int(digits, 16)
            if nxt == "x":
                out.append(code)
            elif code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                raise LogQLError(f"bad \\{nxt} escape in the string at {pos}", pos)
            else:
                out += chr(code).encode()
            i += 2 + width
        elif nxt in "01234567":
            digits = body[i + 1:i + 4]
            if not re.fullmatch(r"[0-7]{3}", digits) or int(digits, 8) > 255:
                raise LogQLError(f"bad octal escape in the string at {pos}", pos)
            out.append(int(digits, 8))
            i += 4
        else:
            raise LogQLError(f"invalid escape \\{nxt} in the string at {pos}: Go's escapes only (write "
                             f"\\\\{nxt} for a backslash, or use a `backtick` string)", pos)
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        raise LogQLError(f"the string at {pos} is not valid UTF-8", pos) from None


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


def number_of(tok: Tok, target: str, negative: bool = False) -> str:
    """A number, a duration (seconds, or ms for ``*_ms`` fields) or a size in bytes, as text."""
    sign = -1 if negative else 1
    if tok.kind in ("num", "bytes"):
        number = sign * float(tok.value)  # type: ignore[arg-type]
        if not math.isfinite(number):  # 1e400 is inf: compared as text "inf" it matches at random
            raise LogQLError(f"{tok.text} is not a finite number (at {tok.pos})", tok.pos)
        return plain(number)
    seconds = sign * int(tok.value) / 1e9  # type: ignore[call-overload]
    return plain(seconds * 1000 if target.endswith("_ms") else seconds)


def plain(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)
