"""Live tail and trace benchmark: tail latency under ingest load, and trace lookups at N records.

1. **trace**: fills a store with ``--trace-records`` rows of ALB → NGINX → app requests (three
   rows per request, generated inside the engine so 10M rows take seconds; a third of the app rows
   lack the trace id, so those lookups need the request-id fallback), merges the parts, starts a
   real server on it and times ``GET /api/v1/traces/{id}`` for random requests, by trace id and by
   NGINX request id: client-side p50/p99 over HTTP, and the server's own ``elapsed_ms``.
2. **tail**: on the same server, a separate process posts a background load of ``--load-rate``
   records/s (batches of ``--batch``) while ``--clients`` extra SSE clients (curl) follow other
   filters; one SSE client follows ``service:probe`` and a prober posts one probe record every
   ``--probe-interval`` s. Latency is from the probe's ingest acknowledgement (the POST answered
   after the WAL fsync) to the tail client reading it; ``send_*`` is from before the POST. The
   line also has the hub's own figures from ``/metrics`` over the stage (rounds, time per round)
   and the server's CPU per record posted (steadier than latencies on a loaded machine).
``--round-rows N`` first times one hub round in this process, on a store of its own: N rows of
the background load through the followers' filters and ``service:probe``, CPU µs per row (all
threads, best of ``--rounds``) — the figure that decides whether rounds keep up with ingest, and
steady on a loaded machine:

    python bench/tail.py --trace-records 0 --seconds 0 --round-rows 20000

3. **searchable**: during the same stage (same load, same followers), every
   ``--searchable-interval`` s a record with a new word is posted and ``POST /api/v1/query``
   polled every 20 ms until it finds it: ingest → searchable from the acknowledgement, p50/p99
   (0 turns it off).

    python bench/tail.py --trace-records 10000000 --load-rate 20000 --seconds 30 --clients 4

One JSON line per stage. Targets (DESIGN §6, issues 8 and 24): tail p99 ≤ 500 ms; ingest →
searchable p99 ≤ 1 s; trace p50 ≤ 50 ms at 10M. ``--batch-max-age`` is passed to the server only
when given (the server's default otherwise).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

NS = 1_000_000_000
#: what the extra followers watch: a mix of narrow and wide filters over the background load
FOLLOWER_QUERIES = ["level:ERROR", "service:checkout AND status:>=500", "handled AND user_id:u-1*",
                    "NOT level:DEBUG", "*"]
#: one request = three rows; everything is derived from the request number r
GENERATE_SQL = """
INSERT INTO {table} (tenant, timestamp, observed_timestamp, level, severity_number, service, source, host,
                     instance, env, version, message, trace_id, span_id, request_id, http_method,
                     http_path, http_status, http_duration_ms, http_client_ip, http_user_agent,
                     http_bytes_sent, http_referer, attributes)
SELECT '' AS tenant, ts AS timestamp, ts AS observed_timestamp,
       if(status >= 500, 'ERROR', if(status >= 400, 'WARN', 'INFO')) AS level,
       if(status >= 500, 17, if(status >= 400, 13, 9)) AS severity_number,
       ['shop-alb', 'nginx', 'checkout'][layer + 1] AS service,
       ['alb', 'nginx', 'app'][layer + 1] AS source,
       ['alb', 'ip-10-0-1-20', 'ip-10-0-1-5'][layer + 1] AS host,
       if(layer = 2, concat('checkout-', toString(9092 + r % 2)), '') AS instance,
       'prod' AS env, '1.4.2' AS version,
       multiIf(layer = 0, concat(method, ' https://shop.example.com:443', path, ' HTTP/1.1'),
               layer = 1, concat(method, ' ', path, ' HTTP/1.1'),
               concat(method, ' ', path, ' ', toString(status))) AS message,
       if(layer = 2 AND r % 3 = 1, '', lower(hex(sipHash128('trace', r)))) AS trace_id,
       '' AS span_id,
       if(layer = 0, '', lower(hex(sipHash128('request', r)))) AS request_id,
       method AS http_method, path AS http_path, status AS http_status,
       [app_ms + 0.7, app_ms + 0.4, app_ms][layer + 1] AS http_duration_ms,
       '203.0.113.7' AS http_client_ip, 'curl/8.5.0' AS http_user_agent,
       toUInt64(300 + r % 4000) AS http_bytes_sent, '' AS http_referer,
       multiIf(
           layer = 0, concat('{"request_processing_ms":0.1,"target_processing_ms":', toString(app_ms + 0.6),
                             ',"response_processing_ms":0.0}'),
           layer = 1, concat('{"upstream_response_time_ms":', toString(app_ms), '}'),
           concat('{"user_id":"u-', toString(r % 5000), '"}')) AS attributes
FROM (
    SELECT number, intDiv(number, 3) AS r, number % 3 AS layer,
           fromUnixTimestamp64Nano(toInt64({start_ns:Int64} + intDiv(number, 3) * {step_ns:Int64}
                                           + (number % 3) * 1000000),
                                   'UTC') AS ts,
           multiIf(r % 50 = 0, 503, r % 17 = 0, 404, 200) AS status,
           if(r % 4 = 0, 'POST', 'GET') AS method,
           ['/products', '/search?q=coffee', '/api/cart', '/api/orders'][r % 4 + 1] AS path,
           round(5 + (sipHash64('ms', r) % 4000) / 10.0, 1) AS app_ms
    FROM numbers({first:UInt64}, {count:UInt64})
)
"""


def emit(**fields: object) -> None:
    """One JSON line; with the machine's 1-minute load average, since other work skews latencies."""
    fields["loadavg_1m"] = round(os.getloadavg()[0], 2)
    print(orjson.dumps(fields).decode(), flush=True)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))], 2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fill_store(data_dir: Path, rows: int, lookups: int) -> list[tuple[str, str]]:
    """Generate ``rows`` rows in the server's store, merge them; (trace id, request id) samples."""
    from logharbor.server.engine.store.embedded import EmbeddedStore

    store = EmbeddedStore(data_dir / "store")
    store.open()
    t0 = time.perf_counter()
    if store.stats().rows >= rows:  # --data-dir of an earlier --keep run: reuse it
        rows = 0
    step = max(1, 24 * 3600 * NS // max(rows // 3, 1))  # one day of traffic
    start = time.time_ns() - 24 * 3600 * NS
    chunk = 3_000_000
    for first in range(0, rows, chunk):  # rows == 0: the store is already filled
        store.query(GENERATE_SQL.replace("{table}", store.table),
                    {"start_ns": start, "step_ns": step, "first": first, "count": min(chunk, rows - first)})
    loaded = time.perf_counter() - t0
    if rows:
        store.optimize()
    merged = time.perf_counter() - t0 - loaded
    stats = store.stats()
    samples = store.query(
        f"SELECT trace_id, request_id FROM {store.table} WHERE source = 'nginx' "  # noqa: S608 - quoted name
        "ORDER BY sipHash64(request_id) LIMIT {n:UInt32}", {"n": lookups})
    store.close()
    emit(stage="load", records=stats.rows, load_seconds=round(loaded, 2), merge_seconds=round(merged, 2),
         bytes_on_disk=stats.bytes_on_disk)
    return [(s["trace_id"], s["request_id"]) for s in samples]


def start_server(data_dir: Path, batch_max_age: float | None = None,
                 ) -> tuple[subprocess.Popen[bytes], str, str]:
    """A server on ``data_dir`` (bench/search.py starts its own too); ``batch_max_age`` None: the default."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(data_dir / "server.log", "ab")  # lives as long as the server
    age = [] if batch_max_age is None else ["--batch-max-age", str(batch_max_age)]
    proc = subprocess.Popen([sys.executable, "-m", "logharbor.cli.main", "server", "--data-dir",
                             str(data_dir), "--port", str(port), "--log-level", "warning", *age],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(1200):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url, (data_dir / "admin.key").read_text().strip()
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"server did not start; see {data_dir / 'server.log'}")


def bench_traces(url: str, key: str, samples: list[tuple[str, str]], records: int) -> None:
    headers = {"authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for by, index in (("trace_id", 0), ("request_id", 1)):
            client.get(f"/api/v1/traces/{samples[0][index]}")  # warm
            wall, server = [], []
            for sample in samples:
                t0 = time.perf_counter()
                response = client.get(f"/api/v1/traces/{sample[index]}")
                wall.append((time.perf_counter() - t0) * 1000)
                response.raise_for_status()
                answer = response.json()
                assert len(answer["records"]) == 3, answer["records"]
                server.append(answer["stats"]["elapsed_ms"])
            emit(stage="trace", by=by, records=records, lookups=len(samples), p50_ms=pct(wall, 0.5),
                 p99_ms=pct(wall, 0.99), server_p50_ms=pct(server, 0.5), server_p99_ms=pct(server, 0.99))


def load_records(count: int, seed: int = 5) -> list[dict[str, Any]]:
    """The background load's records (the tail stage posts these, the round stage filters them)."""
    rng = random.Random(seed)
    levels = ("INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR")
    return [{"service": rng.choice(("checkout", "search", "cart", "web")), "level": rng.choice(levels),
             "message": f"handled request {i} for user u-{rng.randrange(5000)}", "source": "app",
             "http": {"method": "GET", "path": "/products", "status": rng.choice((200, 200, 404, 503)),
                      "duration_ms": round(rng.uniform(1, 300), 1)}, "user_id": f"u-{rng.randrange(5000)}"}
            for i in range(count)]


def bench_round(data_dir: Path, rows: int, clients: int, rounds: int) -> None:
    """One hub round over ``rows`` rows, in this process: CPU per row (every thread's), best of ``rounds``."""
    from logharbor.server.engine.store.embedded import EmbeddedStore
    from logharbor.server.engine.store.rows import encode_record
    from logharbor.server.features.tail.filter import (
        BatchRunner,
        BatchStructure,
        compile_tail_filter,
        run_round,
    )

    now = time.time_ns()
    payload = b"\n".join(encode_record(r, received_ns=now) for r in load_records(rows))
    store = EmbeddedStore(data_dir / "round-store")
    store.open()
    try:
        structure = BatchStructure.from_columns(store.query(f"DESCRIBE TABLE {store.table}", {}))
        queries = [*FOLLOWER_QUERIES[:clients], "service:probe"]
        filters = [compile_tail_filter(q, prefix=f"f{i}_") for i, q in enumerate(queries)]
        work = [(filters, None, [True] * len(filters))]
        runner = BatchRunner(store)
        cpu, wall = [], []
        for _ in range(rounds):
            c0, w0 = time.process_time(), time.perf_counter()
            matched = run_round(runner, structure, payload, work)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
    finally:
        store.close()
    emit(stage="round", rows=rows, filters=queries, matches=[len(m) for m in matched[0]],
         cpu_us_per_row=round(min(cpu) / rows * 1e6, 2), wall_ms=round(min(wall) * 1000, 1))


def background_load(url: str, key: str, rate: int, batch: int, seconds: float, out: Any) -> None:
    """Post ``rate`` records/s for ``seconds`` (a separate process); reports records sent."""
    records = load_records(batch * 4)
    bodies = [b"\n".join(orjson.dumps(r) for r in records[i * batch:(i + 1) * batch]) for i in range(4)]
    sent = 0
    t0 = time.perf_counter()
    with httpx.Client(base_url=url, timeout=60, headers={"authorization": f"Bearer {key}",
                                                          "content-type": "application/x-ndjson"}) as c:
        while (elapsed := time.perf_counter() - t0) < seconds:
            ahead = sent / rate - elapsed
            if ahead > 0:
                time.sleep(ahead)
            response = c.post("/api/v1/logs", content=bodies[(sent // batch) % len(bodies)])
            if response.status_code == 429:
                time.sleep(0.2)
                continue
            response.raise_for_status()
            sent += batch
    out.put((sent, time.perf_counter() - t0))


def hub_metrics(url: str, key: str) -> dict[str, float]:
    """The tail hub's and the batcher's counters from ``/metrics`` (name → value, unlabelled)."""
    text = httpx.get(url + "/metrics", headers={"authorization": f"Bearer {key}"}, timeout=60).text
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name.startswith(("logharbor_tail_", "logharbor_batch_insert_seconds_", "logharbor_batch_rows")):
            out[name] = float(value)
    return out


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process so far, its threads included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_tail(url: str, key: str, args: argparse.Namespace, pid: int) -> None:
    headers = {"authorization": f"Bearer {key}"}
    # followers read with curl: real clients sit on other machines, so they should cost this box
    # as little as possible (the server's work per delivered record is what is measured)
    followers = [subprocess.Popen(["curl", "-sN", "-H", f"Authorization: Bearer {key}", "-H",
                                   "Accept: text/event-stream", f"{url}/api/v1/tail?{urlencode({'q': q})}"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for q in FOLLOWER_QUERIES[:args.clients]]
    received: dict[int, float] = {}
    dropped = [0]
    ready = threading.Event()

    def reader() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(None, connect=10)) as c, \
                c.stream("GET", "/api/v1/tail", params={"q": "service:probe"},
                         headers={"accept": "text/event-stream"}) as response:
            kind = ""
            for line in response.iter_lines():
                now = time.perf_counter()
                if line.startswith("event:"):
                    kind = line[6:].strip()
                    if kind == "subscribed":
                        ready.set()
                elif line.startswith("data:") and kind != "subscribed":
                    obj = orjson.loads(line[5:])
                    if kind == "dropped":
                        dropped[0] += obj["dropped"]
                    elif "probe" in obj:  # the searchable probe's records are service:probe too
                        received[int(obj["probe"])] = now
                elif not line:
                    kind = ""

    threading.Thread(target=reader, daemon=True).start()
    assert ready.wait(30), "the tail did not subscribe"
    time.sleep(1.0)  # let the followers subscribe too
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    load = mp.Process(target=background_load, args=(url, key, args.load_rate, args.batch, args.seconds, out))
    load.start()
    before = hub_metrics(url, key)
    cpu0 = cpu_seconds(pid)
    # bench/ingest.py's probe (this directory is on the path when a script here runs)
    from ingest import SearchableProbe

    searchable = SearchableProbe(url, key, args.searchable_interval) if args.searchable_interval > 0 else None
    sent_at: dict[int, tuple[float, float]] = {}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        t_end = time.perf_counter() + args.seconds
        i = 0
        while time.perf_counter() < t_end:
            body = orjson.dumps({"service": "probe", "level": "INFO", "message": f"probe {i}", "probe": i})
            t_send = time.perf_counter()
            response = client.post("/api/v1/logs", content=body)
            t_ack = time.perf_counter()
            if response.status_code == 200:
                sent_at[i] = (t_send, t_ack)
                i += 1
            time.sleep(args.probe_interval)
    sent, load_s = out.get(timeout=args.seconds + 120)
    load.join()
    found = searchable.stop() if searchable is not None else None
    server_cpu = cpu_seconds(pid) - cpu0  # steadier than latencies on a loaded machine
    hub = {k: v - before.get(k, 0.0) for k, v in hub_metrics(url, key).items()}
    deadline = time.perf_counter() + 10
    while len(received) < len(sent_at) and time.perf_counter() < deadline:
        time.sleep(0.1)
    for proc in followers:
        proc.terminate()
        proc.wait(timeout=30)
    ack = [(received[i] - t_ack) * 1000 for i, (_, t_ack) in sent_at.items() if i in received]
    send = [(received[i] - t_send) * 1000 for i, (t_send, _) in sent_at.items() if i in received]
    emit(stage="tail", load_records_per_s=round(sent / load_s), seconds=args.seconds,
         clients=1 + args.clients,
         probes=len(sent_at), received=len(ack), dropped=dropped[0], p50_ms=pct(ack, 0.5),
         p99_ms=pct(ack, 0.99), max_ms=pct(ack, 1.0), send_p50_ms=pct(send, 0.5), send_p99_ms=pct(send, 0.99),
         server_cpu_us_per_record=round(server_cpu / max(1, sent + len(sent_at)) * 1e6, 2),
         hub_rounds=round(hub.get("logharbor_tail_rounds_total", 0)),
         hub_round_ms_mean=round(1000 * hub.get("logharbor_tail_round_seconds_total", 0)
                                 / max(1.0, hub.get("logharbor_tail_rounds_total", 0)), 1),
         hub_busy_share=round(hub.get("logharbor_tail_round_seconds_total", 0) / load_s, 3),
         hub_skipped=round(hub.get("logharbor_tail_skipped_records_total", 0)),
         batches=round(hub.get("logharbor_batch_insert_seconds_count", 0)),
         batch_insert_ms_mean=round(1000 * hub.get("logharbor_batch_insert_seconds_sum", 0)
                                    / max(1.0, hub.get("logharbor_batch_insert_seconds_count", 0)), 1))
    if found is not None:
        emit(stage="searchable", load_records_per_s=round(sent / load_s), seconds=args.seconds,
             batch_max_age=args.batch_max_age, **{k.removeprefix("searchable_"): v for k, v in found.items()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trace-records", type=int, default=1_000_000, help="rows in the store (0: skip)")
    ap.add_argument("--lookups", type=int, default=200, help="trace lookups to time, per id kind")
    ap.add_argument("--load-rate", type=int, default=20_000, help="background ingest, records/s")
    ap.add_argument("--batch", type=int, default=1000, help="records per background POST")
    ap.add_argument("--seconds", type=float, default=30.0, help="how long the tail stage runs")
    ap.add_argument("--clients", type=int, default=4, help="extra `logharbor tail` followers (0-5)")
    ap.add_argument("--probe-interval", type=float, default=0.05)
    ap.add_argument("--searchable-interval", type=float, default=0.25,
                    help="s between ingest → searchable probes during the tail stage (0: none)")
    ap.add_argument("--batch-max-age", type=float, help="the server's --batch-max-age (default: its own)")
    ap.add_argument("--round-rows", type=int, default=0, help="time one hub round over this many rows first")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of --round-rows (best is reported)")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--data-dir", type=Path, help="use (or reuse, if filled) this data directory")
    args = ap.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="lh-bench-tail-"))
    args.keep = args.keep or args.data_dir is not None
    try:
        if args.round_rows:
            bench_round(data_dir, args.round_rows, args.clients, args.rounds)
        samples = fill_store(data_dir, args.trace_records, args.lookups) if args.trace_records else []
        if not samples and args.seconds <= 0:
            return
        server, url, key = start_server(data_dir, args.batch_max_age)
        try:
            if samples:
                bench_traces(url, key, samples, args.trace_records)
            if args.seconds > 0:
                bench_tail(url, key, args, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=120)
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
