"""The reference stack, for real: ALB stand-in → Debian nginx → two app instances → agent → server.

Every process runs on loopback: the logharbor server, the shop app on ports 9092 and 9093
(other free ports if those are taken) logging through the sdk, nginx proxying to them, the ALB
stand-in in front writing gzip'd log objects, and one agent collecting NGINX's access and error
logs, the apps' JSON logs and the ALB objects. :class:`StackTraffic` sends real HTTP requests
through the front door: browsing, search, cart, checkout (some payments fail), unknown pages,
some requests arriving with an ``X-Amzn-Trace-Id`` of their own.

Two stacks may start side by side (two test processes, a demo beside a test). The parent binds
each Python child's listening socket and hands it over (``--fd``), so a port is never picked by
one stack and taken by another in between; nginx binds its own port, and its answer carries this
stack's token before the stack uses it (else: another port). Without that, a second stack's
traffic went through the first stack's ALB and apps.
"""

from __future__ import annotations

import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from logharbor.demo.nginx import find_nginx, start_nginx
from logharbor.demo.traffic import PRODUCTS, QUERIES, USER_AGENTS
from logharbor.types import JsonObject

__all__ = ["RequestResult", "Stack", "StackTraffic"]


def _listen(preferred: int | None = None) -> socket.socket:
    """A listening socket on loopback, on ``preferred`` when it is free, else on a free port:
    held from here on, so no other process can take the port before the child serves it."""
    for port in ([preferred] if preferred is not None else []) + [0]:
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        sock.listen(128)
        sock.set_inheritable(True)
        return sock
    raise OSError("no free port on 127.0.0.1")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 60,
               expect: str | None = None) -> bool:
    """Wait until ``url`` answers (with ``expect`` in the body, when given); False when ``proc``
    exited first (nginx: its port was taken)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            if expect is not None:
                return False
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            answer = httpx.get(url, timeout=1)
            if expect is None or expect in answer.text:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer at {url} in {timeout} s")


@dataclass
class Stack:
    """Starts and stops the processes; ``root`` holds their data and logs."""

    root: Path
    server_url: str
    api_key: str
    app_ports: tuple[int, ...] = (9092, 9093)
    #: how far each app instance's log clock is off (ms, by position in ``app_ports``; + is ahead)
    app_clock_offsets_ms: tuple[float, ...] = ()
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    front_url: str = ""

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def start(self) -> None:
        """Apps, nginx, ALB, then the agent; raises NginxNotFound when nginx is missing."""
        find_nginx()
        socks = [_listen(p) for p in self.app_ports]
        ports = tuple(sock.getsockname()[1] for sock in socks)
        self.app_ports = ports
        for i, (port, sock) in enumerate(zip(ports, socks, strict=True)):
            log_file = self.logs / "app" / f"checkout-{port}.log"
            log_file.parent.mkdir(parents=True, exist_ok=True)
            offset = self.app_clock_offsets_ms[i] if i < len(self.app_clock_offsets_ms) else 0.0
            with sock:  # the child holds it from here
                fd = sock.fileno()
                self.procs[f"app-{port}"] = subprocess.Popen(
                    [sys.executable, "-m", "logharbor.demo.apps", "--port", str(port), "--fd", str(fd),
                     "--log-file", str(log_file), "--clock-offset-ms", str(offset)],
                    pass_fds=(fd,), stdout=subprocess.DEVNULL,
                    stderr=open(self.root / f"app-{port}.err", "wb"))
        for port in ports:
            _wait_http(f"http://127.0.0.1:{port}/healthz", self.procs[f"app-{port}"], f"app on {port}")
        nginx_port = self._start_nginx(ports)
        alb = _listen(8000)
        alb_port = alb.getsockname()[1]
        with alb:
            fd = alb.fileno()
            self.procs["alb"] = subprocess.Popen(
                [sys.executable, "-m", "logharbor.demo.alb", "--port", str(alb_port), "--fd", str(fd),
                 "--target", f"http://127.0.0.1:{nginx_port}", "--log-dir", str(self.logs / "alb"),
                 "--flush", "2"],
                pass_fds=(fd,), stdout=subprocess.DEVNULL, stderr=open(self.root / "alb.err", "wb"))
        self.front_url = f"http://127.0.0.1:{alb_port}"
        _wait_http(self.front_url + "/healthz", self.procs["alb"], "the ALB stand-in")
        config = self.root / "agent.yaml"
        config.write_text(yaml.safe_dump(self.agent_config()))
        self.procs["agent"] = subprocess.Popen(
            [sys.executable, "-m", "logharbor.cli.main", "agent", "-c", str(config)],
            stdout=subprocess.DEVNULL, stderr=open(self.root / "agent.log", "wb"))

    def _start_nginx(self, app_ports: tuple[int, ...], attempts: int = 5) -> int:
        """nginx on a free port, answering with this stack's token (not another process on the
        port); its port."""
        token = secrets.token_hex(8)
        for _ in range(attempts):
            port = _free_port()
            proc = start_nginx(self.root / "nginx", port=port, app_ports=app_ports,
                               log_dir=self.logs / "nginx", token=token)
            self.procs["nginx"] = proc
            if _wait_http(f"http://127.0.0.1:{port}/.lab-stack", proc, "nginx", expect=token):
                return port
        raise RuntimeError(f"nginx found no free port in {attempts} tries: "
                           f"{(proc.stderr.read() if proc.stderr else b'').decode(errors='replace')}")

    def agent_config(self) -> JsonObject:
        """What a host agent of this stack would run with (written to ``agent.yaml``)."""
        logs = self.logs
        return {
            "data_dir": str(self.root / "agent-data"),
            "metrics": {"port": 0},
            "sources": {
                "nginx_access": {"type": "file", "include": [str(logs / "nginx" / "access.log")],
                                 "start_at": "beginning", "parser": {"type": "nginx", "format": "main"},
                                 "fields": {"service": "nginx", "host": "ip-10-0-1-20", "env": "prod"}},
                "nginx_error": {"type": "file", "include": [str(logs / "nginx" / "error.log")],
                                "start_at": "beginning", "parser": {"type": "nginx", "format": "error"},
                                "fields": {"service": "nginx", "host": "ip-10-0-1-20", "env": "prod"}},
                "apps": {"type": "file", "include": [str(logs / "app" / "*.log")], "start_at": "beginning",
                         "parser": "json"},
                "alb": {"type": "alb", "path": str(logs / "alb"), "poll_interval_s": 1.0,
                        "fields": {"service": "shop-alb", "env": "prod"}},
            },
            "sinks": {"server": {"type": "logharbor", "url": self.server_url, "api_key": self.api_key,
                                 "batch": {"timeout_secs": 0.5}}},
        }

    def stop(self) -> None:
        """Agent first (it drains what it read), then the front to the back."""
        for name in ["alb", "agent", "nginx", *[n for n in self.procs if n.startswith("app-")]]:
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGQUIT if name == "nginx" else signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


@dataclass
class RequestResult:
    """One request sent through the stack and what the front door answered."""

    method: str
    path: str
    status: int
    sent_trace: str | None
    request_id: str | None


class StackTraffic:
    """Real requests through the ALB stand-in, in the mix the generated demo uses."""

    def __init__(self, front_url: str, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.client = httpx.Client(base_url=front_url, timeout=30)

    def one(self, *, with_trace: bool | None = None) -> RequestResult:
        r = self.rng
        kind = r.choices(("browse", "product", "search", "cart", "checkout", "missing"),
                         weights=(25, 25, 15, 10, 20, 5))[0]
        headers = {"user-agent": r.choice(USER_AGENTS)}
        if with_trace or (with_trace is None and r.random() < 0.2):
            headers["x-amzn-trace-id"] = f"Root=1-{int(time.time()):08x}-{r.getrandbits(96):024x}"
        user = f"u-{r.randrange(1, 500)}"
        if kind == "browse":
            method, path, body = "GET", "/products", None
        elif kind == "product":
            method, path, body = "GET", f"/products/{r.choice(list(PRODUCTS))}", None
        elif kind == "search":
            method, path, body = "GET", f"/search?q={r.choice(QUERIES).replace(' ', '+')}", None
        elif kind == "cart":
            method, path, body = "POST", "/api/cart", {"user_id": user, "sku": r.choice(list(PRODUCTS))}
        elif kind == "checkout":
            amount = round(r.uniform(5, 400), 2)
            method, path, body = "POST", "/api/orders", {"user_id": user, "amount": amount}
        else:
            method, path, body = "GET", f"/products/{r.choice(('old-kettle', 'wp-login.php'))}", None
        response = self.client.request(method, path, json=body, headers=headers)
        return RequestResult(method, path, response.status_code, headers.get("x-amzn-trace-id"),
                             response.headers.get("x-request-id"))

    def close(self) -> None:
        self.client.close()
