"""``logharbor demo``: a server on a temporary data directory, fed with the reference stack's logs."""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

__all__ = ["register"]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port(wanted: int) -> int:
    if _port_free(wanted):
        return wanted
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        port: int = typer.Option(8080, help="server port (another free one is used if it is taken)"),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="default: a new temporary folder"),
        backlog: int = typer.Option(6000, help="requests of history to ship first (the last 30 min)"),
        rate: float = typer.Option(20.0, help="live requests per second after the backlog"),
        duration: float = typer.Option(0, help="stop after this many seconds (0: run until Ctrl-C)"),
        keep: bool = typer.Option(False, help="keep the data directory on exit"),
    ) -> None:
        """Start a server, ship realistic ALB, NGINX and app logs into it, print where to look."""
        from logharbor.demo.lab import DemoLab, Shipper, default_data_dir

        console = Console()
        root = data_dir or default_data_dir()
        root.mkdir(parents=True, exist_ok=True)
        lab = DemoLab(root, _pick_port(port), backlog_requests=backlog, live_rate=rate)
        console.print(f"[bold]logharbor demo[/] · data in {root}")
        try:
            with console.status("starting the server…"):
                lab.start_server()
            shipper = Shipper(lab.url, api_key=lab.api_key)
            with Progress(TextColumn("shipping the last 30 minutes"), BarColumn(), MofNCompleteColumn(),
                          console=console) as progress:
                task = progress.add_task("backlog", total=backlog)
                lab.ship_backlog(shipper, progress=lambda n: progress.advance(task, n))
            trace = lab.failed_trace
            console.print(f"\n[green]server[/]  {lab.url}   ({shipper.sent} records so far)")
            console.print(f"api key  {lab.api_key}   (admin; also in {root / 'server' / 'admin.key'})",
                          highlight=False, soft_wrap=True)
            console.print(f"logs     {lab.files.root} (ALB objects, NGINX access log, app JSON)",
                          soft_wrap=True)
            console.print("\n[bold]try[/]")
            console.print(f"  export LOGHARBOR_SERVER={lab.url} LOGHARBOR_API_KEY={lab.api_key}",
                          highlight=False, soft_wrap=True)
            for q in ('service:checkout AND level:ERROR', '"payment declined"',
                      f'trace_id:{trace}' if trace else 'source:nginx AND status:>=500'):
                body = orjson.dumps({"q": q, "from": "now-1h"}).decode()
                console.print(f"  curl -s $LOGHARBOR_SERVER/api/v1/query -H \"authorization: Bearer "
                              f"$LOGHARBOR_API_KEY\" -H 'content-type: application/json' -d '{body}'",
                              soft_wrap=True, highlight=False)
                console.print(f"  logharbor query '{q}' --since 1h", soft_wrap=True, highlight=False)
            console.print("\nlive traffic is flowing; Ctrl-C stops the demo")
            deadline = time.monotonic() + duration if duration > 0 else None
            try:
                lab.live(shipper, stop=lambda: deadline is not None and time.monotonic() > deadline)
            except KeyboardInterrupt:
                pass
            shipper.close()
        finally:
            lab.stop_server()
            if data_dir is None and not keep:
                shutil.rmtree(root, ignore_errors=True)
        console.print("demo stopped")
