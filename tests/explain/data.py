"""Generated records for the explain tests and the benchmark: web traffic over two windows of 30
minutes, optionally with a planted cause in the second (one version on one host returns 502 for
one path)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

MINUTE_NS = 60 * 10**9
WINDOW_NS = 30 * MINUTE_NS
HOSTS = [f"web-{i}" for i in range(1, 9)]
PATHS = ["/api/orders", "/api/pay", "/api/cart", "/api/items", "/health"]
REGIONS = ["eu-west-1", "us-east-1", "ap-south-1"]
#: the planted cause: these records of the focus window fail with 502
CAUSE = {"version": "1.4.3", "host": "web-7", "http.path": "/api/pay"}


def records(seed: int, start_ns: int, per_window: int, *, planted: bool) -> Iterator[dict[str, Any]]:
    """``per_window`` records in [start, start + 30m) (the baseline) and as many in the next 30
    minutes (the focus), in time order; with ``planted`` the focus has the cause above."""
    rng = random.Random(seed)
    for window in (0, 1):
        for i in range(per_window):
            ts = start_ns + window * WINDOW_NS + i * WINDOW_NS // per_window
            host = rng.choice(HOSTS)
            version = "1.4.3" if rng.random() < 0.3 else "1.4.2"
            path = rng.choice(PATHS)
            status = 500 if rng.random() < 0.005 else 404 if rng.random() < 0.03 else 200
            duration = rng.lognormvariate(3.0, 0.5)
            if planted and window == 1 and host == CAUSE["host"] and version == CAUSE["version"] \
                    and path == CAUSE["http.path"]:
                status, duration = 502, duration * 4
            level = "ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO"
            yield {"timestamp": ts, "service": "checkout", "host": host, "version": version, "level": level,
                   "message": f"{path} answered {status}" if status != 502 else "upstream returned 502",
                   "source": "app", "request_id": f"req-{seed}-{window}-{i:07d}",
                   "http": {"method": "POST" if path == "/api/pay" else "GET", "path": path, "status": status,
                            "duration_ms": round(duration, 3)},
                   "user_id": f"u-{rng.randrange(5000)}", "region": rng.choice(REGIONS)}
