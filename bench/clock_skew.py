"""How long a clock-offset estimate takes (issue 28 part 2), and how far off it is.

Generates ``--requests`` requests of the reference stack (ALB, NGINX, app; one app instance
``--skew-ms`` ahead) through the real parsers, then for each size:

- ``solve``: :func:`estimate_offsets` over the canonical records in process (CPU time, best of 3);
- ``job``: what the leader's job does, on an embedded store holding the records: ``read_s`` the
  read alone, ``wall_s`` the job (read, decode, solve), ``cpu_s_both`` this process's CPU for
  both; unless ``--no-store``.

Each line also gives the estimate's error for the skewed instance and the uncertainty.

    python bench/clock_skew.py --requests 1000 5000 20000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import orjson

from logharbor.demo.lab import Shipper, collect
from logharbor.demo.traffic import TrafficGenerator
from logharbor.record import normalize, to_wire
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_record
from logharbor.server.features.traces.clock import ClockOffsets
from logharbor.server.features.traces.skew import estimate_offsets


def records(n: int, skew_ms: float, seed: int) -> list[dict]:  # type: ignore[type-arg]
    gen = TrafficGenerator(seed=seed, clock_offsets_ms={"checkout-9093": skew_ms})
    span_ns = 14 * 60 * 10**9  # inside the job's 15-minute window
    stories = gen.stories(n, start_ns=time.time_ns() - span_ns - 30 * 10**9, spacing_ns=span_ns // n)
    shipper = Shipper("http://127.0.0.1:1")
    try:
        return [normalize(w) for w in shipper.records(collect(stories))]
    finally:
        shipper.close()


def skewed(clocks: list[dict], skew_ms: float) -> tuple[float | None, float | None]:  # type: ignore[type-arg]
    c = next((c for c in clocks if c["clock"] == "checkout-9093"), None)
    if c is None or c["offset_ms"] is None:
        return None, None
    return round(c["offset_ms"] - skew_ms, 3), c["uncertainty_ms"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--skew-ms", type=float, default=25.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-store", action="store_true", help="only the in-process solve")
    args = ap.parse_args()
    for n in args.requests:
        recs = records(n, args.skew_ms, args.seed)
        best = float("inf")
        for _ in range(3):
            began = time.process_time()
            est = estimate_offsets(recs).as_dict()
            best = min(best, time.process_time() - began)
        error, uncertainty = skewed(est["clocks"], args.skew_ms)
        print(orjson.dumps({"step": "solve", "requests": n, "records": len(recs), "cpu_s": round(best, 4),
                            "error_ms": error, "uncertainty_ms": uncertainty,
                            "load": round(os.getloadavg()[0], 1)}).decode(), flush=True)
        if args.no_store:
            continue
        with tempfile.TemporaryDirectory(prefix="clock-bench-") as tmp:
            store = EmbeddedStore(tmp, table="logs")
            store.open()
            try:
                rows = b"\n".join(encode_record(to_wire(r)) for r in recs) + b"\n"
                store.insert(rows, dedup_token=f"bench-{n}")
                clock = ClockOffsets(store)
                clock.ensure()
                now = time.time_ns()
                began = time.perf_counter()
                cpu = time.process_time()
                read = clock.records(now - clock.window_ns, now)
                read_s = time.perf_counter() - began
                rows_out = clock.estimate(now)  # reads again and solves: the job's own path
                wall = time.perf_counter() - began - read_s
                cpu = time.process_time() - cpu
                error, uncertainty = skewed(rows_out, args.skew_ms)
                print(orjson.dumps({"step": "job", "requests": n, "rows_read": len(read),
                                    "read_s": round(read_s, 3), "wall_s": round(wall, 3),
                                    "cpu_s_both": round(cpu, 3), "error_ms": error,
                                    "uncertainty_ms": uncertainty,
                                    "load": round(os.getloadavg()[0], 1)}).decode(), flush=True)
            finally:
                store.close()


if __name__ == "__main__":
    main()
