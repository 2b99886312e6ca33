"""An AWS ALB stand-in for the lab: a reverse proxy that behaves and logs like the real one.

What it copies from AWS's documentation:
- ``X-Amzn-Trace-Id``: absent → it makes ``Root=1-<8 hex epoch seconds>-<24 hex random>``;
  present with a Root → it keeps the Root and puts its own ``Self=`` first; the value it sent on
  is what its log's ``trace_id`` field holds.
- ``X-Forwarded-For`` / ``-Proto`` / ``-Port`` to the target.
- The access log: one line per request in the AWS field order (written by
  :func:`logharbor.formats.alb.format_alb_line`), request/target/response processing times in
  seconds, collected and written every ``flush_s`` seconds as a gzip'd object under the AWS key
  layout ``AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/…log.gz``, the same layout
  an S3 bucket has.

Run: ``python -m logharbor.demo.alb --port 8000 --target http://127.0.0.1:8081 --log-dir alb``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import os
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from logharbor.formats.alb import format_alb_line

__all__ = ["ACCOUNT", "ELB", "REGION", "AlbLog", "alb_object_path", "build_alb", "next_trace_header"]

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ELB = "app/shop-alb/50dc6c495c0c9188"
TARGET_GROUP = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop-nginx/73e2d6bc24d8a067"
_HOP = frozenset({"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                  "trailers", "transfer-encoding", "upgrade", "host", "content-length"})


def alb_object_path(root: Path, when: datetime, seq: int, node_ip: str = "10.0.0.5") -> Path:
    """``root/AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/<name>.log.gz``."""
    name = (f"{ACCOUNT}_elasticloadbalancing_{REGION}_{ELB.replace('/', '.')}_"
            f"{when:%Y%m%dT%H%MZ}_{node_ip}_{seq:08x}.log.gz")
    return (root / "AWSLogs" / ACCOUNT / "elasticloadbalancing" / REGION
            / f"{when:%Y}" / f"{when:%m}" / f"{when:%d}" / name)


def next_trace_header(incoming: str | None, rng: random.Random, now: float) -> str:
    """The ``X-Amzn-Trace-Id`` the ALB forwards, as AWS documents it."""
    own = f"1-{int(now):08x}-{rng.getrandbits(96):024x}"
    if incoming and "Root=" in incoming:
        parts = [p for p in incoming.split(";") if p and not p.startswith("Self=")]
        return ";".join([f"Self={own}", *parts])
    return f"Root={own}"


class AlbLog:
    """Lines in memory, written as one gzip object every ``flush_s`` (atomically: tmp + rename)."""

    def __init__(self, root: Path, flush_s: float) -> None:
        self.root = root
        self.flush_s = flush_s
        self.lines: list[str] = []
        self.seq = 0

    def add(self, line: str) -> None:
        self.lines.append(line)

    def flush(self) -> Path | None:
        if not self.lines:
            return None
        lines, self.lines = self.lines, []
        path = alb_object_path(self.root, datetime.now(UTC), self.seq)
        self.seq += 1
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name("." + path.name + ".tmp")
        tmp.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
        os.replace(tmp, path)
        return path

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            self.flush()


def build_alb(target: str, log: AlbLog, *, seed: int | None = None) -> Starlette:
    """The proxy as an ASGI app forwarding everything to ``target``."""
    rng = random.Random(seed)
    client = httpx.AsyncClient(base_url=target, timeout=60)

    async def proxy(request: Request) -> Response:
        created = time.time_ns()
        t0 = time.perf_counter()
        peer = request.client.host if request.client else "0.0.0.0"  # noqa: S104 - a log value
        peer_port = request.client.port if request.client else 0
        header = next_trace_header(request.headers.get("x-amzn-trace-id"), rng, time.time())
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers["x-amzn-trace-id"] = header
        forwarded = request.headers.get("x-forwarded-for")
        headers["x-forwarded-for"] = f"{forwarded}, {peer}" if forwarded else peer
        headers["x-forwarded-proto"] = "https"
        headers["x-forwarded-port"] = "443"
        body = await request.body()
        t1 = time.perf_counter()
        status, target_status, sent, answer = 502, None, 0, b""
        target_time = -1.0
        try:
            upstream = await client.request(request.method, request.url.path, params=request.query_params,
                                             headers=headers, content=body)
            target_time = time.perf_counter() - t1
            status = target_status = upstream.status_code
            answer = upstream.content
            response = Response(answer, status_code=status, headers={
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP | {"content-encoding"}})
        except httpx.HTTPError:
            response = Response(b"502 Bad Gateway", status_code=502)
        t2 = time.perf_counter()
        sent = len(response.body) + 200
        query = ("?" + request.url.query) if request.url.query else ""
        log.add(format_alb_line({
            "type": "https", "time": time.time_ns(), "elb": ELB,
            "client:port": f"{peer}:{peer_port}", "target:port": target.split("//", 1)[-1],
            "request_processing_time": t1 - t0, "target_processing_time": target_time,
            "response_processing_time": (time.perf_counter() - t2) if target_status else -1,
            "elb_status_code": status, "target_status_code": target_status, "received_bytes": len(body) + 300,
            "sent_bytes": sent,
            "request": f"{request.method} https://shop.example.com:443{request.url.path}{query} HTTP/1.1",
            "user_agent": request.headers.get("user-agent"), "ssl_cipher": "ECDHE-RSA-AES128-GCM-SHA256",
            "ssl_protocol": "TLSv1.2", "target_group_arn": TARGET_GROUP, "trace_id": header,
            "domain_name": "shop.example.com", "matched_rule_priority": 0, "request_creation_time": created,
            "actions_executed": "forward", "target:port_list": target.split("//", 1)[-1],
            "target_status_code_list": str(target_status or "-"),
            "error_reason": None if target_status else "TargetConnectionError",
        }))
        return response

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        flusher = asyncio.create_task(log.run())
        try:
            yield
        finally:
            flusher.cancel()
            log.flush()
            await client.aclose()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", proxy, methods=methods)], lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    from logharbor.demo.apps import serve

    ap = argparse.ArgumentParser(description="the lab's ALB stand-in")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--fd", type=int, default=None, help="serve on this inherited listening socket")
    ap.add_argument("--target", required=True, help="where NGINX listens, e.g. http://127.0.0.1:8081")
    ap.add_argument("--log-dir", required=True, type=Path, help="where the AWSLogs/ tree is written")
    ap.add_argument("--flush", type=float, default=2.0, help="seconds between log objects (AWS: 300)")
    args = ap.parse_args(argv)
    app: Any = build_alb(args.target, AlbLog(args.log_dir, args.flush))
    serve(app, "127.0.0.1", args.port, args.fd, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
