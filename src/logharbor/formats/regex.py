"""Any line format, described by a regular expression with named groups.

Each named group becomes a key of the raw record. Python group names cannot hold dots, so a
double underscore stands for one: ``(?P<http__status>\\d+)`` fills ``http.status``, which
``normalize`` files under ``http``. ``types`` casts groups: ``int``, ``float``, ``bool``,
``timestamp`` (RFC 3339 or epoch, through :func:`logharbor.record.parse_timestamp`) or
``timestamp:<strptime format>`` (for example ``timestamp:%d/%b/%Y:%H:%M:%S %z``; a format without
``%z`` is read as UTC). Empty groups and groups that did not take part are left out. A line that does
not match, or a value that does not cast, is kept with a ``parse_error``. Without a ``message``
(or ``msg``) group the whole line is the message, so it stays searchable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, field_validator, model_validator

from logharbor.formats.base import Options, guard, register, unparsed
from logharbor.record import RecordError, parse_timestamp
from logharbor.types import RawRecord

__all__ = ["RegexOptions", "RegexParser"]

_TRUE = frozenset({"true", "yes", "on", "1", "t", "y"})
_FALSE = frozenset({"false", "no", "off", "0", "f", "n"})


def _to_bool(value: str) -> bool:
    low = value.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a boolean")


def _to_timestamp(value: str) -> int:
    try:
        return parse_timestamp(value)
    except RecordError as exc:
        raise ValueError(str(exc)) from None


def _strptime(fmt: str) -> Callable[[str], int]:
    def cast(value: str) -> int:
        dt = datetime.strptime(value, fmt)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        seconds = int(dt.replace(microsecond=0).timestamp())
        return seconds * 1_000_000_000 + dt.microsecond * 1000

    return cast


#: a number as a log line writes one: ASCII digits, a sign, a fraction, an exponent. Python's int()
#: and float() also read "5_02", Arabic-Indic digits, "inf" and "nan": not numbers in a log line
_INT_TEXT = re.compile(r"\s*[+-]?\d+\s*", re.ASCII)
_FLOAT_TEXT = re.compile(r"\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*", re.ASCII)


def _to_int(value: str) -> int:
    if not _INT_TEXT.fullmatch(value):
        raise ValueError(f"{value!r} is not an integer")
    return int(value)


def _to_float(value: str) -> float:
    out = float(value) if _FLOAT_TEXT.fullmatch(value) else math.inf
    if not math.isfinite(out):
        raise ValueError(f"{value!r} is not a finite number")
    return out


def caster(spec: str) -> Callable[[str], Any]:
    """The function casting a group's text for a ``types`` entry; ValueError on a bad spec."""
    if spec == "int":
        return _to_int
    if spec == "float":
        return _to_float
    if spec == "bool":
        return _to_bool
    if spec in ("str", "string"):
        return str
    if spec == "timestamp":
        return _to_timestamp
    if spec.startswith("timestamp:"):
        fmt = spec[len("timestamp:"):]
        if "%" not in fmt:
            raise ValueError(f"timestamp format {fmt!r} has no % directive")
        return _strptime(fmt)
    raise ValueError(f"unknown type {spec!r} (int, float, bool, string, timestamp[:format])")


class RegexOptions(Options):
    """``pattern``: the regex (``search`` semantics, use ``^`` to anchor); ``types``: group → type."""

    pattern: str
    types: dict[str, str] = Field(default_factory=dict)

    @field_validator("pattern")
    @classmethod
    def _compile(cls, value: str) -> str:
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"regex does not compile: {exc}") from None
        if not compiled.groupindex:
            raise ValueError("regex has no named group (?P<name>…)")
        return value

    @field_validator("types")
    @classmethod
    def _check_types(cls, value: dict[str, str]) -> dict[str, str]:
        for group, spec in value.items():
            try:
                caster(spec)
            except ValueError as exc:
                raise ValueError(f"group {group!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _groups_exist(self) -> RegexOptions:
        groups = re.compile(self.pattern).groupindex
        missing = [g for g in self.types if g not in groups]
        if missing:
            raise ValueError(f"option 'types': {missing} are not named groups of the pattern")
        return self


class RegexParser:
    """Parses lines with a named-group regex, casting groups to their declared types."""

    __slots__ = ("_fields", "_search")

    def __init__(self, pattern: str, types: dict[str, str] | None = None) -> None:
        compiled = re.compile(pattern)
        self._search = compiled.search
        types = types or {}
        by_index = {i: name for name, i in compiled.groupindex.items()}
        fields: list[tuple[str, str, Callable[[str], Any] | None] | None] = []
        for i in range(1, compiled.groups + 1):
            name = by_index.get(i)
            if name is None:
                fields.append(None)
            else:
                spec = types.get(name)
                fields.append((name.replace("__", "."), name, caster(spec) if spec else None))
        self._fields = tuple(fields)

    def parse(self, line: str) -> RawRecord:
        """Return the named groups of ``line`` as a raw record."""
        m = self._search(line)
        if m is None:
            return unparsed(line, "line does not match the pattern")
        rec: RawRecord = {}
        for field, value in zip(self._fields, m.groups(), strict=True):
            if field is None or not value:
                continue
            key, group, cast = field
            if cast is not None:
                try:
                    value = cast(value)
                except (ValueError, OverflowError) as exc:
                    return unparsed(line, f"group {group!r}: {exc}")
            rec[key] = value
        if "message" not in rec and "msg" not in rec:
            rec["message"] = line
        return guard(rec, line)


@register("regex", RegexOptions, "named groups of a regular expression, typed")
def build(options: RegexOptions) -> RegexParser:
    """Build a regex parser."""
    return RegexParser(options.pattern, options.types)
