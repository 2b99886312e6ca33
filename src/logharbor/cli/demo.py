"""``logharbor demo``: a server on a temporary data directory, fed with the reference stack's logs."""

from __future__ import annotations

import shlex
import shutil
import signal
import socket
import sys
import threading
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


_PATTERNS_QUERY = "level:>=WARN | patterns"
#: the default clock offset of the lab's second app instance (issue 28: the demo shows one)
SKEW_MS = 25.0
#: clients sending the real stack's first requests at once
CLIENTS = 4
#: what the demo suggests to explain: the checkout errors against every other record of the hour
EXPLAIN_QUERY = "service:checkout AND level:ERROR"


def cli_command() -> str:
    """How to run ``logharbor`` from the shell the demo was started in: ``logharbor`` when that
    name on the PATH is this installation, else its full path (a venv not activated), else
    ``python -m logharbor.cli.main`` with this interpreter."""
    beside = Path(sys.executable).parent / "logharbor"
    on_path = shutil.which("logharbor")
    if beside.exists():
        if on_path is not None and Path(on_path).resolve() == beside.resolve():
            return "logharbor"
        return shlex.quote(str(beside))
    if on_path is not None:
        return "logharbor"
    return f"{shlex.quote(sys.executable)} -m logharbor.cli.main"


def _where_to_look(console: Console, url: str, api_key: str | None, root: Path, key_file: Path,
                   logs: str, trace: str | None, request_id: str | None) -> None:
    console.print(f"\n[green]server[/]  {url}", highlight=False)
    console.print(f"api key  {api_key}   (admin; also in {key_file})", highlight=False, soft_wrap=True)
    console.print(f"logs     {logs}", soft_wrap=True, highlight=False)
    cli = cli_command()
    console.print("\n[bold]try[/]")
    console.print(f"  export LOGHARBOR_SERVER={url} LOGHARBOR_API_KEY={api_key}",
                  highlight=False, soft_wrap=True)
    for q in ("service:checkout AND level:ERROR", '"payment declined"',
              f"trace_id:{trace}" if trace else "source:nginx AND status:>=500"):
        body = orjson.dumps({"q": q, "from": "now-1h"}).decode()
        console.print(f"  curl -s $LOGHARBOR_SERVER/api/v1/query -H \"authorization: Bearer "
                      f"$LOGHARBOR_API_KEY\" -H 'content-type: application/json' -d '{body}'",
                      soft_wrap=True, highlight=False)
        console.print(f"  {cli} query '{q}' --since 1h", soft_wrap=True, highlight=False)
    console.print(f"  {cli} query '{_PATTERNS_QUERY}' --since 1h   # the shapes the warnings take",
                  soft_wrap=True, highlight=False)
    console.print(f"  {cli} explain '{EXPLAIN_QUERY}' --since 1h --baseline complement   # what sets the "
                  "errors apart", soft_wrap=True, highlight=False)
    if request_id or trace:
        console.print(f"  {cli} trace {request_id or trace}", soft_wrap=True, highlight=False)
    console.print(f"  {cli} tail 'service:checkout AND level:ERROR'", soft_wrap=True, highlight=False)
    console.print(f"  open {url}/ui/ in a browser and log in with the key", soft_wrap=True, highlight=False)


def _run_stack(console: Console, lab, root: Path, requests: int, rate: float,  # type: ignore[no-untyped-def]
               stop, skew_ms: float = 0.0) -> bool:  # type: ignore[no-untyped-def]
    """The real stack (nginx, two apps, ALB stand-in, agent); False when nginx is missing."""
    from logharbor.demo.nginx import NginxNotFound
    from logharbor.demo.stack import RequestResult, Stack, StackTraffic

    stack = Stack(root / "stack", lab.url, lab.api_key or "", app_clock_offsets_ms=(0.0, skew_ms))
    try:
        with console.status("starting two app instances, nginx, the ALB stand-in and the agent…"):
            stack.start()
    except NginxNotFound as exc:
        console.print(f"[yellow]{exc}[/]\nfalling back to generated logs of the same stack")
        return False
    traffic = StackTraffic(stack.front_url)
    try:
        failures: list[RequestResult] = []
        with Progress(TextColumn("sending requests through the ALB"), BarColumn(), MofNCompleteColumn(),
                      console=console) as progress:
            task = progress.add_task("requests", total=requests)

            def client(count: int) -> None:
                own = StackTraffic(stack.front_url)
                try:
                    for _ in range(count):
                        result = own.one()
                        if result.status >= 500 and result.request_id:
                            failures.append(result)
                        progress.advance(task)
                finally:
                    own.close()

            # a few clients at once, as users arrive: the apps spend most of a request waiting on
            # the payment provider, so one client at a time took ~4× as long for the same requests
            shares = [requests // CLIENTS + (1 if i < requests % CLIENTS else 0) for i in range(CLIENTS)]
            threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in shares if n]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        failed = failures[-1] if failures else None
        trace = _wait_searchable(lab, failed.request_id) if failed is not None else None
        _where_to_look(console, lab.url, lab.api_key, root, root / "server" / "admin.key",
                       f"{stack.logs} (ALB objects, NGINX logs, app JSON); front door {stack.front_url}",
                       trace, failed.request_id if failed else None)
        console.print("\nlive traffic is flowing through the ALB; Ctrl-C stops the demo")
        try:
            while not stop():
                began = time.monotonic()
                for _ in range(max(1, int(rate))):
                    traffic.one()
                time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
        except KeyboardInterrupt:
            pass
    finally:
        traffic.close()
        stack.stop()
    return True


def _wait_searchable(lab, request_id: str, timeout: float = 90) -> str | None:  # type: ignore[no-untyped-def]
    """Wait until a request's three layers are in the store (ALB objects come every 2 s);
    its normalized trace id."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{lab.url}/api/v1/traces/{request_id}", timeout=10,
                             headers={"authorization": f"Bearer {lab.api_key}"})
        if response.status_code == 200 and len(response.json().get("layers", [])) >= 3:
            return next((r["trace_id"] for r in response.json()["records"] if r.get("trace_id")), None)
        time.sleep(0.5)
    return None


def _run_generated(console: Console, lab, root: Path, backlog: int, stop) -> None:  # type: ignore[no-untyped-def]
    """Generated logs of the same stack, shipped through the parsers (no nginx needed)."""
    from logharbor.demo.lab import Shipper

    shipper = Shipper(lab.url, api_key=lab.api_key)
    try:
        with Progress(TextColumn("shipping the last 30 minutes"), BarColumn(), MofNCompleteColumn(),
                      console=console) as progress:
            task = progress.add_task("backlog", total=backlog)
            lab.ship_backlog(shipper, progress=lambda n: progress.advance(task, n))
        _where_to_look(console, lab.url, lab.api_key, root, root / "server" / "admin.key",
                       f"{lab.files.root} (generated ALB objects, NGINX access log, app JSON)",
                       lab.failed_trace, None)
        console.print("\nlive traffic is flowing; Ctrl-C stops the demo")
        lab.live(shipper, stop=stop)
    finally:
        shipper.close()


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        port: int = typer.Option(8080, help="server port (another free one is used if it is taken)"),
        data_dir: Path | None = typer.Option(None, "--data-dir", help="default: a new temporary folder"),
        generated: bool = typer.Option(False, "--generated",
                                       help="skip the real stack: ship generated logs of it instead"),
        requests: int = typer.Option(300, help="requests sent through the real stack before going live"),
        backlog: int = typer.Option(6000, help="generated mode: requests of history (the last 30 min)"),
        rate: float = typer.Option(20.0, help="live requests per second"),
        duration: float = typer.Option(0, help="stop after this many seconds (0: run until Ctrl-C)"),
        keep: bool = typer.Option(False, help="keep the data directory on exit"),
        skew_ms: float = typer.Option(SKEW_MS, "--skew-ms",
                                      help="the second app instance's clock runs this many ms ahead "
                                           "(the Services page shows the offset found; 0: none)"),
    ) -> None:
        """Start a server and the reference stack (ALB → NGINX → apps), ship its logs, say where to look."""
        from logharbor.demo.lab import DemoLab, default_data_dir
        from logharbor.demo.traffic import APP_PORTS

        def _interrupt(*_: object) -> None:
            raise KeyboardInterrupt

        # SIGTERM and SIGINT stop the demo like Ctrl-C does, every process it started with it;
        # SIGINT is set here because a shell starts a background job (`logharbor demo &`) with
        # SIGINT ignored, and Python keeps it ignored: `kill -INT` would do nothing
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)
        console = Console()
        root = data_dir or default_data_dir()
        root.mkdir(parents=True, exist_ok=True)
        lab = DemoLab(root, _pick_port(port), backlog_requests=backlog, live_rate=rate,
                      clock_offsets_ms={f"checkout-{APP_PORTS[1]}": skew_ms} if skew_ms else None)
        console.print(f"[bold]logharbor demo[/] · data in {root}")
        deadline = time.monotonic() + duration if duration > 0 else None

        def stop() -> bool:
            return deadline is not None and time.monotonic() > deadline

        try:
            with console.status("starting the server…"):
                lab.start_server()
            if skew_ms:
                console.print(f"one app instance's clock runs {skew_ms:+g} ms off (--skew-ms): "
                              "see the Clocks card on the Services page", highlight=False)
            if generated or not _run_stack(console, lab, root, requests, rate, stop, skew_ms):
                _run_generated(console, lab, root, backlog, stop)
        except KeyboardInterrupt:
            pass
        finally:
            lab.stop_server()
            if data_dir is None and not keep:
                shutil.rmtree(root, ignore_errors=True)
            console.print("demo stopped")
