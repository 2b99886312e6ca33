"""``logharbor trace ID``: one request across ALB, NGINX and the apps, as a waterfall in the terminal.

The server does the joining and the arithmetic (``GET /api/v1/traces/{id}``); this command only
draws: the timing breakdown with its gaps, one bar per layer nested the way the request went, and
every record of the request with its offset from the start. ``--output json`` prints the server's
answer as is. Exit codes: 1 when the server refused or found nothing, 2 when it cannot be reached.
Control characters in log text are printed visibly (``\\x1b``, :mod:`logharbor.cli.terminal`);
``--raw`` prints them as stored.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import typer

from logharbor.cli.client import CA_OPTION, KEY_OPTION, SERVER_OPTION, key_advice, server_client
from logharbor.cli.errors import CliError
from logharbor.cli.terminal import cell_text, visible
from logharbor.types import JsonObject, WireRecord

__all__ = ["CliError", "fetch_trace", "register", "render_trace"]

BAR_WIDTH = 48
LAYER_STYLE = {"alb": "magenta", "nginx": "cyan", "app": "green"}
LEVEL_STYLE = {"TRACE": "dim", "DEBUG": "dim", "INFO": "green", "WARN": "yellow", "ERROR": "bold red",
               "FATAL": "bold white on red"}


def refused(response: httpx.Response, api_key: str | None = None) -> CliError:
    """A server's JSON error as one readable line; for a refused key, which key was sent and
    how to set one (:func:`logharbor.cli.client.key_advice`)."""
    try:
        error = response.json()["error"]
        message = visible(f"{error.get('code', 'error')}: {error.get('message', '')}")
    except (ValueError, KeyError, TypeError):
        message = visible(f"HTTP {response.status_code}: {response.text[:200]}")
    advice = key_advice(response.status_code, api_key)
    return CliError(message if advice is None else f"{message}\n  {advice}", 1)


def fetch_trace(trace_id: str, *, server: str, api_key: str | None, since: str | None = None,
                start: str | None = None, end: str | None = None, ca: Path | None = None,
                timeout: float = 60.0, raw_clock: bool = False) -> JsonObject:
    """The server's answer for one id; :class:`CliError` when refused or unreachable.
    ``raw_clock``: times as each host logged them, not corrected by its clock's offset."""
    asked = (("from", start or since), ("to", end), ("clock", "raw" if raw_clock else None))
    params = {k: v for k, v in asked if v}
    try:
        with server_client(server, api_key, ca, timeout=timeout) as client:
            response = client.get("/api/v1/traces/" + quote(trace_id.strip(), safe=""), params=params)
    except (httpx.HTTPError, OSError) as exc:  # OSError: an unreadable --ca file
        raise CliError(f"cannot reach the server at {server}: {exc}", 2) from None
    if response.status_code >= 400:
        raise refused(response, api_key)
    return response.json()


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.3f} ms"


def _bar(start: float, length: float, total: float, style: str, width: int = BAR_WIDTH) -> Any:
    from rich.text import Text

    scale = width / total if total > 0 else 0.0
    lead = min(round(start * scale), width - 1) if scale else 0
    size = max(1, min(round(length * scale), width - lead)) if scale else 1
    return Text(" " * lead) + Text("█" * size, style=style)


def render_trace(answer: JsonObject, console: Any | None = None, raw: bool = False) -> None:
    """Draw one trace answer: header, timings, waterfall, records (log text escaped unless ``raw``)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def shown(value: Any, style: str = "", newlines: bool = False) -> Text:
        return cell_text(value, raw=raw, style=style, newlines=newlines)

    console = console or Console(highlight=False)
    records: list[WireRecord] = answer.get("records", [])
    timings = answer.get("timings") or {}
    stats = answer.get("stats") or {}
    layers = ", ".join(answer.get("layers", []))
    console.print(Text.assemble(("trace ", "bold"), shown(answer.get("trace_id") or answer.get("id"), "bold"),
                                shown(f"  ·  {len(records)} records from {layers}"
                                      f"  ·  {stats.get('elapsed_ms', '?')} ms")))
    if answer.get("request_ids"):
        console.print(shown(f"request ids: {', '.join(answer['request_ids'])}", "dim"))
    if stats.get("truncated"):
        console.print("more records match than were returned; narrow the time range", style="yellow")

    table = Table(title="timings", title_justify="left", show_edge=False, header_style="bold")
    table.add_column("layer")
    table.add_column("measure")
    table.add_column("time", justify="right")
    alb, nginx, app, gaps = (timings.get(k) for k in ("alb", "nginx", "app", "gaps"))
    rows: list[tuple[str, str, float | None]] = []
    if alb:
        rows += [("alb", "request processing", alb.get("request_processing_ms")),
                 ("alb", "target processing", alb.get("target_processing_ms")),
                 ("alb", "response processing", alb.get("response_processing_ms")),
                 ("alb", "total", alb.get("total_ms"))]
    if nginx:
        rows += [("nginx", "request time", nginx.get("request_time_ms")),
                 ("nginx", "upstream response time", nginx.get("upstream_response_time_ms"))]
    if app:
        rows.append(("app", f"duration ({app.get('instance') or app.get('service') or 'app'})",
                     app.get("duration_ms")))
    gaps = gaps or {}
    rows += [("gap", "ALB → NGINX (network, queue)", gaps.get("alb_to_nginx_ms")),
             ("gap", "NGINX overhead", gaps.get("nginx_overhead_ms")),
             ("gap", "NGINX → app", gaps.get("nginx_to_app_ms"))]
    for layer, measure, value in rows:
        table.add_row(Text(layer, style=LAYER_STYLE.get(layer, "yellow")), shown(measure), _ms(value))
    console.print(table)

    bars = (answer.get("waterfall") or {}).get("bars") or []
    if bars:
        total = max(b["start_ms"] + (b["duration_ms"] or 0.0) for b in bars) or 1.0
        # the bars take what the other columns leave of the terminal, up to BAR_WIDTH
        label_w = max(len(shown(b["label"])) for b in bars)
        width = max(8, min(BAR_WIDTH, console.width - label_w - 36))
        fall = Table(title="waterfall", title_justify="left", show_edge=False, header_style="bold")
        fall.add_column("span", no_wrap=True)
        fall.add_column("start", justify="right")
        fall.add_column("duration", justify="right")
        fall.add_column(f"0 … {total:,.1f} ms", no_wrap=True)
        for bar in bars:
            style = LAYER_STYLE.get(bar["layer"], "white")
            length = bar["duration_ms"] or 0.0
            fall.add_row(shown(bar["label"], style), f"{bar['start_ms']:,.1f}",
                         _ms(bar["duration_ms"]), _bar(bar["start_ms"], length, total, style, width))
        console.print(fall)

    events = {e["record"]: e["at_ms"] for e in (answer.get("waterfall") or {}).get("events") or []}
    recs = Table(title="records", title_justify="left", show_edge=False, header_style="bold")
    for name, justify in (("+ms", "right"), ("layer", "left"), ("level", "left"), ("service", "left"),
                          ("message", "left")):
        recs.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for i, rec in enumerate(records):
        layer = rec.get("source") if rec.get("source") in ("alb", "nginx") else "app"
        level = rec.get("level", "")
        at = events.get(i)
        who = rec.get("instance") or rec.get("service", "")
        recs.add_row("" if at is None else f"{at:,.1f}", Text(layer, style=LAYER_STYLE[layer]),
                     shown(level, LEVEL_STYLE.get(level, "")), shown(who),
                     shown(rec.get("message", ""), newlines=True))
    console.print(recs)
    clock = timings.get("clock") or {}
    if clock.get("applied"):  # which hosts' times the +ms column corrects (the server's estimate)
        parts = [f"{a['clock']} {a['offset_ms']:+.1f} ± {a['uncertainty_ms'] or 0:.1f} ms"
                 for a in clock["applied"]]
        console.print(shown(f"clock offsets applied (against {clock.get('reference') or 'the reference'}): "
                            + ", ".join(parts) + "; --raw-clock shows the times as logged"), highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``logharbor trace`` to the main command."""

    @app.command("trace")
    def trace(
        trace_id: str = typer.Argument(..., help="trace id, X-Amzn-Trace-Id value or Root, traceparent, "
                                                 "or NGINX request id"),
        since: str | None = typer.Option(None, "--since", help="only look this far back: 15m, 1h, 7d"),
        start: str | None = typer.Option(None, "--from", help="start: RFC 3339, epoch seconds, now-1h"),
        end: str | None = typer.Option(None, "--to", help="end (exclusive)"),
        output: str = typer.Option("waterfall", "--output", "-o", help="waterfall or json"),
        raw: bool = typer.Option(False, "--raw", help="waterfall: print control characters of log text "
                                                     "as stored instead of as \\x1b escapes"),
        raw_clock: bool = typer.Option(False, "--raw-clock", help="place records by the times each host "
                                       "logged, not corrected by its clock's estimated offset"),
        server: str = SERVER_OPTION,
        api_key: str | None = KEY_OPTION,
        ca: Path | None = CA_OPTION,
    ) -> None:
        """Show every record of one request across ALB, NGINX and the apps, with a timing waterfall."""
        if output not in ("waterfall", "json"):
            typer.echo("logharbor trace: --output must be waterfall or json", err=True)
            raise typer.Exit(2)
        try:
            answer = fetch_trace(trace_id, server=server, api_key=api_key, since=since, start=start, end=end,
                                 ca=ca, raw_clock=raw_clock)
        except CliError as exc:
            typer.echo(f"logharbor trace: {exc}", err=True)
            raise typer.Exit(exc.code) from None
        if output == "json":
            sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
        else:
            render_trace(answer, raw=raw)
