"""Shared fixtures: a real ``logharbor server`` process on loopback."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent

# Every server, agent and CLI process a test starts imports logharbor from source. Where
# PYTHONDONTWRITEBYTECODE is set (these machines set it) and the tree has no bytecode yet, each one
# compiled every module again: 3.3 s of CPU to a ready server, ~2.0 s once the bytecode is written
# (measured side by side). The processes the tests start write it, beside the sources as Python
# does by default (``__pycache__/`` is ignored by git; each file is written atomically, so two
# test workers may write at once). Not a PYTHONPYCACHEPREFIX: that makes a fresh venv's pip
# (tests/cli/test_packaging.py) ignore the bytecode pip installed and compile everything again.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

# Test tiers (README "Tests", docs/testing.md): `pytest -m "not slow"` is the edit loop. Each kind
# below implies `slow`. A folder of one kind and a fixture that brings one are marked here; other
# tests carry their own marker (`@pytest.mark.e2e`, or a module's `pytestmark`).
SLOW_KINDS = ("e2e", "faults", "browser", "peer")
SLOW_FOLDERS = {"faults": "faults", "demo": "e2e", "clients": "peer"}
#: server_factory is behind `server` too: a server of the test's own (`module_server` is not slow)
SLOW_FIXTURES = {"server_factory": "e2e", "agent_factory": "e2e", "moto_s3": "e2e", "browser": "browser",
                 "rsyslog": "peer", "pg_url": "peer", "nginx_logs": "peer", "node_lines": "peer",
                 "logback_lines": "peer"}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark whole folders and fixture users by kind, and every kind as `slow`."""
    tests_dir = ROOT / "tests"
    for item in items:
        folder = item.path.relative_to(tests_dir).parts[0] if item.path.is_relative_to(tests_dir) else ""
        kinds = {SLOW_FOLDERS.get(folder)} | {SLOW_FIXTURES.get(f) for f in getattr(item, "fixturenames", ())}
        for kind in sorted(k for k in kinds if k):
            item.add_marker(kind)
        if any(item.get_closest_marker(kind) for kind in SLOW_KINDS) and not item.get_closest_marker("slow"):
            item.add_marker("slow")


# Hypothesis: the edit loop (`-m "not slow"`) runs each property with a fifth of its examples (profile
# "edit"); every other run (CI's whole suite, a room, the slow tier) runs all of them ("default").
# `--hypothesis-profile NAME` chooses one explicitly.
settings.register_profile("edit", max_examples=20)


def pytest_configure(config: pytest.Config) -> None:
    if re.search(r"\bnot\s+slow\b", config.getoption("markexpr", "") or "") \
            and not config.getoption("hypothesis_profile", None):
        settings.load_profile("edit")


def examples(full: int) -> int:
    """A property's number of examples in the loaded profile: ``full`` under hypothesis' default
    (100 per test), a fifth of it in the edit loop; set with ``@settings(max_examples=examples(300))``
    at import time, after the profile is loaded."""
    return max(5, full * settings.default.max_examples // 100)


def free_port() -> int:
    """A port free now. Another process (a second test worker) may take it before whoever asked
    binds it: servers started on it check that they are the one answering (:func:`listens_on`)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def listens_on(pid: int, port: int) -> bool:
    """Whether process ``pid`` holds the TCP socket listening on ``port`` (Linux ``/proc``): an
    answer on the port may come from another test worker's server that took the port first."""
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    except OSError:  # the process is gone
        return False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as rows:
            for row in list(rows)[1:]:
                cols = row.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port and cols[9] in inodes:
                    return True  # state 0A: LISTEN
    return False


class ServerProcess:
    """A real server process: start, wait until ready, kill -9, restart on the same data dir."""

    def __init__(self, data_dir: Path, *extra_args: str, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.chosen_port = port is not None  # a port given (or served before) is never swapped
        self.port = port or free_port()
        self.scheme = "http"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"  # the name keeps the first port
        self.api_key = ""
        self.headers: dict[str, str] = {}

    def decode_workers(self) -> list[int]:
        """This server's decode worker processes (spawned children running ``spawn_main``)."""
        assert self.proc is not None
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
                cmdline = (stat.parent / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if ppid == self.proc.pid and b"spawn_main" in cmdline:
                found.append(int(stat.parent.name))
        return found

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @url.setter
    def url(self, value: str) -> None:
        """A TLS test sets ``https://…``: only the scheme is kept, since the port is the harness's
        (it may move to another one when the chosen port was taken meanwhile)."""
        self.scheme = value.partition("://")[0]

    def start(self, timeout: float = 60.0) -> ServerProcess:
        """Start and wait until ready. The port was free when chosen, but another test worker may
        have taken it since: then this server exits (address in use) while the other one answers
        /readyz, so ready means *this* process listens on the port; on a port taken meanwhile it
        starts again on another one (unless the port was given, or served before: a restart)."""
        for _ in range(5):
            if self._start(time.monotonic() + timeout):
                self.chosen_port = True  # a restart comes back on the same port (agents point there)
                return self
            if self.chosen_port:
                raise RuntimeError(f"port {self.port} is another process's:\n{self.log()}")
            self.port = free_port()
        raise RuntimeError(f"no free port for the server in 5 tries:\n{self.log()}")

    def _start(self, deadline: float) -> bool:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        cmd = [sys.executable, "-m", "logharbor.cli.main", "server", "--data-dir", str(self.data_dir),
               "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning",
               *self.extra_args]
        log = open(self.log_path, "ab")
        began = log.tell()  # this attempt's part of the log
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        while time.monotonic() < deadline:
            if "address already in use" in self.log()[began:].lower():
                self.proc.kill()  # it would exit by itself, slowly on a loaded machine
                self.proc.wait()
                return False
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200 \
                        and listens_on(self.proc.pid, self.port):
                    key_file = self.data_dir / "admin.key"
                    if key_file.exists():
                        self.api_key = key_file.read_text().strip()
                        self.headers = {"authorization": f"Bearer {self.api_key}"}
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not become ready:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self, **kwargs) -> httpx.Client:  # type: ignore[no-untyped-def]
        """An httpx client for this server, carrying the admin key."""
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 30), headers=headers, **kwargs)

    def create_key(self, role: str, **fields) -> str:  # type: ignore[no-untyped-def]
        """A new API key of ``role`` (and scope ``fields``), made through the admin API."""
        with self.client() as client:
            response = client.post("/api/v1/keys", json={"role": role, **fields})
            response.raise_for_status()
            return response.json()["key"]

    def ingest(self, records: list[dict], *, wait: bool = True) -> None:  # type: ignore[type-arg]
        """POST records as NDJSON with the admin key; all must be accepted, and with ``wait`` the
        call returns once they are in the store (queryable)."""
        before = self.store_rows() if wait else 0
        with self.client() as client:
            response = client.post("/api/v1/logs", content=b"\n".join(orjson.dumps(r) for r in records),
                                   headers={"content-type": "application/x-ndjson"}, timeout=60)
            response.raise_for_status()
            answer = response.json()
        assert answer["accepted"] == len(records), answer
        if wait:
            assert self.wait_rows(before + len(records)) >= before + len(records)

    def query(self, q: str, **body) -> dict:  # type: ignore[no-untyped-def, type-arg]
        with self.client() as client:
            response = client.post("/api/v1/query", json={"q": q, **body})
            response.raise_for_status()
            return response.json()

    def wait_rows(self, expected: int, timeout: float = 30.0) -> int:
        """Wait until the store has ``expected`` rows (as /metrics reports them)."""
        deadline = time.monotonic() + timeout
        rows = -1
        while time.monotonic() < deadline:
            rows = self.store_rows()
            if rows >= expected:
                return rows
            time.sleep(0.1)
        return rows

    def store_rows(self) -> int:
        text = httpx.get(self.url + "/metrics", timeout=10, headers=self.headers).text
        for line in text.splitlines():
            if line.startswith("logharbor_store_rows "):
                return int(float(line.split()[1]))
        raise AssertionError("logharbor_store_rows missing from /metrics")


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    """Start servers on fresh (or given) data dirs; all are stopped at the end of the test."""
    started: list[ServerProcess] = []

    def make(*extra_args: str, data_dir: Path | None = None) -> ServerProcess:
        server = ServerProcess(data_dir or tmp_path / f"data{len(started)}", *extra_args)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def server(server_factory) -> ServerProcess:  # type: ignore[no-untyped-def]
    """One real server process on loopback with a fresh data directory (batches flush fast)."""
    return server_factory("--batch-max-age", "0.2")


@pytest.fixture(scope="module")
def module_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server shared by a module's tests (as ``server``, started once): for tests that only
    read, or that add records they then find again by a marker of their own (a unique value), so
    no test depends on what another did."""
    server = ServerProcess(tmp_path_factory.mktemp("module_server") / "data", "--batch-max-age", "0.2")
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    """A real PostgreSQL (Debian's binaries) on loopback for the module; skipped where there is none."""
    from tests.postgres import Postgres

    pg = Postgres(free_port()).start()
    try:
        yield pg.url
    finally:
        pg.close()


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[callable]:  # type: ignore[valid-type]
    """Start Debian's rsyslogd with a config of its own (tests/rsyslog.py); stopped at the end."""
    from tests.rsyslog import rsyslog_starter

    with rsyslog_starter(tmp_path) as start:
        yield start
