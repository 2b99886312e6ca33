"""LogQL benchmark: latency of the queries Grafana sends, through a real server's Loki API.

Starts a server process from the logharbor sources given by ``--src`` (default: this checkout's),
loads ``--records`` records of the demo mix (ALB + NGINX + app over the last hour, as
bench/ingest.py makes them) through native ingest, waits until they are stored, then runs each
query ``--runs`` times through ``/loki/api/v1/query_range`` (HTTP, parse, compile, engine,
answer) and prints one JSON line per query: p50 / min in ms, the HTTP status and the size of the
answer. Running it against an older tree compares executors on the same data and queries:

    python bench/logql.py --records 100000 --runs 15
    git archive <commit> src | tar -x -C /tmp/before && python bench/logql.py --src /tmp/before/src

A query the older tree refuses prints its status and no timing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import demo_mix  # noqa: E402 - after the path tweak

QUERIES: dict[str, str] = {
    "log_line_filter": '{service="checkout"} |= "orders"',
    "log_json_field": '{source="nginx"} | json | http_status >= 500',
    "volume_by_level": 'sum by (level) (count_over_time({env="prod"} | drop __error__ [1m]))',
    "rate_5xx_by_service": 'sum by (service) (rate({env="prod"} | http_status >= 500 [5m]))',
    "topk_paths": 'topk(5, sum by (http_path) (count_over_time({source="nginx"}[1h])))',
    "p99_by_service": 'quantile_over_time(0.99, {source="app"} | unwrap http_duration_ms [1m]) by (service)',
    "avg_range_ne_step": 'avg_over_time({source="app"} | unwrap http_duration_ms [5m])',
    "error_ratio": 'sum(rate({source="app", level="ERROR"}[5m])) / sum(rate({source="app"}[5m]))',
}


def emit(**fields: object) -> None:
    print(orjson.dumps(fields).decode(), flush=True)


def start_server(src: Path, data: Path, port: int) -> tuple[subprocess.Popen[bytes], str]:
    env = dict(os.environ, PYTHONPATH=str(src), PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "logharbor.cli.main", "server", "--data-dir", str(data),
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--batch-max-age", "0.2"]
    log = open(data.parent / "server.log", "ab")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=data.parent)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log_text = (data.parent / "server.log").read_text(errors="replace")
            raise SystemExit(f"server exited: {log_text[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc, (data / "admin.key").read_text().strip()
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not become ready")


def stored_rows(client: httpx.Client) -> int:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("logharbor_store_rows "):
            return int(float(line.split()[1]))
    return -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the logharbor sources to run")
    args = parser.parse_args()
    lines = demo_mix(args.records)
    with tempfile.TemporaryDirectory(prefix="bench-logql-") as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        port = 18000 + os.getpid() % 2000
        proc, key = start_server(args.src.resolve(), data, port)
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300,
                              headers={"authorization": f"Bearer {key}"}) as client:
                for i in range(0, len(lines), 5000):
                    client.post("/api/v1/logs", content=b"\n".join(lines[i:i + 5000]),
                                headers={"content-type": "application/x-ndjson"}).raise_for_status()
                deadline = time.monotonic() + 300
                while stored_rows(client) < len(lines) and time.monotonic() < deadline:
                    time.sleep(0.5)
                end = time.time_ns()
                window = {"start": str(end - 3700 * 10**9), "end": str(end), "step": "60000ms",
                          "limit": "1000", "direction": "backward"}
                load = os.getloadavg()[0]
                emit(records=len(lines), stored=stored_rows(client), src=str(args.src),
                     load_avg_1m=round(load, 2))
                for name, query in QUERIES.items():
                    times: list[float] = []
                    status, size = 0, 0
                    for _ in range(args.runs):
                        t0 = time.perf_counter()
                        response = client.get("/loki/api/v1/query_range", params={"query": query, **window})
                        elapsed = (time.perf_counter() - t0) * 1000
                        status, size = response.status_code, len(response.content)
                        if status != 200:
                            break
                        times.append(elapsed)
                    if times:
                        emit(query=name, status=status, bytes=size, p50_ms=round(statistics.median(times), 1),
                             min_ms=round(min(times), 1), runs=len(times))
                    else:
                        emit(query=name, status=status, refused=response.text[:200])
                emit(load_avg_1m_after=round(os.getloadavg()[0], 2))
        finally:
            proc.terminate()
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
