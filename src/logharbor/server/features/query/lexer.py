"""Tokens of the query language, read on demand in the mode the parser is in.

One text is read in four modes, because the same character means different things in different
places: ``:`` ends a field name in a filter but belongs to the value in ``client_ip:::1`` or
``_time:[2026-11-01T00:00:00Z TO now]``; ``/`` starts a regex in ``message:/x\\d/`` but not in
``path:/api/orders*``; ``,`` separates pipe arguments but is text in a filter. The parser asks for
the next token in the mode it knows it is in (:class:`Mode`); the lexer never guesses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from .errors import QuerySyntaxError

__all__ = ["FIELD_NAME", "Lexer", "Mode", "Token"]

#: A key in backticks: any text, with ``\``` for a backtick and ``\\`` for a backslash.
_QUOTED = r"`(?:[^`\\]|\\[\s\S])*`"
#: Characters of a bare name: ASCII letters, digits, ``_ @ -``, and any non-ASCII character that
#: is not a space (so ``müşteri`` and ``用户`` need no quotes); a bare name starts with a letter,
#: ``_``, ``@`` or a non-ASCII character.
_START = r"[A-Za-z_@]|[^\x00-\x7f\s]"
_CHAR = r"[A-Za-z0-9_@\-]|[^\x00-\x7f\s]"
#: A field name: what may stand before ``:``, after ``by``, in ``fields`` and in ``sort``. Parts
#: joined by ``.``; each part bare or in backticks (``a.`b c`.d``, ``` `` ``` for the empty key).
FIELD_NAME = re.compile(rf"(?:{_QUOTED}|(?:{_START})(?:{_CHAR})*)(?:\.(?:{_QUOTED}|(?:{_CHAR})+))*\.?")
_COMPARE = (">=", "<=", ">", "<")


class Mode(Enum):
    """Where the parser is: what ends a word and which characters are operators."""

    FILTER = "filter"  # top of a filter: fields, words, phrases, operators
    VALUE = "value"  # right after ``field:`` or inside ``field:( … )``
    RANGE = "range"  # inside ``[lo TO hi]``
    PIPE = "pipe"  # pipe arguments: names, numbers, ``(`` ``)`` ``,`` ``=``


@dataclass(frozen=True)
class Token:
    """One token: ``kind``, the unescaped ``value``, where it starts and ends in the text.

    ``raw`` is the text as written (so ``\\AND`` is the word AND, not the operator); ``wild`` marks
    a word with unescaped ``*``/``?``, whose ``pattern`` keeps those and escapes literal ones.
    """

    kind: str
    value: str
    start: int
    end: int
    raw: str = ""
    wild: bool = False
    pattern: str = ""


_STOP = {
    Mode.FILTER: frozenset(' \t\r\n()[]{}"|'),
    Mode.VALUE: frozenset(' \t\r\n()"|'),
    Mode.RANGE: frozenset(" \t\r\n[]{}\"|"),
    Mode.PIPE: frozenset(' \t\r\n()",=|'),
}
_SINGLE = {
    Mode.FILTER: {"(": "LPAREN", ")": "RPAREN", "[": "LBRACKET", "{": "LBRACE", "|": "PIPE"},
    Mode.VALUE: {"(": "LPAREN", ")": "RPAREN", "[": "LBRACKET", "{": "LBRACE", "|": "PIPE"},
    Mode.RANGE: {"]": "RBRACKET", "}": "RBRACE", "|": "PIPE", "[": "LBRACKET", "{": "LBRACE"},
    Mode.PIPE: {"(": "LPAREN", ")": "RPAREN", ",": "COMMA", "=": "EQ", "|": "PIPE"},
}


class Lexer:
    """Reads tokens from ``text`` one at a time; :meth:`peek` in a mode, then :meth:`take`."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self._peeked: tuple[Mode, Token] | None = None

    def peek(self, mode: Mode) -> Token:
        """The next token read in ``mode``, without consuming it."""
        if self._peeked is not None and self._peeked[0] is mode:
            return self._peeked[1]
        token = self._read(mode)
        self._peeked = (mode, token)
        return token

    def take_name(self) -> Token | None:
        """Consume a field name at the current position (a quoted one may hold spaces, commas,
        parentheses …); None, consuming nothing, when none starts here."""
        text, i = self.text, self.pos
        while i < len(text) and text[i] in " \t\r\n":
            i += 1
        m = FIELD_NAME.match(text, i)
        if m is None or "`" not in m.group():
            return None
        self.pos, self._peeked = m.end(), None
        return Token("WORD", m.group(), i, m.end(), raw=m.group())

    def take(self, mode: Mode) -> Token:
        """Consume and return the next token read in ``mode``."""
        token = self.peek(mode)
        self.pos = token.end
        self._peeked = None
        return token

    # ------------------------------------------------------------------------------------------

    def _read(self, mode: Mode) -> Token:
        text, i, n = self.text, self.pos, len(self.text)
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            return Token("EOF", "", n, n)
        ch = text[i]
        if ch in _SINGLE[mode]:
            return Token(_SINGLE[mode][ch], ch, i, i + 1, raw=ch)
        if ch == '"':
            return self._phrase(i)
        if mode is Mode.VALUE:
            for op in _COMPARE:
                if text.startswith(op, i):
                    return Token("CMP", op, i, i + len(op), raw=op)
        if mode in (Mode.VALUE, Mode.FILTER) and ch == "/":
            regex = self._regex(i)
            if regex is not None:
                return regex
        if mode is Mode.FILTER and ch in "-+" and i + 1 < n and text[i + 1] not in " \t\r\n)|":
            return Token("MINUS" if ch == "-" else "PLUS", ch, i, i + 1, raw=ch)
        if mode is Mode.FILTER:
            m = FIELD_NAME.match(text, i)
            if m is not None and m.end() < n and text[m.end()] == ":":
                return Token("FIELD", m.group(), i, m.end() + 1, raw=text[i : m.end() + 1])
        return self._word(i, mode)

    def _word(self, start: int, mode: Mode) -> Token:
        text, n, stop = self.text, len(self.text), _STOP[mode]
        value: list[str] = []
        pattern: list[str] = []
        wild = False
        i = start
        while i < n and text[i] not in stop:
            ch = text[i]
            if ch == "\\":
                if i + 1 >= n:
                    raise QuerySyntaxError(f"expected a character after '\\' at {i}", i)
                lit = text[i + 1]
                value.append(lit)
                pattern.append("\\" + lit if lit in "*?\\" else lit)
                i += 2
                continue
            if ch in "*?" and mode is not Mode.PIPE:
                wild = True
            value.append(ch)
            pattern.append(ch)
            i += 1
        if i == start:
            raise QuerySyntaxError(f"unexpected {text[start]!r} at {start}", start)
        return Token("WORD", "".join(value), start, i, raw=text[start:i], wild=wild,
                     pattern="".join(pattern))

    def _phrase(self, start: int) -> Token:
        text, n = self.text, len(self.text)
        out: list[str] = []
        i = start + 1
        while i < n:
            ch = text[i]
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                return Token("PHRASE", "".join(out), start, i + 1, raw=text[start : i + 1])
            out.append(ch)
            i += 1
        raise QuerySyntaxError(f"unterminated phrase: expected a closing '\"' for the one at {start}", start)

    def _regex(self, start: int) -> Token | None:
        """``/…/`` followed by a space, ``)``, ``|`` or the end; otherwise it is a word (a path)."""
        text, n = self.text, len(self.text)
        out: list[str] = []
        i = start + 1
        while i < n:
            ch = text[i]
            if ch == "\\" and i + 1 < n:
                out.append("/" if text[i + 1] == "/" else text[i : i + 2])
                i += 2
                continue
            if ch == "/":
                if i + 1 >= n or text[i + 1] in " \t\r\n)|":
                    return Token("REGEX", "".join(out), start, i + 1, raw=text[start : i + 1])
                return None
            out.append(ch)
            i += 1
        return None
