"""``logharbor query``/``tail`` print every value as the API wrote it: ``-0.0`` was ``0`` and
``1.0`` was ``1`` in a table (``int(value)``), ``1e300`` was 301 digits, ``5e-324`` was
``0.0000``, ``true`` was Python's ``True`` in csv, raw lines and tables (so ``true`` and ``1``
read as two spellings of nothing JSON has)."""

from __future__ import annotations

import csv
import io

import pytest
from rich.console import Console

from logharbor import exactjson
from logharbor.cli.render import CsvOut, number_cells, print_table, raw_line
from logharbor.cli.tail import _event, _printer
from logharbor.cli.timezone import parse_zone

#: an answer as the server writes it: values a careless printer changes
ANSWER = (b'{"columns": ["v", "flag", "obj"], "rows": ['
          b'{"v": -0.0, "flag": true, "obj": {"a": 1.0}}, {"v": 1.0, "flag": 1, "obj": null}, '
          b'{"v": 1e+300, "flag": false, "obj": [true, -0.0]}, {"v": 18446744073709551617, "flag": 0, "obj": "x"}]}')


def _rows() -> tuple[list[str], list[dict]]:  # type: ignore[type-arg]
    answer = exactjson.loads(ANSWER)
    return answer["columns"], answer["rows"]


def test_number_cells_keep_whole_floats_and_values_rounding_would_hide() -> None:
    assert number_cells([-0.0, 1.0, 1e300, 2**64 + 1, 7]) == ["-0.0", "1.0", "1e+300", "18446744073709551617", "7"]
    # a column with fractions is still rounded for reading (docs/query.md), but never to nothing
    assert number_cells([0.123456, 5e-324, -0.0]) == ["0.1235", "5e-324", "-0.0000"]
    assert number_cells([8.1666, 1e300, 3.0]) == ["8.17", "1e+300", "3.00"]
    assert number_cells([True, 1]) is None  # a boolean is not a number


def test_csv_table_and_raw_lines_write_json_text() -> None:
    columns, rows = _rows()
    out = io.StringIO()
    writer = CsvOut(out, raw_text=False, columns=columns)
    for row in rows:
        writer.row(row)
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["v", "flag", "obj"], ["-0.0", "true", '{"a":1.0}'], ["1.0", "1", ""],
        ["1e+300", "false", "[true,-0.0]"], ["18446744073709551617", "0", "x"]]
    zone = parse_zone("utc")
    lines = [raw_line(row, records=False, raw_text=False, zone=zone).plain for row in rows]
    assert lines[0] == 'v=-0.0 flag=true obj={"a":1.0}' and lines[2].startswith("v=1e+300 flag=false ")
    console = Console(file=io.StringIO(), width=120, color_system=None)
    print_table(console, columns, rows, records=False, raw_text=False, zone=zone, footer="")
    table = console.file.getvalue()  # type: ignore[attr-defined]
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in table.splitlines() if line.startswith("│")]
    assert cells == [["-0.0", "true", '{"a":1.0}'], ["1.0", "1", ""], ["1e+300", "false", "[true,-0.0]"],
                     ["18446744073709551617", "0", "x"]]


def test_tail_json_output_is_the_servers_text(capsys: pytest.CaptureFixture[str]) -> None:
    line = ('{"timestamp":"2026-11-01T12:00:00Z","x":-0.0,"y":1.5e-7,"big":18446744073709551617,'
            '"t":true,"one":1.0}')
    _printer("json")(_event("message", line))  # Python's json wrote 1.5e-07
    assert capsys.readouterr().out == line + "\n"


def test_explain_lines_and_cells_write_json_text() -> None:
    from logharbor.cli.explain import value_line
    from logharbor.cli.terminal import cell_text

    row = {"field": "flag", "value": True, "focus": {"count": 3, "share": 1.0}, "baseline": {"count": 0, "share": 0.0},
           "lift": None, "new": True, "g": 9.1, "p": 0.001, "significant": True}
    assert value_line(row).startswith("flag=true focus=3 ")  # Python's str wrote flag=True
    assert cell_text(-0.0).plain == "-0.0" and cell_text(False).plain == "false" and cell_text(None).plain == ""
