"""How ``logharbor query`` prints rows: a table for people, one line per row for pipes, csv.

- **table**: short columns (levels, services, counts) keep their width and long text wraps; when
  even that does not fit the terminal each row is a block of ``name  value`` lines, never a
  cropped table. Number columns are right-aligned, fractions rounded to one number of decimals
  per column (2, or 4 when every value is under 1) unless rounding would hide the value (under
  1e-4, from 1e15); times are shown in the ``--tz`` zone, named in the header.
- **raw**: one line per row, as ``logcli`` prints one line per entry: a record is
  ``time level service message`` (plus HTTP status, duration and trace id when it has them), a
  newline inside a message is written ``\\x0a`` so a line is always a record; other rows are
  ``name=value`` pairs. Nothing is rounded.
- **csv**: a header and one line per row, values as the server sent them.

A value that is not text is written as the server's JSON writes it, in all three: ``true`` (not
Python's ``True``), ``-0.0`` and ``1.0`` (``int()`` made them ``0`` and ``1``), ``1e+300`` (not
301 digits), an object as compact JSON.

Control characters of log text are printed visibly (``\\x1b``, :mod:`logharbor.cli.terminal`)
in all three unless ``raw_text``; json and ndjson output never passes through here.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from logharbor import exactjson
from logharbor.cli.terminal import visible
from logharbor.cli.timezone import WIRE_TIME, Zone
from logharbor.types import Row

__all__ = ["RECORD_COLUMNS", "CsvOut", "number_cells", "print_table", "raw_line"]

#: record fields shown in the human table, in this order, when present
RECORD_COLUMNS = ("timestamp", "level", "service", "host", "message")
_KEEP_WIDTH = 20  # a column whose values are this short is never squeezed or wrapped
_WRAP_MIN = 12  # the narrowest a wrapping text column may get before rows are printed as blocks
_LEVEL_STYLE = {"TRACE": "dim", "DEBUG": "dim", "INFO": "green", "WARN": "yellow", "ERROR": "red",
                "FATAL": "bold red"}


def _text(value: Any, raw_text: bool, *, newlines: bool = True) -> str:
    if value is None:
        return ""
    text = exactjson.text(value)
    return text if raw_text else visible(text, newlines=newlines)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number_cells(values: Sequence[Any]) -> list[str] | None:
    """A column's values as right-alignable text when all are numbers (None otherwise).

    Integers print whole, floats as written when none has a fraction (``1.0``, ``-0.0``,
    ``1e+300``); when any has one, floats get the same number of decimals: 2, or 4 when every value
    is under 1 (ratios), but one rounding would hide (``5e-324`` is not ``0.00``) is written whole."""
    present = [v for v in values if v is not None]
    if not present or not all(_is_number(v) for v in present):
        return None
    fractional = any(isinstance(v, float) and math.isfinite(v) and not v.is_integer() for v in present)
    finite = [abs(v) for v in present if math.isfinite(v)]
    decimals = 0 if not fractional else 4 if finite and max(finite) < 1 else 2
    out = []
    for value in values:
        if value is None:
            out.append("")
        elif isinstance(value, float) and not math.isfinite(value):
            out.append(str(value))
        elif isinstance(value, int):
            out.append(str(value))
        elif decimals == 0 or (value and not _ROUNDED_MIN <= abs(value) < _ROUNDED_MAX):
            out.append(exactjson.text(value))
        else:
            out.append(f"{value:.{decimals}f}")
    return out


#: fractions in this range are rounded for reading; outside it rounding would print 0.0000 or
#: hundreds of digits
_ROUNDED_MIN, _ROUNDED_MAX = 1e-4, 1e15


def _time_column(values: Sequence[Any]) -> bool:
    present = [v for v in values if v is not None]
    return bool(present) and all(isinstance(v, str) and WIRE_TIME.fullmatch(v) for v in present)


def print_table(console: Console, columns: list[str], rows: list[Row], *, records: bool,
                raw_text: bool, zone: Zone, footer: str) -> None:
    """Rows as a table (or blocks when it cannot fit), then ``footer`` dimmed."""
    if records:
        present = [c for c in RECORD_COLUMNS if any(c in row for row in rows)]
        columns = present or columns
    cells: list[list[str]] = [[] for _ in rows]
    right: list[bool] = []
    names: list[str] = []
    for name in columns:
        values = [row.get(name) for row in rows]
        numbers = number_cells(values)
        if numbers is None and _time_column(values):
            shown = [zone.convert(v, sep=" ", digits=3, offset=False) if v else "" for v in values]
            label = f"{_text(name, raw_text)} ({zone.label})"
        else:
            shown = numbers if numbers is not None else [_text(v, raw_text) for v in values]
            label = _text(name, raw_text)  # a column can be named by log text too
        for row_cells, cell in zip(cells, shown, strict=True):
            row_cells.append(cell)
        right.append(numbers is not None)
        names.append(label)
    longest = [max([1, *(len(r[i]) for r in cells)]) for i in range(len(names))]
    widths = [max(len(name), n) for name, n in zip(names, longest, strict=True)]
    short = [n <= _KEEP_WIDTH for n in longest]
    needed = sum(w if s else _WRAP_MIN for w, s in zip(widths, short, strict=True)) + 3 * len(names) + 1
    if needed > console.width and len(names) > 1:
        pad = max(len(name) for name in names)
        for n, r in enumerate(cells, 1):
            console.print(f"── {n} " + "─" * max(0, min(console.width, 60) - 5 - len(str(n))), style="dim")
            for name, value in zip(names, r, strict=True):
                console.print(Text.assemble((name.ljust(pad), "bold"), "  ", value), overflow="fold")
    elif names:
        table = Table(show_lines=False, header_style="bold")
        for name, width, is_short, is_number in zip(names, widths, short, right, strict=True):
            justify = "right" if is_number else "left"
            if is_short:
                table.add_column(Text(name), min_width=width, no_wrap=True, justify=justify)
            else:
                table.add_column(Text(name), overflow="fold", justify=justify)
        for r in cells:
            table.add_row(*(Text(value) for value in r))  # Text: log text is never rich markup
        console.print(table)
    console.print(Text(footer, style="dim"))


def raw_line(row: Row, *, records: bool, raw_text: bool, zone: Zone) -> Text:
    """One row on one line (see the module doc); styled, for a console that may drop the style."""
    if not records:
        parts = []
        for name, value in row.items():
            text = _text(value, raw_text, newlines=False)
            if isinstance(value, str) and WIRE_TIME.fullmatch(value):
                text = zone.convert(value)
            elif isinstance(value, str) and (not text or any(c in text for c in ' ="')):
                text = json.dumps(text, ensure_ascii=False)
            parts.append(f"{_text(name, raw_text, newlines=False)}={text}")
        return Text(" ".join(parts))
    timestamp = row.get("timestamp")
    when = zone.convert(timestamp) if isinstance(timestamp, str) else _text(timestamp, raw_text)
    level = _text(row.get("level", ""), raw_text, newlines=False)
    where = _text(row.get("service") or row.get("host") or "-", raw_text, newlines=False)
    line = Text.assemble((when, "dim"), " ", (f"{level:<5}", _LEVEL_STYLE.get(level, "")), " ",
                         (where, "cyan"), " ", _text(row.get("message", ""), raw_text, newlines=False))
    http = row.get("http") if isinstance(row.get("http"), dict) else {}
    if http.get("status") is not None:
        line.append(f" status={_text(http['status'], raw_text, newlines=False)}", style="dim")
    if http.get("duration_ms") is not None:
        line.append(f" duration_ms={_text(http['duration_ms'], raw_text, newlines=False)}", style="dim")
    if row.get("trace_id"):
        line.append(f" trace_id={_text(row['trace_id'], raw_text, newlines=False)}", style="dim")
    return line


class CsvOut:
    """csv rows to ``out``; the header is written before the first row (streams know their
    columns only then)."""

    def __init__(self, out: IO[str], raw_text: bool, columns: Iterable[str] | None = None) -> None:
        self.writer = csv.writer(out)
        self.raw_text = raw_text
        self.columns: list[str] | None = None
        if columns is not None:
            self.header(list(columns))

    def header(self, columns: list[str]) -> None:
        self.columns = columns
        self.writer.writerow([_text(name, self.raw_text) for name in columns])

    def row(self, row: Row) -> None:
        if self.columns is None:
            self.header(list(row))
        self.writer.writerow([_text(row.get(name), self.raw_text) for name in self.columns or []])
