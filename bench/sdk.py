"""Cost of one ``logger.info(…, extra=…)`` call: the sdk against stdlib, python-json-logger, structlog.

Each variant runs in a fresh interpreter (no logging state shared), logs ``--calls`` records
with the same message and four extra fields to a file in a temporary directory, and prints one
JSON line:

- ``caller_us``: wall time per call in the caller thread (what a request pays),
- ``caller_cpu_us``: the caller thread's CPU time per call,
- ``total_cpu_us``: process CPU time per record until everything is written (all threads),
- ``lines``: lines found in the output file (must equal ``calls``: nothing dropped).

Two modes: ``burst`` logs in one tight loop (the background thread competes for the GIL and the
queue grows), ``paced`` logs 20 lines then waits 1 ms, like a request waiting on I/O (only the
logging is timed).

    python bench/sdk.py --calls 100000 [--variants sdk,stdlib,...] [--modes burst,paced] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

VARIANTS = ("sdk", "sdk_caller_info", "sdk_sampled_out", "stdlib", "python_json_logger", "structlog")


PACE = 20  # calls per simulated request in "paced" mode …
PAUSE = 0.001  # … then this long waiting on I/O (the worker thread runs meanwhile)


def _run_variant(variant: str, mode: str, calls: int, path: str) -> dict[str, float | int | str]:
    import logging

    extra = {"order_id": "o-42", "user_id": "u-123", "amount": 12.5, "items": 3}
    finish = None
    if variant.startswith("sdk"):
        from logharbor import sdk

        handler = sdk.configure(
            service="bench", env="bench", version="1", output=path, queue_size=calls + 10,
            caller_info=variant == "sdk_caller_info",
            sample={"INFO": 0.0} if variant == "sdk_sampled_out" else None,
        )
        log = sdk.get_logger("bench")
        sdk.bind(tenant="t1")

        def call() -> None:
            log.info("payment accepted", extra=extra)

        def finish() -> None:
            handler.flush(600)
    elif variant in ("stdlib", "python_json_logger"):
        stream = open(path, "a")
        handler = logging.StreamHandler(stream)
        if variant == "python_json_logger":
            from pythonjsonlogger.json import JsonFormatter

            handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        else:
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        log = logging.getLogger("bench")

        def call() -> None:
            log.info("payment accepted", extra=extra)

        def finish() -> None:
            stream.flush()
    elif variant == "structlog":
        import structlog

        out = open(path, "a")
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                structlog.processors.JSONRenderer(),
            ],
            wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
            logger_factory=structlog.WriteLoggerFactory(file=out),
            cache_logger_on_first_use=True,
        )
        structlog.contextvars.bind_contextvars(tenant="t1")
        slog = structlog.get_logger("bench")

        def call() -> None:
            slog.info("payment accepted", **extra)

        def finish() -> None:
            out.flush()
    else:
        raise SystemExit(f"unknown variant {variant}")

    for _ in range(min(1000, calls)):  # warm caches (and the sdk's clock) outside the timing
        call()
    if finish:
        finish()
    warm = _count(path)
    cpu0 = time.process_time()
    wall = thread = 0.0
    if mode == "burst":
        thread0, t0 = time.thread_time(), time.perf_counter()
        for _ in range(calls):
            call()
        wall, thread = time.perf_counter() - t0, time.thread_time() - thread0
    else:  # a request logs a few lines, then waits on I/O: only the logging is timed
        for _ in range(calls // PACE):
            thread0, t0 = time.thread_time(), time.perf_counter()
            for _ in range(PACE):
                call()
            wall += time.perf_counter() - t0
            thread += time.thread_time() - thread0
            time.sleep(PAUSE)
    finish()
    cpu1 = time.process_time()
    done = calls // PACE * PACE if mode == "paced" else calls
    return {
        "bench": "sdk", "variant": variant, "mode": mode, "calls": done,
        "caller_us": round(wall / done * 1e6, 3),
        "caller_cpu_us": round(thread / done * 1e6, 3),
        "total_cpu_us": round((cpu1 - cpu0) / done * 1e6, 3),
        "lines": _count(path) - warm,
        "python": sys.version.split()[0],
    }


def _count(path: str) -> int:
    try:
        with open(path, "rb") as f:
            return sum(buf.count(b"\n") for buf in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--repeat", type=int, default=1, help="runs per variant; the best is printed")
    parser.add_argument("--modes", default="burst,paced",
                        help="burst: one tight loop; paced: 20 calls, then 1 ms of pretend I/O")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, mode, path = args.child.split(":", 2)
        print(json.dumps(_run_variant(variant, mode, args.calls, path)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        for mode in args.modes.split(","):
            for variant in args.variants.split(","):
                best: dict | None = None
                for i in range(args.repeat):
                    path = os.path.join(tmp, f"{variant}-{mode}-{i}.log")
                    done = subprocess.run(
                        [sys.executable, __file__, "--calls", str(args.calls),
                         "--child", f"{variant}:{mode}:{path}"],
                        capture_output=True, text=True, check=True,
                    )
                    result = json.loads(done.stdout.strip().splitlines()[-1])
                    if best is None or result["caller_us"] < best["caller_us"]:
                        best = result
                print(json.dumps(best), flush=True)


if __name__ == "__main__":
    main()
