"""RE2, the regex engine of the store, on the Python side too (the ``google-re2`` binding).

Why: a regex is checked here before it reaches the engine (a clear 400 instead of an engine
error), and a few are run here (LogQL's ``| regexp`` extractor, ``label_replace``, whether a
label regex matches the empty value). Both sides must agree on every pattern, so both run RE2:
Python's ``re`` refuses ``(?i)`` in the middle of a pattern, ``\\pL``, ``\\z`` and ``\\Q…\\E``,
which RE2 reads, and reads lookaround and backreferences, which RE2 refuses.

The store's ``match()`` runs RE2 over UTF-8 with ``.`` matching a newline (ClickHouse's
documented default; ``(?-s)`` turns it off) and ``^``/``$`` at the ends of the value only:
:func:`compile_re2` uses the same options unless told otherwise.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import re2

__all__ = ["Re2Error", "compile_re2", "re2_error"]

Re2Error = re2.error


@lru_cache(maxsize=512)
def compile_re2(pattern: str, *, dot_nl: bool = True) -> Any:
    """``pattern`` compiled by RE2 (UTF-8, errors not logged); raises :data:`Re2Error`."""
    options = re2.Options()
    options.log_errors = False
    options.dot_nl = dot_nl
    return re2.compile(pattern, options=options)


def re2_error(pattern: str) -> str | None:
    """Why RE2 refuses ``pattern`` (its own words), or None when it compiles."""
    try:
        compile_re2(pattern)
    except Re2Error as exc:
        reason = exc.args[0] if exc.args else exc
        return reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
    return None
