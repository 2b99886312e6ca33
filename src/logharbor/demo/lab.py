"""The demo lab: a server on a temporary data directory fed with the reference stack's logs.

It writes each layer's logs the way that layer would (ALB objects gzip'd under the AWS key
layout, NGINX's access log, the apps' JSON lines, one file per instance), then ships every line
through the parsers into the server's native ingest, first a backlog covering the last half hour
and then live traffic until stopped.
"""

from __future__ import annotations

import gzip
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import zstandard

from logharbor.demo.alb import alb_object_path
from logharbor.demo.traffic import NGINX_FORMAT, TrafficGenerator, render
from logharbor.formats.base import build_parser
from logharbor.record import normalize, to_wire
from logharbor.types import WireRecord

__all__ = ["DemoLab", "LogFiles", "Shipper"]

#: what the ALB and NGINX lines do not say about themselves (an agent's `enrich` step adds these)
LAYER_DEFAULTS = {
    "alb": {"service": "shop-alb", "source": "alb", "env": "prod"},
    "nginx": {"service": "nginx", "source": "nginx", "host": "ip-10-0-1-20", "env": "prod"},
}


@dataclass
class LogFiles:
    """Where each layer's logs land, laid out as on real machines and in S3."""

    root: Path
    alb_objects: list[Path] = field(default_factory=list)

    @property
    def nginx_access(self) -> Path:
        return self.root / "nginx" / "access.log"

    def app_log(self, port: int) -> Path:
        return self.root / "app" / f"checkout-{port}.log"

    def alb_object(self, when: datetime, seq: int) -> Path:
        return alb_object_path(self.root / "alb", when, seq)

    def write(self, lines: dict[str, list[Any]], alb_seq: int) -> None:
        """Append one slice of traffic to the files (ALB lines become one gzip'd object)."""
        self.nginx_access.parent.mkdir(parents=True, exist_ok=True)
        with open(self.nginx_access, "a") as fh:
            fh.writelines(line + "\n" for line in lines["nginx"])
        by_port: dict[int, list[bytes]] = {}
        for rec in lines["app"]:
            by_port.setdefault(int(rec["instance"].rsplit("-", 1)[1]), []).append(orjson.dumps(rec))
        for port, recs in by_port.items():
            path = self.app_log(port)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "ab") as fh:
                fh.write(b"\n".join(recs) + b"\n")
        if lines["alb"]:
            obj = self.alb_object(datetime.now(UTC), alb_seq)
            obj.parent.mkdir(parents=True, exist_ok=True)
            obj.write_bytes(gzip.compress("\n".join(lines["alb"]).encode() + b"\n"))
            self.alb_objects.append(obj)


class Shipper:
    """Parses each layer's lines and posts them to the server's native ingest (NDJSON + zstd)."""

    def __init__(self, url: str, *, api_key: str | None = None) -> None:
        headers = {"content-type": "application/x-ndjson", "content-encoding": "zstd"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self.client = httpx.Client(base_url=url, headers=headers, timeout=30)
        self.parsers = {"alb": build_parser("alb"), "nginx": build_parser("nginx", format=NGINX_FORMAT)}
        self.zstd = zstandard.ZstdCompressor(level=3)
        self.sent = 0

    def records(self, lines: dict[str, list[Any]]) -> Iterable[WireRecord]:
        now = time.time_ns()
        for layer in ("alb", "nginx"):
            parser = self.parsers[layer]
            for line in lines[layer]:
                parsed = parser.parse(line)
                record = to_wire(normalize(parsed, received_ns=now, defaults=LAYER_DEFAULTS[layer]))
                del record["observed_timestamp"]  # the server's receive time: the agent sends none
                yield record
        yield from lines["app"]

    def ship(self, lines: dict[str, list[Any]]) -> int:
        body = b"\n".join(orjson.dumps(r) for r in self.records(lines))
        for attempt in range(10):
            response = self.client.post("/api/v1/logs", content=self.zstd.compress(body))
            if response.status_code == 429:
                time.sleep(float(response.headers.get("retry-after", "1")) * (attempt + 1))
                continue
            response.raise_for_status()
            accepted = int(response.json()["accepted"])
            self.sent += accepted
            return accepted
        raise RuntimeError("the server stayed busy (429) for too long")

    def close(self) -> None:
        self.client.close()


def collect(stories: Iterable[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {"alb": [], "nginx": [], "app": []}
    for story in stories:
        for layer, lines in render(story).items():
            out[layer].extend(lines)
    return out


class DemoLab:
    """Runs a server process and feeds it; :meth:`run` blocks until Ctrl-C."""

    def __init__(self, data_dir: Path, port: int, *, backlog_requests: int = 6000,
                 live_rate: float = 20.0, seed: int | None = None,
                 clock_offsets_ms: dict[str, float] | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.backlog_requests = backlog_requests
        self.live_rate = live_rate
        self.traffic = TrafficGenerator(seed, clock_offsets_ms=clock_offsets_ms)
        self.files = LogFiles(data_dir / "logs")
        self.server: subprocess.Popen[bytes] | None = None
        self.failed_trace: str | None = None  # a shipped request that ended in a 5xx
        self.api_key: str | None = None  # the admin key the server made on its first start

    def start_server(self) -> None:
        log = open(self.data_dir / "server.log", "ab")  # lives as long as the server
        self.server = subprocess.Popen(
            [sys.executable, "-m", "logharbor.cli.main", "server",
             "--data-dir", str(self.data_dir / "server"), "--port", str(self.port), "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.server.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.data_dir / 'server.log'}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    key_file = self.data_dir / "server" / "admin.key"
                    self.api_key = key_file.read_text().strip() if key_file.exists() else None
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the server did not become ready in 60 s")

    def ship_backlog(self, shipper: Shipper, progress: Callable[[int], None] | None = None) -> int:
        """The last 30 minutes of traffic, in slices of 500 requests."""
        start = time.time_ns() - 30 * 60 * 1_000_000_000
        spacing = (30 * 60 * 1_000_000_000) // max(self.backlog_requests, 1)
        stories = self.traffic.stories(self.backlog_requests, start_ns=start, spacing_ns=spacing)
        total, seq, batch = 0, 0, []
        for story in stories:
            batch.append(story)
            if len(batch) == 500:
                total += self._slice(shipper, batch, seq)
                seq += 1
                batch = []
                if progress:
                    progress(500)
        if batch:
            total += self._slice(shipper, batch, seq)
            if progress:
                progress(len(batch))
        return total

    def _slice(self, shipper: Shipper, stories: list[Any], seq: int) -> int:
        for story in stories:
            if story.status >= 500 and len(story.app_records) > 1:
                self.failed_trace = story.trace_id
        lines = collect(stories)
        self.files.write(lines, seq)
        return shipper.ship(lines)

    def live(self, shipper: Shipper, stop: Callable[[], bool]) -> None:
        """About ``live_rate`` requests a second, shipped once a second."""
        seq = 10_000
        while not stop():
            began = time.monotonic()
            n = max(1, int(self.traffic.rng.gauss(self.live_rate, self.live_rate / 5)))
            stories = [self.traffic.story(time.time_ns() - int(i * 1e9 / n)) for i in range(n)]
            self._slice(shipper, stories, seq)
            seq += 1
            time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))

    def stop_server(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            try:
                self.server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.server.kill()


def default_data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="logharbor-demo-"))
