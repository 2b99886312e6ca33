"""``logharbor query``: run a query on a server and print the answer for people or programs.

``--output`` (``-o``): ``table`` draws a table, ``raw`` prints one line per row (as ``logcli``
does), ``json`` prints the server's answer as is, ``ndjson`` streams rows one per line and
``csv`` writes a header and one line per row. Without ``-o`` the output is a table on a
terminal and raw lines anywhere else (a pipe, a file), so ``| grep`` and ``| wc -l`` see one
record per line. The footer of the table (on stderr for raw lines) says how many records were
shown of how many match (``100 of 728 records``); ``--limit 0`` means every match, streamed from
the server's export as it is read, never held in memory. Times are shown in one zone (``--tz``,
:mod:`logharbor.cli.timezone`). Rendering is :mod:`logharbor.cli.render`.

Errors print on stderr and exit non-zero: 1 for a query the server refused (with a caret under
the position; for a refused key, which key was used and how to set one), 2 for a server that
cannot be reached or options that do not go together.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import typer
from rich.console import Console
from rich.text import Text

from logharbor import exactjson
from logharbor.cli.client import CA_OPTION, KEY_OPTION, SERVER_OPTION, key_advice, server_client
from logharbor.cli.errors import CliError
from logharbor.cli.render import CsvOut, print_table, raw_line
from logharbor.cli.terminal import visible
from logharbor.cli.timezone import TZ_OPTION, Zone, parse_zone
from logharbor.types import JsonObject

__all__ = ["CliError", "register", "run_query"]

_OUTPUTS = ("raw", "table", "json", "ndjson", "csv")
_PIPE_WIDTH = 160  # table width when the output is not a terminal (COLUMNS overrides)
#: ``--limit 0`` asks the export for this many rows: its own cap, so every match
_EVERY_ROW = 2**62
#: csv columns of a streamed records export (a stream's attribute names are not known up front)
_STREAM_RECORD_COLUMNS = ("timestamp", "observed_timestamp", "level", "service", "source", "host",
                          "instance", "env", "version", "message", "trace_id", "span_id", "request_id",
                          "tenant", "http", "pattern_id")


def _refused(response: httpx.Response, query: str, api_key: str | None) -> CliError:
    try:
        error = response.json()["error"]
        message = visible(f"{error.get('code', 'error')}: {error.get('message', response.text)}")
        position = error.get("position")
    except (ValueError, KeyError, TypeError):
        message, position = visible(f"HTTP {response.status_code}: {response.text[:200]}"), None
    if isinstance(position, int) and "\n" not in query:
        message += f"\n  {visible(query)}\n  {' ' * len(visible(query[:position]))}^"
    advice = key_advice(response.status_code, api_key)
    if advice is not None:
        message += f"\n  {advice}"
    return CliError(message, 1)


def _times(since: str | None, start: str | None, end: str | None) -> dict[str, int]:
    """``from``/``to`` resolved once, here, so the rows and their count cover the same range."""
    from logharbor.server.features.query.timeparse import TimeParseError, parse_time_ns

    now = time.time_ns()
    out: dict[str, int] = {}
    for key, flag, value in (("from", "--from" if start else "--since", start or since), ("to", "--to", end)):
        if value:
            try:
                out[key] = parse_time_ns(value, now_ns=now)
            except TimeParseError as exc:
                raise CliError(f"{flag}: {exc}", 2) from None
    if "from" in out and "to" in out and out["to"] <= out["from"]:
        raise CliError("--to must be after --from", 2)
    return out


class _Session:
    """One server, one key, one time range: the requests of one ``logharbor query``."""

    def __init__(self, client: httpx.Client, query: str, api_key: str | None, times: dict[str, int]) -> None:
        self.client, self.query, self.api_key, self.times = client, query, api_key, times

    def answer(self, text: str, limit: int | None) -> JsonObject:
        body: JsonObject = {"q": text, **self.times}
        if limit is not None:
            body["limit"] = limit
        response = self.client.post("/api/v1/query", json=body, headers={"Accept": "application/json"})
        if response.status_code >= 400:
            raise _refused(response, text, self.api_key)
        return response.json()  # type: ignore[no-any-return]

    def total(self) -> int | None:
        """How many records the query matches in the range (None when its pipes cannot be counted)."""
        try:
            rows = self.answer(f"{self.query} | stats count() as matched", None).get("rows") or []
        except CliError:
            return None
        value = rows[0].get("matched") if rows else 0
        return int(value) if isinstance(value, int) else None

    def stream(self, limit: int) -> Iterator[tuple[str, bytes]]:
        """(kind, one NDJSON line) of the export, as the server writes them."""
        body = {"q": self.query, "limit": limit, **self.times}
        with self.client.stream("POST", "/api/v1/query", json=body,
                                headers={"Accept": "application/x-ndjson"}) as response:
            if response.status_code >= 400:
                response.read()
                raise _refused(response, self.query, self.api_key)
            kind = response.headers.get("x-logharbor-kind", "records")
            for line in response.iter_lines():
                if line.strip():
                    yield kind, line.encode()


class _Out(Console):
    """A console that lets a closed pipe (``| head``) reach the command, which exits 0; rich's
    own answer is to exit 1 on the spot."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def _console(output: str) -> Console:
    console = _Out(highlight=False)
    if output == "table" and not console.is_terminal and "COLUMNS" not in os.environ:
        return _Out(width=_PIPE_WIDTH, highlight=False)  # into a file or a pager: no terminal to fit
    return console


def _footer(shown: int, total: int | None, kind: str, stats: JsonObject, limit: int | None) -> str:
    elapsed = stats.get("elapsed_ms")
    took = f" in {elapsed:,.0f} ms" if isinstance(elapsed, int | float) else ""
    if kind != "records":
        return f"{shown:,} rows{took}"
    if total is None or total <= shown:
        count = total if total is not None else shown
        return f"{count:,} record{'' if count == 1 else 's'}{took}"
    more = "--limit 0 for all of them" if limit != 0 else ""
    return f"{shown:,} of {total:,} records{took}, newest first" + (f" ({more})" if more else "")


def _streamed(session: _Session, output: str, raw: bool, shown_zone: Zone, console: Console,
              err: Console, quiet: bool) -> None:
    """``--limit 0``: every row, printed as it arrives."""
    if output == "json":
        raise CliError("--limit 0 streams every row: use -o ndjson, raw or csv (json is one document "
                       "held whole)", 2)
    out = sys.stdout.buffer
    csv_out: CsvOut | None = None
    rows, kind, began = 0, "records", time.monotonic()
    for kind, line in session.stream(_EVERY_ROW):
        if line.startswith(b'{"error"'):  # the export failed after its first rows
            error = exactjson.loads(line).get("error", {})
            raise CliError(visible(f"{error.get('code', 'error')}: {error.get('message', '')} "
                                   f"(after {rows:,} rows)"), 1)
        rows += 1
        if output == "ndjson":
            out.write(line + b"\n")
            continue
        row = exactjson.loads(line)  # an integer beyond 64 bits stays exact (orjson: a float)
        if output == "csv":
            if csv_out is None:
                columns = [*_STREAM_RECORD_COLUMNS, "attributes"] if kind == "records" else list(row)
                csv_out = CsvOut(sys.stdout, raw, columns)
            if kind == "records":
                extra = {k: v for k, v in row.items() if k not in _STREAM_RECORD_COLUMNS}
                row = {**row, "attributes": extra or None}
            csv_out.row(row)
        else:
            console.print(raw_line(row, records=kind == "records", raw_text=raw, zone=shown_zone),
                          soft_wrap=True)
    out.flush()
    if output in ("raw", "table") and not quiet:
        took = (time.monotonic() - began) * 1000
        err.print(Text(_footer(rows, rows, kind, {"elapsed_ms": took}, 0), style="dim"))


def run_query(query: str, *, server: str, api_key: str | None, output: str | None, since: str | None,
              start: str | None, end: str | None, limit: int | None, ca: Path | None = None,
              timeout: float = 300.0, raw: bool = False, tz: str = "local", quiet: bool = False) -> None:
    """Send one query and print the answer; raise :class:`CliError` on any failure.

    ``output`` None: a table on a terminal, raw lines elsewhere. ``raw``: print log text as
    stored, control characters included. ``quiet``: no footer.
    """
    console = Console(highlight=False)
    if output is None:
        output = "table" if console.is_terminal else "raw"
    if output not in _OUTPUTS:
        raise CliError(f"--output must be one of {', '.join(_OUTPUTS)}", 2)
    if limit is not None and limit < 0:
        raise CliError("--limit must be 0 (every match) or more", 2)
    try:
        shown_zone = parse_zone(tz)
    except ValueError as exc:
        raise CliError(str(exc), 2) from None
    times = _times(since, start, end)
    console = _console(output)
    err = Console(stderr=True, highlight=False)
    try:
        with server_client(server, api_key, ca, timeout=timeout) as client:
            session = _Session(client, query, api_key, times)
            if limit == 0 or output == "ndjson":
                if output == "ndjson" and limit != 0:  # an export capped at --limit (default 100)
                    body = {"q": query, **times, **({"limit": limit} if limit is not None else {})}
                    _ndjson(client, body, query, api_key)
                    return
                _streamed(session, output, raw, shown_zone, console, err, quiet)
                return
            answer = session.answer(query, limit)
            rows = answer.get("rows") or []
            records = answer.get("kind") == "records"
            total = None
            counted = output in ("table", "raw") and not quiet and records
            if counted and (limit is None or len(rows) >= limit):
                total = session.total()
    except BrokenPipeError:  # `--limit 0 | head`: the reader has all it wanted (the caller's case)
        raise
    except (httpx.HTTPError, OSError) as exc:  # OSError: an unreadable --ca file
        raise CliError(f"cannot reach the server at {server}: {exc}", 2) from None
    if output == "json":
        sys.stdout.write(exactjson.dumps(answer).decode() + "\n")  # (orjson: TypeError past 64 bits)
        return
    if output == "csv":
        csv_out = CsvOut(sys.stdout, raw, answer.get("columns", []))
        for row in rows:
            csv_out.row(row)
        return
    footer = _footer(len(rows), total, answer.get("kind", ""), answer.get("stats") or {}, limit)
    if output == "table":
        print_table(console, list(answer.get("columns", [])), rows, records=records, raw_text=raw,
                    zone=shown_zone, footer="" if quiet else footer)
        return
    for row in rows:
        console.print(raw_line(row, records=records, raw_text=raw, zone=shown_zone), soft_wrap=True)
    if not quiet:
        err.print(Text(footer, style="dim"))


def _ndjson(client: httpx.Client, body: JsonObject, query: str, api_key: str | None) -> None:
    """The export's bytes as they come (``-o ndjson``): data, never altered."""
    with client.stream("POST", "/api/v1/query", json=body,
                       headers={"Accept": "application/x-ndjson"}) as response:
        if response.status_code >= 400:
            response.read()
            raise _refused(response, query, api_key)
        out = sys.stdout.buffer
        for chunk in response.iter_bytes():
            out.write(chunk)
        out.flush()


def register(app: typer.Typer) -> None:
    """Add ``logharbor query`` to the main command."""

    @app.command("query")
    def query(
        text: str = typer.Argument(..., metavar="QUERY",
                                   help="the query, e.g. 'level:ERROR | stats count() by service'"),
        since: str | None = typer.Option(None, "--since", metavar="DURATION",
                                         help="how far back: 15m, 1h, 7d"),
        start: str | None = typer.Option(None, "--from", metavar="TIME",
                                         help="start: RFC 3339, epoch seconds, now-1h"),
        end: str | None = typer.Option(None, "--to", metavar="TIME", help="end (exclusive), default now"),
        limit: int | None = typer.Option(None, "--limit", "-n", metavar="N",
                                         help="most rows (server default 100 records); 0: every match, "
                                              "streamed"),
        output: str | None = typer.Option(None, "--output", "-o", metavar="FORMAT",
                                          help="table, raw (one line per row), json, ndjson or csv "
                                               "(default: table on a terminal, raw otherwise)"),
        tz: str = TZ_OPTION,
        quiet: bool = typer.Option(False, "--quiet", "-q", help="no footer (shown/matched counts, time)"),
        raw: bool = typer.Option(False, "--raw", help="table/raw/csv: print control characters of log text "
                                                     "as stored instead of as \\x1b escapes"),
        server: str = SERVER_OPTION,
        api_key: str | None = KEY_OPTION,
        ca: Path | None = CA_OPTION,
    ) -> None:
        """Search and aggregate logs with the logharbor query language."""
        try:
            run_query(text, server=server, api_key=api_key, output=output, since=since,
                      start=start, end=end, limit=limit, ca=ca, raw=raw, tz=tz, quiet=quiet)
        except CliError as exc:
            typer.echo(f"logharbor query: {exc}", err=True)
            raise typer.Exit(exc.code) from None
        except BrokenPipeError:  # `| head` closed the pipe: not an error
            _quiet_broken_pipe()
            raise typer.Exit(0) from None


def _quiet_broken_pipe() -> None:
    """After ``| head`` closed stdout, point it at /dev/null so the exit flush raises nothing."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def main() -> None:
    """``python -m logharbor.cli.query …``: the command on its own, without the other groups."""
    from logharbor.cli.help import HELP_NAMES, polish

    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False,
                      context_settings={"help_option_names": HELP_NAMES})
    register(app)
    command = typer.main.get_command(app)
    polish(command)
    command()


if __name__ == "__main__":
    main()
