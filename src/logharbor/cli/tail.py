"""``logharbor tail QUERY``: print matching records as they arrive, coloured by level.

The server filters (``GET /api/v1/tail?q=…``); this command only reads the stream, over
Server-Sent Events by default (plain httpx) or a WebSocket with ``--ws``. A ``{"dropped": N}``
marker from a server whose queue for this terminal overflowed is printed as a warning line, so
a gap is never silent. ``--output json`` prints each record as one JSON line for other programs.
When a stream that was running ends (a server restart), it reconnects with backoff and says so
on stderr. Control characters in log text are printed visibly (``\\x1b``), and the lines of a
multi-line message are indented under its first, so no message can pass for another record or
drive the terminal; ``--raw`` prints them as stored. Ctrl-C ends it; exit 2 when the server
cannot be reached at first, 1 when it refuses the query.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import typer

from logharbor import exactjson
from logharbor.cli.client import CA_OPTION, KEY_OPTION, SERVER_OPTION, key_advice, server_client
from logharbor.cli.terminal import visible
from logharbor.cli.timezone import TZ_OPTION, Zone, parse_zone
from logharbor.cli.trace import LEVEL_STYLE, CliError, refused
from logharbor.types import WireRecord

__all__ = ["follow", "format_record", "register", "stream_sse", "stream_ws"]

#: one event from the server: ("record", obj), ("dropped", n) or ("subscribed", info)
Event = tuple[str, Any]


def _event(kind: str, data: str) -> Event:
    obj = exactjson.loads(data)  # as the query command reads answers: one JSON reading for both
    if kind == "dropped" or (isinstance(obj, dict) and set(obj) == {"dropped"}):
        return "dropped", int(obj["dropped"])
    if kind == "subscribed" or (isinstance(obj, dict) and set(obj) == {"subscribed"}):
        return "subscribed", obj.get("subscribed", obj)
    if isinstance(obj, dict) and "error" in obj and "timestamp" not in obj:
        error = obj["error"]
        raise CliError(visible(f"{error.get('code', 'error')}: {error.get('message', '')}"), 1)
    return "record", obj


def stream_sse(query: str, *, server: str, api_key: str | None, ca: Path | None = None) -> Iterator[Event]:
    """Events from ``GET /api/v1/tail`` as Server-Sent Events, until the server ends the stream."""
    try:
        with server_client(server, api_key, ca) as client, client.stream(
                "GET", "/api/v1/tail", params={"q": query}, headers={"Accept": "text/event-stream"},
                timeout=httpx.Timeout(None, connect=10)) as response:
            if response.status_code >= 400:
                response.read()
                raise refused(response, api_key)
            kind, data = "message", []
            for line in response.iter_lines():
                if not line:
                    if data:
                        yield _event(kind, "\n".join(data))
                    kind, data = "message", []
                elif line.startswith(":"):
                    continue  # keepalive
                elif line.startswith("event:"):
                    kind = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip())
    except (httpx.HTTPError, OSError) as exc:  # OSError: an unreadable --ca file
        raise CliError(f"cannot reach the server at {server}: {exc}", 2) from None


def ws_url(server: str, query: str) -> str:
    """``http(s)://host`` → ``ws(s)://host/api/v1/tail?q=…``."""
    base = server.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[8:]
    elif base.startswith("http://"):
        base = "ws://" + base[7:]
    return f"{base}/api/v1/tail?{urlencode({'q': query})}"


async def stream_ws(query: str, *, server: str, api_key: str | None, on_event: Callable[[Event], None],
                    ca: Path | None = None) -> None:
    """Call ``on_event`` for each message of the WebSocket tail until the server closes it."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

    url = ws_url(server, query)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        tls = {"ssl": ssl.create_default_context(cafile=str(ca))} if ca and url.startswith("wss:") else {}
        async with connect(url, additional_headers=headers, max_size=16 * 1024 * 1024, open_timeout=10,
                           **tls) as ws:
            try:
                async for message in ws:
                    on_event(_event("message", message if isinstance(message, str) else message.decode()))
            except ConnectionClosed as exc:
                if exc.rcvd is not None and exc.rcvd.code in (4401, 4403):
                    advice = key_advice(exc.rcvd.code - 4000, api_key)
                    raise CliError(f"the server refused: {visible(exc.rcvd.reason)}\n  {advice}", 1) from None
    except InvalidStatus as exc:
        status = exc.response.status_code
        advice = key_advice(status, api_key)
        raise CliError(f"the server refused the WebSocket: HTTP {status}"
                       + (f"\n  {advice}" if advice else ""), 1) from None
    except (OSError, InvalidHandshake, TimeoutError) as exc:
        raise CliError(f"cannot reach the server at {server}: {exc}", 2) from None


def format_record(record: WireRecord, raw: bool = False, zone: Zone | None = None) -> Any:
    """One record as a coloured line: time (of day, in ``zone``; UTC when None), level,
    service/instance, message, HTTP summary.

    Unless ``raw``, control characters of the record are escaped and the further lines of a
    multi-line message are indented under the message, as journalctl prints them.
    """
    from rich.text import Text

    def shown(value: Any) -> str:
        return str(value) if raw else visible(str(value), newlines=False)

    level = shown(record.get("level", ""))
    http = record.get("http") or {}
    when = shown(record.get("timestamp", ""))
    if zone is not None:
        when = zone.convert(when, sep=" ", digits=3, offset=False)
    head = Text.assemble(
        (when[11:23] + " ", "dim"),
        (f"{level:<5} ", LEVEL_STYLE.get(level, "")),
        (f"{shown(record.get('instance') or record.get('service', ''))} ", "cyan"),
    )
    message = str(record.get("message", ""))
    if not raw:
        message = visible(message).replace("\n", "\n" + " " * len(head.plain))
    line = head + Text(message)
    if isinstance(http.get("status"), int):
        status = http["status"]
        style = "red" if status >= 500 else "yellow" if status >= 400 else "dim"
        line.append(f"  {status}", style=style)
    if http.get("duration_ms") is not None:
        line.append(f" {shown(http['duration_ms'])} ms", style="dim")
    if record.get("trace_id"):
        line.append(f"  trace={shown(record['trace_id'])}", style="dim")
    return line


def _printer(output: str, raw: bool = False, zone: Zone | None = None) -> Callable[[Event], None]:
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, highlight=False)

    def show(event: Event) -> None:
        kind, value = event
        if kind == "subscribed":
            what = value.get("q", "") if isinstance(value, dict) else value
            err.print(Text(f"tailing {visible(str(what))} (Ctrl-C to stop)", style="dim"))
        elif kind == "dropped":
            if output == "json":
                sys.stdout.write(json.dumps({"dropped": value}) + "\n")
                sys.stdout.flush()
            err.print(f"… {value} records dropped: this terminal fell behind the server", style="yellow")
        elif output == "json":
            sys.stdout.write(exactjson.dumps(value).decode() + "\n")  # the server's text: 1.5e-7, not 1.5e-07
            sys.stdout.flush()
        else:
            console.print(format_record(value, raw, zone))

    return show


def follow(query: str, *, server: str, api_key: str | None, ws: bool, show: Callable[[Event], None],
           ca: Path | None = None, reconnect: bool = True, max_delay: float = 30.0) -> None:
    """Stream events to ``show``; after a stream that had started ends, reconnect with backoff.

    A first connection that fails or is refused raises :class:`CliError` at once; later losses
    (a server restart) are retried until Ctrl-C, saying so on stderr, since records written while
    disconnected are not shown.
    """
    started = False
    delay = 1.0

    def seen(event: Event) -> None:
        nonlocal started, delay
        if event[0] == "subscribed":
            started, delay = True, 1.0
        show(event)

    while True:
        try:
            if ws:
                asyncio.run(stream_ws(query, server=server, api_key=api_key, on_event=seen, ca=ca))
            else:
                for event in stream_sse(query, server=server, api_key=api_key, ca=ca):
                    seen(event)
            reason = "the server ended the stream"
        except CliError as exc:
            if not started or exc.code != 2:
                raise
            reason = str(exc)
        if not (reconnect and started):
            return
        typer.echo(f"logharbor tail: {reason}; reconnecting in {delay:.0f} s (records written "
                   "meanwhile are not shown: use logharbor query --since)", err=True)
        time.sleep(delay)
        delay = min(delay * 2, max_delay)


def register(app: typer.Typer) -> None:
    """Add ``logharbor tail`` to the main command."""

    @app.command("tail")
    def tail(
        query: str = typer.Argument("*", help="a filter, e.g. 'service:checkout AND level:ERROR'"),
        ws: bool = typer.Option(False, "--ws", help="use a WebSocket instead of Server-Sent Events"),
        output: str = typer.Option("pretty", "--output", "-o", help="pretty or json"),
        no_reconnect: bool = typer.Option(False, "--no-reconnect", help="exit when the stream ends"),
        raw: bool = typer.Option(False, "--raw", help="pretty: print control characters of log text as "
                                                     "stored instead of as \\x1b escapes"),
        tz: str = TZ_OPTION,
        server: str = SERVER_OPTION,
        api_key: str | None = KEY_OPTION,
        ca: Path | None = CA_OPTION,
    ) -> None:
        """Follow new records that match a filter, as they are written."""
        if output not in ("pretty", "json"):
            typer.echo("logharbor tail: --output must be pretty or json", err=True)
            raise typer.Exit(2)
        try:
            shown_zone = parse_zone(tz)
        except ValueError as exc:
            typer.echo(f"logharbor tail: {exc}", err=True)
            raise typer.Exit(2) from None
        try:
            follow(query, server=server, api_key=api_key, ws=ws, show=_printer(output, raw, shown_zone),
                   ca=ca, reconnect=not no_reconnect)
        except CliError as exc:
            typer.echo(f"logharbor tail: {exc}", err=True)
            raise typer.Exit(exc.code) from None
        except (KeyboardInterrupt, BrokenPipeError):
            raise typer.Exit(0) from None
