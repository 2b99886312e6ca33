"""Log text made safe to print on a terminal: control characters are shown, never obeyed.

Why: whoever can make an application log a line chooses its bytes. ``ESC [2J`` clears the
screen, ``ESC [1A ESC [2K`` moves up and erases the line above (hiding a record), ``ESC ]0;…``
sets the window title, ``ESC ]8;;url`` makes a link that reads as something else, a carriage
return or a backspace overwrites what was printed, and the C1 code ``U+009B`` is a one-character
``ESC [`` to some terminals. As journalctl does, human output (query tables and csv, tail, trace,
alerts) prints every such character as a visible escape (``\\x1b``, ``\\u202e``) instead; rich
markup in log text (``[link=…]``) is never interpreted either, since values are printed as
:class:`rich.text.Text`. ``--raw`` prints the text as stored; json/ndjson output is data and is
never altered.
"""

from __future__ import annotations

import re
from typing import Any

from logharbor import exactjson

__all__ = ["cell_text", "visible"]

# C0 controls but tab and newline, DEL, C1 controls, and the Unicode marks that reorder or hide
# text (bidirectional overrides and isolates, "Trojan Source"); a newline is escaped by callers
# that print one record per line
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_HIDDEN_OR_NEWLINE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, newlines: bool = True) -> str:
    """``text`` with every control character written as an escape (``\\x1b``); tabs stay, and
    newlines stay unless ``newlines`` is False (then they are ``\\x0a`` too)."""
    pattern = _HIDDEN if newlines else _HIDDEN_OR_NEWLINE
    return pattern.sub(_escape, text)


def cell_text(value: Any, *, raw: bool = False, style: str = "", newlines: bool = True) -> Any:
    """A value as a :class:`rich.text.Text` (never parsed as markup), escaped unless ``raw``."""
    from rich.text import Text

    text = "" if value is None else exactjson.text(value)  # true, -0.0: the API's text, not str()
    return Text(text if raw else visible(text, newlines=newlines), style=style)
