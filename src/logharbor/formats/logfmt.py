"""logfmt lines (``level=info msg="user logged in" user_id=42 cached``), as Go, Heroku and Grafana
tools write them.

Values in double quotes may hold spaces and backslash escapes (``\\"``, ``\\\\``, ``\\n``, ``\\t``,
``\\uXXXX``); a key without ``=`` is a flag and becomes ``true``. Unquoted values keep their natural
JSON type (``42`` → int, ``0.5`` → float, ``true``/``false`` → bool) unless ``typed: false``; quoted
values always stay strings, because quoting is how a writer says "this is text".
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from logharbor.formats.base import Options, guard, register, unparsed
from logharbor.types import RawRecord

__all__ = ["LogfmtOptions", "LogfmtParser", "parse_logfmt"]

_PAIR = re.compile(r'([^\s="]+)(?:=("[^"\\]*(?:\\.[^"\\]*)*"|[^\s"]*))?(?:[ \t]+|$)')
_PAIR_TEXT = r'[^\s="]+(?:=(?:"[^"\\]*(?:\\.[^"\\]*)*"|[^\s"]*))?'
_WHOLE = re.compile(r"(?:" + _PAIR_TEXT + r"(?:[ \t]+|\Z))*\Z")
_FIND = re.compile(r'([^\s="]+)(?:(=)("[^"\\]*(?:\\.[^"\\]*)*"|[^\s"]*))?').findall
_INT = re.compile(r"-?(?:0|[1-9]\d{0,19})")
_INT_MIN, _UINT_MAX = -(2**63), 2**64 - 1
_FLOAT = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?")
_SIMPLE_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "/": "/"}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")


class LogfmtOptions(Options):
    """``typed``: turn unquoted numbers and booleans into JSON numbers and booleans."""

    typed: bool = True


def _unquote(raw: str) -> str:
    body = raw[1:-1]
    if "\\" not in body:
        return body
    try:
        out = orjson.loads(raw)
        if isinstance(out, str):
            return out
    except orjson.JSONDecodeError:
        pass
    return _ESCAPE.sub(_unescape_one, body)


def _unescape_one(m: re.Match[str]) -> str:
    esc = m[1]
    if len(esc) == 5:
        return chr(int(esc[1:], 16))
    return _SIMPLE_ESCAPES.get(esc, "\\" + esc)


def _typed(value: str) -> Any:
    if not value:
        return value
    c = value[0]
    if c.isdigit() or c == "-":
        if _INT.fullmatch(value):
            number = int(value)
            # beyond 64 bits the text stays as it is (a float would change its digits)
            return number if _INT_MIN <= number <= _UINT_MAX else value
        if len(value.lstrip("-")) > 18 and value.lstrip("-").isdigit():
            return value  # an integer too long to be one: its text, exactly
        if _FLOAT.fullmatch(value):
            number = float(value)
            return number if abs(number) < float("inf") else value
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    return value


def _error_column(line: str) -> int:
    """Where the pair scanner stops on a line that is not logfmt (for the reason text)."""
    pos = len(line) - len(line.lstrip())
    while pos < len(line):
        m = _PAIR.match(line, pos)
        if m is None:
            break
        pos = m.end()
    return pos + 1


def parse_logfmt(line: str, typed: bool = True) -> RawRecord | str:
    """Split one logfmt line into a dict, or return the reason it is not logfmt.

    One regex checks the whole line and one ``findall`` cuts it, both in C; Python only converts
    the values.
    """
    text = line.strip()
    if _WHOLE.match(text) is None:
        return f"not logfmt at column {_error_column(line)}"
    out: RawRecord = {}
    pairs = 0
    for key, eq, raw in _FIND(text):
        if not eq:
            out[key] = True
            continue
        pairs += 1
        if raw[:1] == '"':
            out[key] = _unquote(raw)
        else:
            out[key] = _typed(raw) if typed else raw
    if not pairs:
        return "no key=value pairs"
    return out


class LogfmtParser:
    """Parses logfmt lines; a line with no ``key=value`` pair is kept with a ``parse_error``."""

    __slots__ = ("typed",)

    def __init__(self, typed: bool = True) -> None:
        self.typed = typed

    def parse(self, line: str) -> RawRecord:
        """Return the pairs of ``line`` as a raw record."""
        out = parse_logfmt(line, self.typed)
        if isinstance(out, str):
            return unparsed(line, out)
        return guard(out, line)


@register("logfmt", LogfmtOptions, "key=value pairs (Go, Heroku, Grafana style)")
def build(options: LogfmtOptions) -> LogfmtParser:
    """Build a logfmt parser."""
    return LogfmtParser(typed=options.typed)
