"""Agent test helpers: real agent processes, a real HTTP receiver process, config files."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FULL = os.environ.get("LOGHARBOR_FULL_TESTS") == "1"


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    """Write an agent.yaml; returns its path."""
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


class AgentProcess:
    """``python -m logharbor.agent -c cfg`` as a real process: start, SIGTERM, kill -9."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "logharbor.agent", "-c", str(self.config)],
                                     stdout=log, stderr=log, cwd=ROOT)
        log.close()
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Receiver:
    """tests/agent/receiver.py as a real process on loopback."""

    def __init__(self, tmp: Path, *args: str, port: int | None = None) -> None:
        self.port = port or free_port()
        self.out = tmp / f"received-{self.port}.ndjson"
        self.args = list(args)
        self.proc: subprocess.Popen[bytes] | None = None
        self.scheme = "https" if "--tls-cert" in args else "http"
        self.url = f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "receiver.py"), "--port", str(self.port), "--out", str(self.out),
             *self.args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == b"ready", line
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stats(self) -> dict[str, Any]:
        assert self.scheme == "http"
        with urllib.request.urlopen(self.url + "/stats", timeout=5) as r:
            return json.loads(r.read())

    def records(self) -> list[dict[str, Any]]:
        """The records received so far: complete lines only, as the receiver may be writing the
        last one right now (a partial line is read on a later call)."""
        if not self.out.exists():
            return []
        data = self.out.read_bytes()
        return [json.loads(line) for line in data[:data.rfind(b"\n") + 1].splitlines() if line]


@pytest.fixture
def receiver_factory(tmp_path: Path) -> Iterator[Any]:
    """Start receivers (stopped at the end of the test)."""
    started: list[Receiver] = []

    def make(*args: str, port: int | None = None) -> Receiver:
        r = Receiver(tmp_path, *args, port=port).start()
        started.append(r)
        return r

    yield make
    for r in started:
        r.kill()


@pytest.fixture
def agent_factory(tmp_path: Path) -> Iterator[Any]:
    """Start agent processes on a config dict (stopped at the end of the test)."""
    started: list[AgentProcess] = []

    def make(cfg: dict[str, Any], name: str = "agent") -> AgentProcess:
        path = write_config(tmp_path / f"{name}.yaml", cfg)
        a = AgentProcess(path, tmp_path / f"{name}.log").start()
        started.append(a)
        return a

    yield make
    for a in started:
        if a.proc is not None and a.proc.poll() is None:
            a.proc.kill()
            a.proc.wait()


def agent_metric(port: int, name: str, **labels: str) -> float:
    """One sample of an agent's ``/metrics`` (set ``metrics.port``), 0 before it serves or counts."""
    want = name + ("{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else "")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return 0.0


def log_events(agent: AgentProcess, message: str) -> list[dict[str, Any]]:
    """The agent's JSON log lines whose message is ``message`` (complete lines only)."""
    out = []
    for line in agent.log().splitlines(keepends=True):
        try:
            doc = json.loads(line) if line.endswith("\n") else None
        except ValueError:
            continue
        if isinstance(doc, dict) and doc.get("message") == message:
            out.append(doc)
    return out


def blocked_in(thread: Any, function: Any) -> bool:
    """Is ``thread`` inside ``function`` right now (somewhere on its stack)? For "the producer
    waits" without sleeping: the thread is seen waiting, not assumed to."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code is function.__code__:
            return True
        frame = frame.f_back
    return False


def sink_retries(sink: str) -> float:
    """Failed delivery attempts of an in-process sink so far (its retries counter)."""
    from logharbor.agent import telemetry

    return telemetry.METRICS.registry.get_sample_value("logharbor_agent_retries_total", {"sink": sink}) or 0.0


def checkpoint_offsets(data_dir: Path, source: str) -> dict[str, int]:
    """path -> delivered offset in a file source's checkpoint document (empty before the first)."""
    try:
        doc = json.loads((data_dir / "checkpoints" / f"{source}.json").read_bytes())
    except (OSError, ValueError):
        return {}
    return {e["path"]: int(e["offset"]) for e in doc.get("files", [])}


def wait_for(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return bool(value)
        time.sleep(interval)


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A real S3 API server (moto's server process) on loopback; its URL, with test credentials
    set in the environment meanwhile."""
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.2)
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield url
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def moto_s3() -> Iterator[str]:
    """:func:`moto_server` for one test."""
    with moto_server() as url:
        yield url
