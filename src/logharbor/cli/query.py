"""``logharbor query``: run a query on a server and print the answer for people or programs.

``--output table`` (default) draws a rich table; ``json`` prints the server's answer as is;
``ndjson`` streams rows one per line (exports: nothing is held in memory); ``csv`` writes a
header and one line per row. In the table and csv, control characters of log text (terminal
escapes) are printed visibly, as ``\\x1b`` (:mod:`logharbor.cli.terminal`); ``--raw`` prints them
as stored. Errors print one line on stderr and exit non-zero: 1 for a query
the server refused (with a caret under the position), 2 for a server that cannot be reached.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx
import typer

from logharbor.cli.client import CA_OPTION, KEY_OPTION, SERVER_OPTION, server_client
from logharbor.cli.terminal import visible

__all__ = ["register", "run_query"]
#: record fields shown in the human table, in this order, when present
_RECORD_COLUMNS = ("timestamp", "level", "service", "host", "message")
_OUTPUTS = ("table", "json", "ndjson", "csv")
_KEEP_WIDTH = 20  # a column whose values are this short is never squeezed or wrapped
_PIPE_WIDTH = 160  # table width when the output is not a terminal (COLUMNS overrides)
_WRAP_MIN = 12  # the narrowest a wrapping text column may get before rows are printed as blocks


class CliError(Exception):
    """One line for stderr and the exit code."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _accept(ndjson: bool) -> dict[str, str]:
    return {"Accept": "application/x-ndjson" if ndjson else "application/json"}


def _refused(response: httpx.Response, query: str) -> CliError:
    try:
        error = response.json()["error"]
        message = visible(f"{error.get('code', 'error')}: {error.get('message', response.text)}")
        position = error.get("position")
    except (ValueError, KeyError, TypeError):
        message, position = visible(f"HTTP {response.status_code}: {response.text[:200]}"), None
    if isinstance(position, int) and "\n" not in query:
        message += f"\n  {visible(query)}\n  {' ' * len(visible(query[:position]))}^"
    return CliError(message, 1)


def _cell(value: Any, raw: bool = False) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    else:
        text = str(value)
    return text if raw else visible(text)


def _print_table(answer: dict[str, Any], raw: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    rows = answer.get("rows", [])
    columns = list(answer.get("columns", []))
    if answer.get("kind") == "records":
        present = [c for c in _RECORD_COLUMNS if any(c in row for row in rows)]
        columns = present or columns
    cells = [[_cell(row.get(name), raw) for name in columns] for row in rows]
    columns = [_cell(name, raw) for name in columns]  # a column can be named by log text too
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=_PIPE_WIDTH)  # into a file or a pager: no terminal to fit
    # short values (ids, counts, levels, services) keep their width, long text wraps into the rest;
    # when even that does not fit the terminal, one block per row instead of a cropped table
    longest = [max([1, *(len(r[i]) for r in cells)]) for i in range(len(columns))]  # of the values
    widths = [max(len(name), n) for name, n in zip(columns, longest, strict=True)]
    short = [n <= _KEEP_WIDTH for n in longest]
    needed = sum(w if s else _WRAP_MIN for w, s in zip(widths, short, strict=True)) + 3 * len(columns) + 1
    if needed > console.width and len(columns) > 1:
        pad = max(len(name) for name in columns)
        for n, r in enumerate(cells, 1):
            console.print(f"── {n} " + "─" * max(0, min(console.width, 60) - 5 - len(str(n))), style="dim")
            for name, value in zip(columns, r, strict=True):
                console.print(Text.assemble((name.ljust(pad), "bold"), "  ", value), overflow="fold")
    else:
        table = Table(show_lines=False, header_style="bold")
        for name, width, is_short in zip(columns, widths, short, strict=True):
            if is_short:
                table.add_column(Text(name), min_width=width, no_wrap=True)
            else:
                table.add_column(Text(name), overflow="fold")
        for r in cells:
            table.add_row(*(Text(value) for value in r))  # Text: log text is never rich markup
        console.print(table)
    stats = answer.get("stats") or {}
    console.print(f"{len(rows)} rows in {stats.get('elapsed_ms', '?')} ms", style="dim")


def _print_csv(answer: dict[str, Any], raw: bool = False) -> None:
    writer = csv.writer(sys.stdout)
    columns = answer.get("columns", [])
    writer.writerow([_cell(name, raw) for name in columns])
    for row in answer.get("rows", []):
        writer.writerow([_cell(row.get(name), raw) for name in columns])


def run_query(query: str, *, server: str, api_key: str | None, output: str, since: str | None,
              start: str | None, end: str | None, limit: int | None, ca: Path | None = None,
              timeout: float = 300.0, raw: bool = False) -> None:
    """Send one query and print the answer; raise :class:`CliError` on any failure.

    ``raw``: table and csv print log text as stored, control characters included.
    """
    if output not in _OUTPUTS:
        raise CliError(f"--output must be one of {', '.join(_OUTPUTS)}", 2)
    body: dict[str, Any] = {"q": query}
    if start or since:
        body["from"] = start or since
    if end:
        body["to"] = end
    if limit is not None:
        body["limit"] = limit
    ndjson = output == "ndjson"
    try:
        with server_client(server, api_key, ca, timeout=timeout) as client:
            with client.stream("POST", "/api/v1/query", json=body, headers=_accept(ndjson)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _refused(response, query)
                if ndjson:
                    out = sys.stdout.buffer
                    for chunk in response.iter_bytes():
                        out.write(chunk)
                    out.flush()
                    return
                response.read()
                answer = response.json()
    except (httpx.HTTPError, OSError) as exc:  # OSError: an unreadable --ca file
        raise CliError(f"cannot reach the server at {server}: {exc}", 2) from None
    if output == "json":
        sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
    elif output == "csv":
        _print_csv(answer, raw)
    else:
        _print_table(answer, raw)


def register(app: typer.Typer) -> None:
    """Add ``logharbor query`` to the main command."""

    @app.command("query")
    def query(
        text: str = typer.Argument(..., help="the query, e.g. 'level:ERROR | stats count() by service'"),
        since: str | None = typer.Option(None, "--since", help="how far back: 15m, 1h, 7d"),
        start: str | None = typer.Option(None, "--from", help="start: RFC 3339, epoch seconds, now-1h"),
        end: str | None = typer.Option(None, "--to", help="end (exclusive), default now"),
        limit: int | None = typer.Option(None, "--limit", min=0, help="row cap (server default 100)"),
        output: str = typer.Option("table", "--output", "-o", help="table, json, ndjson or csv"),
        raw: bool = typer.Option(False, "--raw", help="table/csv: print control characters of log text "
                                                     "as stored instead of as \\x1b escapes"),
        server: str = SERVER_OPTION,
        api_key: str | None = KEY_OPTION,
        ca: Path | None = CA_OPTION,
    ) -> None:
        """Search and aggregate logs with the logharbor query language."""
        try:
            run_query(text, server=server, api_key=api_key, output=output, since=since,
                      start=start, end=end, limit=limit, ca=ca, raw=raw)
        except CliError as exc:
            typer.echo(f"logharbor query: {exc}", err=True)
            raise typer.Exit(exc.code) from None
        except BrokenPipeError:  # `| head` closed the pipe: not an error
            raise typer.Exit(0) from None


def main() -> None:
    """``python -m logharbor.cli.query …``: the command on its own, without the other groups."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)
    app()


if __name__ == "__main__":
    main()
