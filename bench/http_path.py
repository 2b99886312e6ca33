"""What the HTTP app costs per ingest request before the endpoint's own work: middleware + routing.

Runs the server's real ASGI app (``create_app``) in this process, without its runtime (no store,
no WAL: auth off, so no key store is needed), and sends it requests that its ingest endpoints
answer at once (a content type they do not take: a 415 from ``read_body``, the first thing each
does), so the CPU per request is the middleware (limits, compression, auth), the routing and the
error answer. Rounds alternate the router's own scan of every route with the hot-route lookup
(server/ingest/hotroutes.py); CPU is ``time.process_time``:

    python bench/http_path.py --requests 3000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from logharbor.server.app import create_app  # noqa: E402 - after the path tweak
from logharbor.server.config import ServerConfig  # noqa: E402

PATHS = ("/api/v1/logs", "/loki/api/v1/push", "/v1/logs")


def emit(**fields: object) -> None:
    print(orjson.dumps(fields).decode(), flush=True)


async def _request(app: Any, path: str) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"content-type", b"text/xml"), (b"content-length", b"2")],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8080)}
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _run(app: Any, path: str, n: int) -> float:
    t0 = time.process_time()
    for _ in range(n):
        status = await _request(app, path)
    if status != 415:
        raise SystemExit(f"{path}: expected the endpoint's 415, got {status}")
    return time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lh-bench-http-") as tmp:
        app = create_app(ServerConfig(data_dir=Path(tmp), auth=False))
        asyncio.run(_request(app, PATHS[0]))  # the middleware stack is built on the first request
        hot = app.router.middleware_stack
        scan = getattr(hot, "app", hot)  # the router's own scan, under the hot routes
        best: dict[tuple[str, str], float] = {}
        load = os.getloadavg()[0]
        for r in range(args.rounds):
            order = (("scan", scan), ("hot", hot))
            for kind, stack in order if r % 2 == 0 else order[::-1]:
                app.router.middleware_stack = stack
                for path in PATHS:
                    cpu = asyncio.run(_run(app, path, args.requests))
                    best[(kind, path)] = min(best.get((kind, path), float("inf")), cpu)
        app.router.middleware_stack = hot
        for path in PATHS:
            s, h = best[("scan", path)], best[("hot", path)]
            emit(bench="http_path", path=path, requests=args.requests, rounds=args.rounds,
                 scan_us_per_request=round(s / args.requests * 1e6, 1),
                 hot_us_per_request=round(h / args.requests * 1e6, 1),
                 saved_us_per_record_at_2000=round((s - h) / args.requests * 1e6 / 2000, 3),
                 load_before=round(load, 2), load_after=round(os.getloadavg()[0], 2))


if __name__ == "__main__":
    main()
