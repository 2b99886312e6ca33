"""JSON in and out without changing a value: integers of any size stay exact integers.

orjson, the fast decoder used everywhere, reads an integer beyond 64 bits as a float
(``2**64 + 1`` becomes ``1.8446744073709552e19``) and refuses to write one. Such integers are
rare, so the fast path stays: :func:`lossy_lines` finds, in a whole body at once, the lines where
orjson *could* lose an integer (a run of 19 or more digits that may be an integer token outside
the 64-bit range; conservative, a digit run inside a string counts too), and only those lines are
read by :func:`loads_exact` (the standard library's decoder, which keeps Python ints exact).
:func:`dumps` writes what orjson refuses (those big ints) as raw number text.

Integers longer than 4300 digits are refused with a reason (Python's own limit on converting
text to int, which guards against quadratic work); a JSON line is at most 1 MiB anyway.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["MAX_INT_DIGITS", "ExactJSONError", "dumps", "loads", "loads_exact", "lossy_lines", "may_lose",
           "text"]

#: the longest integer :func:`loads_exact` reads (``sys.int_info.default_max_str_digits``)
MAX_INT_DIGITS = 4300
_RUN = 19  # the shortest integer outside [-2**63, 2**64) has 19 digits (-9223372036854775809)
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= i <= 0x39 else 0x20 for i in range(256))
_ZEROS = b"0" * _RUN
_INT64_MIN_DIGITS = 9223372036854775808  # |-2**63|
_UINT64_MAX = 2**64 - 1
#: bytes that may come just before a JSON number token (0: the start of the text) and just after one
_BEFORE_NUMBER = frozenset(b":[, \t\r\n\x00")
_AFTER_NUMBER = frozenset(b",]} \t\r\n\x00")


class ExactJSONError(ValueError):
    """Text that :func:`loads_exact` will not read: the message says why."""


def _run_is_lossy(data: bytes, start: int, end: int) -> bool:
    """Whether the digit run ``data[start:end]`` could be an integer orjson turns into a float."""
    before = data[start - 1] if start else 0
    after = data[end] if end < len(data) else 0
    if before == 0x2E or after in (0x2E, 0x65, 0x45):  # ".5", "5." "5e" "5E": a float, read as one
        return False
    sign = (data[start - 2] if start >= 2 else 0) if before == 0x2D else before
    if sign not in _BEFORE_NUMBER or after not in _AFTER_NUMBER:
        return False  # glued to a letter or a quote ("9c40", "id123…"): part of a string, not a number
    digits = end - start
    if digits > 20:
        return True
    value = int(data[start:end])
    return value > _INT64_MIN_DIGITS if before == 0x2D else value > _UINT64_MAX


def _lossy_offsets(data: bytes) -> list[int]:
    """Start offsets of the digit runs in ``data`` that may be integers beyond 64 bits."""
    out: list[int] = []
    mapped = data.translate(_DIGITS_AS_ZERO)  # one C pass; then fast substring searches
    at = mapped.find(_ZEROS)
    while at >= 0:
        end = at + _RUN
        while end < len(mapped) and mapped[end] == 0x30:
            end += 1
        if _run_is_lossy(data, at, end):
            out.append(at)
        at = mapped.find(_ZEROS, end)
    return out


def may_lose(data: bytes) -> bool:
    """Whether orjson could read an integer of ``data`` as a float (then use :func:`loads_exact`)."""
    return len(data) >= _RUN and bool(_lossy_offsets(data))


def lossy_lines(body: bytes) -> frozenset[int]:
    """0-based indexes of the ``\\n``-separated lines of ``body`` that :func:`may_lose` flags."""
    offsets = _lossy_offsets(body) if len(body) >= _RUN else []
    if not offsets:
        return frozenset()
    lines: set[int] = set()
    line, counted = 0, 0
    for at in offsets:  # ascending: count the newlines between one offset and the next once
        line += body.count(b"\n", counted, at)
        counted = at
        lines.add(line)
    return frozenset(lines)


def _parse_int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS + (text[0] == "-"):
        raise ExactJSONError(f"an integer of {len(text)} digits is over the limit of {MAX_INT_DIGITS}")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ExactJSONError(f"number {text[:40]} is infinity when read as a double")
    return value


def _no_constant(name: str) -> Any:
    raise ExactJSONError(f"{name} is not JSON")


def loads_exact(data: bytes | str) -> Any:
    """Decode JSON keeping integers of any size exact (slower than orjson; for flagged lines).

    Refuses what orjson refuses too: ``NaN``/``Infinity`` literals and numbers that overflow a
    double. Raises :class:`ExactJSONError` (a ``ValueError``) with the reason.
    """
    try:
        return json.loads(data, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_no_constant)
    except ExactJSONError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, too deep
        raise ExactJSONError(str(exc) or type(exc).__name__) from None


def loads(data: bytes | str) -> Any:
    """orjson's answer when it keeps every value, else :func:`loads_exact`'s."""
    raw = data.encode() if isinstance(data, str) else data
    if may_lose(raw):
        return loads_exact(raw)
    return orjson.loads(raw)


def _fragments(value: Any) -> Any:
    """``value`` with every int orjson cannot write replaced by its digits as raw JSON."""
    if type(value) is dict:
        return {k: _fragments(v) for k, v in value.items()}
    if type(value) is list or type(value) is tuple:
        return [_fragments(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value <= _UINT64_MAX:
        return orjson.Fragment(str(value).encode())
    return value


def dumps(value: Any, option: int = 0, default: Callable[[Any], Any] | None = None) -> bytes:
    """``orjson.dumps``, writing integers beyond 64 bits as their exact digits."""
    try:
        return orjson.dumps(value, option=option, default=default)
    except TypeError as exc:
        if "64-bit" not in str(exc):
            raise
    return orjson.dumps(_fragments(value), option=option, default=default)


def text(value: Any) -> str:
    """A value as people and text protocols read it: a string as itself, anything else its JSON
    text as the API writes it (``true``, ``-0.0``, ``1.0``, ``1e+300``, an integer's digits, an
    object compact) — Python's ``str`` wrote ``True``, ``1e-07`` and ``{'a': 1}``."""
    return value if isinstance(value, str) else dumps(value).decode()
