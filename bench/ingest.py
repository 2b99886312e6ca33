"""Ingest benchmark: records/s and MB/s with fsync'd acknowledgement, latency, storage ratio.

Generates N records of the demo mix (ALB + NGINX lines through the parsers, app JSON records),
starts a real server on a temporary data directory, posts the records as NDJSON batches from C
client processes, then reports one JSON line per figure set:

    python bench/ingest.py --records 1000000 --batch 2000 --clients 4

Storage is measured after the batcher drained and the store merged its parts (steady state).

``--in-process`` starts no server: it times, in this process, the CPU each record costs in the
steps of the native decoder (``orjson.loads``, ``record.normalize``, the store-row encoding, and
the whole line loop ``decode_ndjson`` on bodies of ``--batch`` lines), best of ``--rounds``, with
``time.process_time`` (steadier than wall clock on a shared machine):

    python bench/ingest.py --in-process --records 50000 --rounds 5

It also times the whole decode loop of each decoder side by side (``decode python`` and, when it is
built, ``decode compiled``: logharbor.server.ingest.decoder), alternating rounds.

``--decoders`` runs the server once per variant on the same bodies, one after the other, so the
figures are side by side in one run: ``compiled:2`` is the compiled decoder with 2 worker processes,
``python:0`` the Python decoder in threads of the server process (``--ingest-workers 0``).
Each ingest line has the server's CPU µs per record (the server's process tree: HTTP, decode,
workers, WAL and the engine, while the clients post) and the load average before and after:

    python bench/ingest.py --records 100000 --decoders compiled:2,compiled:0,python:2

``--variant name:key=value,…`` (two or more) compares batcher and MergeTree settings side by side
(issue #24 item 4): each variant is a fresh server given ``LOGHARBOR_<KEY>=value`` (a server
setting) or, for ``table.<setting>=n``, a logs table made with that MergeTree setting before it
starts; the same bodies are posted, ``--rounds`` times with the order reversed every other round.
Per variant: records/s, server CPU per record, the CPU of the engine's merge threads
(``MergeMutate``, read from /proc until merges go quiet) per record, active parts left, and
ingest → searchable (a probe record with a new word every 250 ms, from its acknowledgement until
``POST /api/v1/query`` finds it):

    python bench/ingest.py --records 100000 --rounds 2 --variant shipped: \
        --variant wide_100MB:table.min_bytes_for_wide_part=104857600 --variant age_0.5s:batch_max_age_s=0.5

``--compare-tree DIR`` runs the same load against a server started from another source tree's code
(``PYTHONPATH=DIR/src``, e.g. another branch exported with ``git archive``), alternating with this
tree's server (or with the other ``--compare-tree`` trees when there are two or more); the same
figures per tree, server CPU being the process tree's (decode workers included). Build the compiled
decoder in each tree first (``scripts/build_native.py``) or neither: the ``decoder`` field says
which one each server ran:

    python bench/ingest.py --records 200000 --rounds 4 --compare-tree /tmp/lh-main --compare-tree /tmp/lh-attr
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from logharbor.demo.lab import Shipper, collect  # noqa: E402 - after the path tweak
from logharbor.demo.traffic import TrafficGenerator  # noqa: E402


def emit(**fields: object) -> None:
    print(orjson.dumps(fields).decode(), flush=True)


def demo_mix(n: int, seed: int = 7) -> list[bytes]:
    """``n`` NDJSON lines of the demo mix, in the wire form an agent would send."""
    gen = TrafficGenerator(seed)
    shipper = Shipper("http://127.0.0.1:9")  # its parsers only: nothing is sent
    out: list[bytes] = []
    start = time.time_ns() - 3600 * 1_000_000_000
    spacing = max(1, 3600 * 1_000_000_000 // max(n // 3, 1))
    stories = gen.stories(n, start_ns=start, spacing_ns=spacing)
    while len(out) < n:
        chunk = [next(stories) for _ in range(200)]
        out.extend(orjson.dumps(r) for r in shipper.records(collect(chunk)))
    return out[:n]


def _client(url: str, key: str, bodies: list[bytes], queue: mp.Queue) -> None:  # type: ignore[type-arg]
    latencies = []
    headers = {"content-type": "application/x-ndjson", "authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=120, headers=headers) as c:
        for body in bodies:
            while True:
                t0 = time.perf_counter()
                r = c.post("/api/v1/logs", content=body)
                if r.status_code == 429:
                    time.sleep(float(r.headers.get("retry-after", "1")))
                    continue
                r.raise_for_status()
                latencies.append(time.perf_counter() - t0)
                break
    queue.put(latencies)


class WalDiskSampler:
    """The bytes of the WAL's segment files, sampled every 50 ms: how closely they follow the backlog."""

    def __init__(self, wal_dir: Path) -> None:
        self.wal_dir = wal_dir
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def now(self) -> int:
        total = 0
        for segment in self.wal_dir.glob("*.wal"):
            try:
                total += segment.stat().st_size
            except FileNotFoundError:
                pass  # released while we looked
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.now())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def store_rows(url: str, key: str) -> int:
    metrics = httpx.get(url + "/metrics", timeout=30, headers={"authorization": f"Bearer {key}"}).text
    for line in metrics.splitlines():
        if line.startswith("logharbor_store_rows "):
            return int(float(line.split()[1]))
    return -1


def batcher_figures(url: str, key: str) -> dict[str, float]:
    """The batcher's store inserts from /metrics: batches, rows, seconds, and µs per stored row
    (what a store insert costs the batcher thread, verification included)."""
    metrics = httpx.get(url + "/metrics", timeout=30, headers={"authorization": f"Bearer {key}"}).text
    values: dict[str, float] = {}
    for line in metrics.splitlines():
        for name in ("logharbor_batch_insert_seconds_sum", "logharbor_batch_insert_seconds_count",
                     "logharbor_batch_rows_total"):
            if line.startswith(name + " "):
                values[name] = float(line.split()[1])
    seconds = values.get("logharbor_batch_insert_seconds_sum", 0.0)
    rows = values.get("logharbor_batch_rows_total", 0.0)
    return {"store_batches": values.get("logharbor_batch_insert_seconds_count", 0.0),
            "store_insert_seconds": round(seconds, 3),
            "store_us_per_row": round(seconds / rows * 1e6, 2) if rows else 0.0}


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and every live process below it (the worker pool)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone while we looked
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        ticks[child] = int(fields[11]) + int(fields[12])  # utime, stime
    tree, todo = {pid}, [pid]
    while todo:
        parent = todo.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                todo.append(child)
    return sum(ticks.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return -1.0


def in_process(records: int, batch: int, rounds: int) -> None:
    """CPU µs per record of each step of the native decoder, on the demo mix (no server)."""
    from logharbor.record import normalize
    from logharbor.server.engine.store import rows
    from logharbor.server.ingest.base import RecordLimits
    from logharbor.server.ingest.native import decode_ndjson

    lines = demo_mix(records)
    bodies = [b"\n".join(lines[i:i + batch]) for i in range(0, len(lines), batch)]
    received = time.time_ns()
    limits = RecordLimits()
    objs = [orjson.loads(line) for line in lines]
    normalized = [normalize(obj, received_ns=received) for obj in objs]

    def loads() -> None:
        for line in lines:
            orjson.loads(line)

    def normalize_all() -> None:
        for obj in objs:
            normalize(obj, received_ns=received)

    def encode_rows() -> None:
        for record in normalized:
            rows.encode_row(record)

    def decode_bodies() -> None:
        for body in bodies:
            decode_ndjson(body, received_ns=received, limits=limits)

    steps = [("orjson.loads", loads), ("normalize", normalize_all), ("encode_row", encode_rows)]
    encode_record = getattr(rows, "encode_record", None)  # the one-pass encoder, where there is one
    if encode_record is not None:
        def encode_records() -> None:
            for obj in objs:
                encode_record(obj, received_ns=received)

        steps.append(("encode_record", encode_records))
    steps.append(("decode_ndjson", decode_bodies))
    decoders_side_by_side(bodies, len(lines), rounds)
    try:  # the exactness work inside the steps above (issue #20), where this version has it
        from logharbor.exactjson import lossy_lines
        from logharbor.server.engine.store.attributes import split
    except ImportError:
        pass
    else:
        attribute_sets = [record["attributes"] for record in normalized]

        def split_all() -> None:  # which attributes need the exact copy (in encode_row/_record)
            for attributes in attribute_sets:
                split(attributes)

        def scan_bodies() -> None:  # the lines that may hold an integer beyond 64 bits (decode)
            for body in bodies:
                lossy_lines(body)

        steps += [("of which: exact-copy check", split_all), ("of which: big-integer scan", scan_bodies)]
    try:  # a scoped key's write check on the rows (issue: writer scopes), where this version has it
        from logharbor.server.ingest.writescope import WriteScope, write_scope
        from logharbor.server.scopes import Scope
    except ImportError:
        pass
    else:
        payloads = [b"\n".join(decode_ndjson(body, received_ns=received, limits=limits, tenant="acme")[0])
                    for body in bodies]  # as a key of tenant acme writes them
        counts = [payload.count(b"\n") + 1 for payload in payloads]
        services = sorted({record["service"] for record in normalized})
        checks = {"scope check: key without services": None,
                  "scope check: key with services": WriteScope(Scope.of("acme", services))}
        for name, check in checks.items():
            assert check is None or not check.sift_payload(payloads[0], counts[0])[2]  # all kept: usual

            def sift(check: WriteScope | None = check) -> None:
                for payload, count in zip(payloads, counts, strict=True):
                    scope = check if check is not None else write_scope(None)
                    if scope is not None:
                        scope.sift_payload(payload, count)

            steps.append((name, sift))
    for step, fn in steps:
        fn()  # warm: caches filled as a running server's are
        best = min(_cpu_seconds(fn) for _ in range(rounds))
        emit(stage="in_process", step=step, records=len(lines), rounds=rounds,
             us_per_record=round(best / len(lines) * 1e6, 2))
    if "split_all" in locals():
        exactness_ab(bodies, len(lines), rounds)


def decoders_side_by_side(bodies: list[bytes], records: int, rounds: int) -> None:
    """The decode loop of the Python path and of the compiled one (when built), alternating rounds."""
    from logharbor.server.ingest import decoder, ndjson
    from logharbor.server.ingest.base import RecordLimits

    paths = {"python": ndjson.decode_ndjson_payload}
    if decoder.COMPILED is not None:
        paths["compiled"] = decoder.COMPILED["ndjson"].decode_ndjson_payload
    if getattr(decoder, "ROWC", None) is not None:  # the C normaliser (GIL released), where built
        paths["rowc"] = decoder.ROWC.decode
    received, limits = time.time_ns(), RecordLimits()
    outputs = [[fn(body, received, limits, None, None) for body in bodies] for fn in paths.values()]
    if any(out != outputs[0] for out in outputs):
        raise SystemExit("the decoders differ on the demo mix: tests/record/test_differential.py")
    best = dict.fromkeys(paths, float("inf"))
    load = load_average()
    for _ in range(rounds):
        for name, fn in paths.items():
            best[name] = min(best[name], _cpu_seconds(lambda fn=fn: [fn(b, received, limits, None, None)
                                                                     for b in bodies]))
    figures = {f"{name}_us_per_record": round(t / records * 1e6, 2) for name, t in best.items()}
    if "compiled" in best:
        figures["speedup"] = round(best["python"] / best["compiled"], 2)
    if "rowc" in best:
        figures["rowc_speedup"] = round(best["python"] / best["rowc"], 2)
        rowc = decoder.COMPILED["rowc"]
        taken = sum(rowc.decode(body, received, limits.max_line_bytes, limits.max_fields,
                                limits.max_field_bytes, limits.max_depth, None, True)[1] for body in bodies)
        figures["rowc_fast_path_share"] = round(taken / records, 4)  # lines the C path wrote itself
    emit(stage="in_process", step="decode python vs compiled", records=records, rounds=rounds,
         decoder=decoder.PATH, reason=decoder.REASON, load_before=load, load_after=load_average(), **figures)
    handoff_cost(bodies, records, rounds)


def handoff_cost(bodies: list[bytes], records: int, rounds: int) -> None:
    """What decoding in a worker process costs the server process itself: its CPU per record while
    a pool of one worker decodes the bodies (pickling each body out and the rows back, the pipe),
    against decoding in its own thread (all of the decode, under its GIL). CPU time, so the
    machine's load does not enter; the worker's CPU is read from /proc."""
    from concurrent.futures import ProcessPoolExecutor

    from logharbor.server.ingest import decoder
    from logharbor.server.ingest.base import RecordLimits

    received, limits = time.time_ns(), RecordLimits()
    fn = decoder.decode_ndjson_payload
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"), initializer=decoder.set_patterns,
                             initargs=(True,)) as pool:
        pool.submit(fn, bodies[0], received, limits, None, None).result()  # started, caches warm
        best_parent = best_worker = float("inf")
        for _ in range(rounds):
            own, tree = time.process_time(), tree_cpu_seconds(os.getpid())
            for body in bodies:
                pool.submit(fn, body, received, limits, None, None).result()
            parent = time.process_time() - own
            best_parent = min(best_parent, parent)
            best_worker = min(best_worker, tree_cpu_seconds(os.getpid()) - tree - parent)
    in_thread = min(_cpu_seconds(lambda: [fn(b, received, limits, None, None) for b in bodies])
                    for _ in range(rounds))
    emit(stage="in_process", step="hand-off to a worker process vs a thread", decoder=decoder.PATH,
         records=records, rounds=rounds, load=load_average(),
         server_us_per_record_with_worker=round(best_parent / records * 1e6, 2),
         worker_us_per_record=round(best_worker / records * 1e6, 2),
         server_us_per_record_in_thread=round(in_thread / records * 1e6, 2))


def exactness_ab(bodies: list[bytes], records: int, rounds: int) -> None:
    """The Python decode loop with and without the exactness work (the exact-copy check and the
    big-integer scan switched off), alternating in one process so both see the same machine load."""
    from logharbor.server.engine.store import attributes
    from logharbor.server.ingest import ndjson
    from logharbor.server.ingest.base import RecordLimits

    received, limits = time.time_ns(), RecordLimits()

    def decode_bodies() -> None:
        for body in bodies:
            ndjson.decode_ndjson_payload(body, received, limits, None, None)

    split, scan = attributes.split, ndjson.lossy_lines

    def without() -> None:
        attributes.split = lambda attrs, careful=False: (attrs, {})  # type: ignore[assignment]
        ndjson.lossy_lines = lambda body: frozenset()  # type: ignore[assignment]
        try:
            decode_bodies()  # type: ignore[operator]
        finally:
            attributes.split, ndjson.lossy_lines = split, scan

    best = {"with": float("inf"), "without": float("inf")}
    for _ in range(rounds):
        best["with"] = min(best["with"], _cpu_seconds(decode_bodies))
        best["without"] = min(best["without"], _cpu_seconds(without))
    emit(stage="in_process", step="decode_ndjson exactness A/B", records=records, rounds=rounds,
         us_per_record_with=round(best["with"] / records * 1e6, 2),
         us_per_record_without=round(best["without"] / records * 1e6, 2),
         cost_pct=round((best["with"] / best["without"] - 1) * 100, 1))


def _cpu_seconds(fn: object) -> float:
    t0 = time.process_time()
    fn()  # type: ignore[operator]
    return time.process_time() - t0


# -- merges and parts under load (issue #24 item 4): ``--variants`` ---------------------------

#: a probe word is letters only, so the text index's tokenizer keeps it whole
_LETTERS = "abcdefghijklmnopqrstuvwxyz"


#: the server's own threads name themselves (logharbor/threadnames.py): comm → kind
_THREAD_KINDS = {"lh-decode": "decode_threads", "lh-wal-writer": "wal_writer", "lh-batcher": "batcher",
                 "python": "python_other"}


def cpu_by_kind(pid: int) -> dict[str, float]:
    """CPU seconds of the server by kind of thread: ``decode_processes`` (the worker processes),
    ``decode_threads``, ``wal_writer``, ``batcher`` (mining, the insert's Python part and what the
    engine runs on that thread), ``python_other`` (the HTTP event loop and the other Python
    threads, all named ``python``), ``merges`` (the engine's ``MergeMutate`` threads) and
    ``engine`` (its other threads: the insert pipelines, background pools)."""
    out = {"decode_processes": tree_cpu_seconds(pid) - sum(thread_cpu_s(pid).values())}
    for name, seconds in thread_cpu_s(pid).items():
        kind = "merges" if name.startswith("MergeMutate") else _THREAD_KINDS.get(name, "engine")
        out[kind] = out.get(kind, 0.0) + seconds
    return out


def thread_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of a process' threads, summed by thread name: the engine names
    its merge threads ``MergeMutate``, so their share is the merge CPU under real load."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended while we looked
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


class SearchableProbe:
    """Ingest → searchable: every ``every_s`` one record with a new word is posted; the time from
    its acknowledgement until ``POST /api/v1/query`` finds it (polled every 20 ms) is one sample."""

    def __init__(self, url: str, key: str, every_s: float = 0.25) -> None:
        self.url, self.key, self.every_s = url, key, every_s
        self.samples: list[float] = []
        self.missed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        headers = {"authorization": f"Bearer {self.key}"}
        n = 0
        with httpx.Client(base_url=self.url, timeout=60, headers=headers) as c:
            while not self._stop.wait(self.every_s):
                n += 1
                word = "lhprobe" + "".join(_LETTERS[int(d)] for d in str(n))
                record = {"timestamp": time.time_ns(), "service": "probe", "message": f"probe {word}"}
                if c.post("/api/v1/logs", content=orjson.dumps(record)).status_code >= 300:
                    continue  # 429 under backpressure: not a sample
                acked = time.perf_counter()
                while time.perf_counter() - acked < 30:
                    rows = c.post("/api/v1/query", json={"q": word, "limit": 1}).json().get("rows")
                    if rows:
                        self.samples.append(time.perf_counter() - acked)
                        break
                    time.sleep(0.02)
                else:
                    self.missed += 1

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        s = sorted(self.samples) or [float("nan")]
        return {"searchable_samples": len(self.samples), "searchable_missed": self.missed,
                "searchable_p50_ms": round(s[len(s) // 2] * 1000, 1),
                "searchable_p99_ms": round(s[min(len(s) - 1, int(0.99 * len(s)))] * 1000, 1),
                "searchable_max_ms": round(s[-1] * 1000, 1)}


def parse_variant(text: str) -> tuple[str, dict[str, str], dict[str, int], Path | None]:
    """``name:key=value,…``: a ``LOGHARBOR_*`` server setting (``batch_max_bytes=128MiB``), as
    ``table.<setting>=<int>`` a MergeTree setting of the logs table (made before the server starts),
    or ``tree=<dir>``: the server runs that source tree's code (``<dir>/src``) instead of this one."""
    name, _, spec = text.partition(":")
    env: dict[str, str] = {}
    table: dict[str, int] = {}
    tree: Path | None = None
    for item in filter(None, spec.split(",")):
        key, _, value = item.partition("=")
        if key == "tree":
            tree = Path(value).resolve()
            if not (tree / "src" / "logharbor").is_dir():
                raise SystemExit(f"{name}: {tree} is not a logharbor source tree (no src/logharbor)")
        elif key.startswith("table."):
            table[key[len("table."):]] = int(value)
        else:
            env["LOGHARBOR_" + key.upper()] = value
    if tree is not None and table:
        raise SystemExit(f"{name}: tree= and table.* do not go together (this tree's code would make "
                         "the table)")
    return name, env, table, tree


def run_variant(name: str, env: dict[str, str], table: dict[str, int], shares: list[list[bytes]],
                records: int, tree: Path | None = None) -> dict[str, object]:
    """One server on a fresh data directory with ``env`` (and the logs table made first with
    ``table`` settings), from ``tree``'s code when given; the same bodies posted; what ingest,
    merges and parts cost. Server CPU is the whole process tree's (the decode workers included)."""
    from logharbor.server.engine.store.embedded import EmbeddedStore
    from logharbor.server.engine.store.sqlsafe import quote_identifier

    data_dir = Path(tempfile.mkdtemp(prefix="lh-bench-parts-"))
    if table:
        store = EmbeddedStore(data_dir / "store")
        store.open()
        changes = ", ".join(f"{quote_identifier(k)} = {int(v)}" for k, v in table.items())
        store.execute(f"ALTER TABLE {store.table} MODIFY SETTING {changes}")
        store.close()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_env = {**os.environ, **env}
    if tree is not None:
        server_env["PYTHONPATH"] = str(tree / "src")
    server = subprocess.Popen(
        [sys.executable, "-m", "logharbor.cli.main", "server", "--data-dir", str(data_dir),
         "--port", str(port), "--log-level", "warning"], cwd=tree or ROOT, env=server_env)
    try:
        _wait_ready(url)
        key = (data_dir / "admin.key").read_text().strip()
        decoder = decoder_in_use(url, key)
        decode = decode_mode(url, key)
        # worker processes start on first use (~1 s of CPU each, importing logharbor): not measured
        warm = warm_up(url, key, [share[0] for share in shares if share])
        load_before = load_average()
        cpu0, threads0 = tree_cpu_seconds(server.pid), thread_cpu_s(server.pid)
        kinds0 = cpu_by_kind(server.pid)
        queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        procs = [mp.Process(target=_client, args=(url, key, share, queue)) for share in shares]
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        # only now: a client forked while the probe's thread held a lock (its HTTP client) spun for ever
        probe = SearchableProbe(url, key)
        for _ in procs:
            queue.get()
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - t0
        searchable = probe.stop()
        while store_rows(url, key) < records + warm and time.perf_counter() - t0 < 900:
            time.sleep(0.2)
        threads = settle_merges(server.pid)
        merge_s = sum(v - threads0.get(k, 0.0) for k, v in threads.items() if k.startswith("MergeMutate"))
        cpu_s = tree_cpu_seconds(server.pid) - cpu0
        kinds = {k: v - kinds0.get(k, 0.0) for k, v in cpu_by_kind(server.pid).items()}
        busiest = sorted(((v - threads0.get(k, 0.0), k) for k, v in threads.items()), reverse=True)[:5]
        # the engine's own threads (Python's are all named "python"): inserts' pipelines and merges;
        # the part of an insert that runs on the batcher's Python thread is not in it
        # (the server's own named threads are Python too: not the engine's)
        engine_s = sum(v - threads0.get(k, 0.0) for k, v in threads.items() if k not in _THREAD_KINDS)
    finally:
        server.terminate()
        server.wait(timeout=120)
    parts = active_parts(data_dir / "store")
    shutil.rmtree(data_dir, ignore_errors=True)
    result: dict[str, object] = {
        "variant": name, "tree": str(tree or ROOT), "decoder": decoder, "decode": decode,
        "load_before": load_before,
        "load_after": load_average(), "records": records, "records_per_s": round(records / elapsed),
        "server_cpu_us_per_record": round(cpu_s / records * 1e6, 2),
        "merge_cpu_s": round(merge_s, 2), "merge_cpu_us_per_record": round(merge_s / records * 1e6, 2),
        "engine_threads_cpu_us_per_record": round(engine_s / records * 1e6, 2),
        "active_parts_after": parts, **searchable,
        "cpu_us_per_record_by_kind": {k: round(v / records * 1e6, 2) for k, v in sorted(kinds.items())},
        "busiest_threads": {k: round(v, 2) for v, k in busiest}}
    emit(stage="variant", **result)
    return result


def active_parts(store_dir: Path) -> int:
    """Active parts of the logs table, read with the engine alone (not this tree's store code,
    which would migrate a table made by another tree's code)."""
    from chdb import session

    s = session.Session(str(store_dir))
    try:
        out = s.query("SELECT count() AS n FROM system.parts WHERE active AND database = currentDatabase() "
                      "AND table = 'logs'", "JSONEachRow").bytes()
    finally:
        s.close()
    return int(orjson.loads(out)["n"])


def settle_merges(pid: int, limit_s: float = 90.0) -> dict[str, float]:
    """Wait until the merges the load started are over (the merge threads used < 0.05 s of CPU
    in each of 3 seconds running, or ``limit_s``), then the threads' CPU: a variant that only
    postpones merges is not counted as saving them."""
    last, quiet, t0 = thread_cpu_s(pid), 0, time.perf_counter()
    while quiet < 3 and time.perf_counter() - t0 < limit_s:
        time.sleep(1.0)
        now = thread_cpu_s(pid)
        merging = sum(v - last.get(k, 0.0) for k, v in now.items() if k.startswith("MergeMutate"))
        quiet = quiet + 1 if merging < 0.05 else 0
        last = now
    return last


def _wait_ready(url: str) -> None:
    """Until the server at ``url`` answers /readyz with 200 (about a minute at the most)."""
    for _ in range(600):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)


def compare_variants(variants: list[str], lines: list[bytes], batch: int, clients: int, rounds: int) -> None:
    """Each variant ``rounds`` times, the order reversed every other round (so a machine getting
    busier does not favour one), then the means side by side with ratios to the first."""
    bodies = [b"\n".join(lines[i:i + batch]) for i in range(0, len(lines), batch)]
    shares = [bodies[i::clients] for i in range(clients)]
    parsed = [parse_variant(v) for v in variants]
    results: dict[str, list[dict[str, object]]] = {p[0]: [] for p in parsed}
    for r in range(rounds):
        for name, env, table, tree in (parsed if r % 2 == 0 else list(reversed(parsed))):
            emit(stage="variant-start", variant=name, round=r, load_average=os.getloadavg()[0])
            results[name].append(run_variant(name, env, table, shares, len(lines), tree))
    base = parsed[0][0]

    def mean(name: str, key: str) -> float:
        return statistics.fmean(float(x[key]) for x in results[name])  # type: ignore[arg-type]

    def ratio(name: str, key: str) -> float | None:
        return round(mean(name, key) / mean(base, key), 2) if mean(base, key) else None

    loads = {name: [float(x[k]) for x in runs for k in ("load_before", "load_after")]  # type: ignore[arg-type]
             for name, runs in results.items()}
    for name in results:
        emit(stage="variants", variant=name, rounds=rounds,
             load_range=[min(loads[name]), max(loads[name])],
             **{k: round(mean(name, k), 2) for k in ("records_per_s", "server_cpu_us_per_record",
                                                     "engine_threads_cpu_us_per_record",
                                                     "merge_cpu_us_per_record", "active_parts_after",
                                                     "searchable_p50_ms", "searchable_p99_ms")},
             decoder=results[name][0]["decoder"], decode=results[name][0]["decode"],
             cpu_us_per_record_by_kind={k: round(statistics.fmean(
                 float(x["cpu_us_per_record_by_kind"].get(k, 0.0)) for x in results[name]), 2)  # type: ignore[attr-defined]
                 for k in sorted({k for x in results[name] for k in x["cpu_us_per_record_by_kind"]})},  # type: ignore[attr-defined]
             records_per_s_vs_first=ratio(name, "records_per_s"),
             server_cpu_vs_first=ratio(name, "server_cpu_us_per_record"),
             engine_threads_cpu_vs_first=ratio(name, "engine_threads_cpu_us_per_record"),
             merge_cpu_vs_first=ratio(name, "merge_cpu_us_per_record"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--in-process", action="store_true",
                    help="no server: CPU µs per record of each decoder step, best of --rounds")
    ap.add_argument("--rounds", type=int, default=5, help="rounds of --in-process or --variant")
    ap.add_argument("--variant", action="append", default=[],
                    help="name:key=value,… (a server setting, or table.<MergeTree setting>=n); two or more "
                         "compare merge CPU, parts and ingest → searchable side by side, --rounds each")
    ap.add_argument("--compare-tree", action="append", default=[], metavar="DIR",
                    help="run the same load against a server from DIR's code (DIR/src), alternating with "
                         "this tree's (or with the other --compare-tree DIRs): --variant DIRNAME:tree=DIR")
    ap.add_argument("--decoders", default="",
                    help="decoder:workers,… one server each, side by side (compiled:2,compiled:0,python:2)")
    args = ap.parse_args()
    if args.in_process:
        in_process(args.records, args.batch, args.rounds)
        return

    t0 = time.perf_counter()
    lines = demo_mix(args.records)
    raw_bytes = sum(len(x) + 1 for x in lines)
    emit(stage="generate", records=len(lines), raw_bytes=raw_bytes,
         bytes_per_record=round(raw_bytes / len(lines), 1), seconds=round(time.perf_counter() - t0, 2))

    trees = [Path(d).resolve() for d in args.compare_tree]
    if len(trees) == 1:
        args.variant.insert(0, f"{ROOT.name}:")  # this tree first: the ratios are against it
    args.variant += [f"{d.name}:tree={d}" for d in trees]
    if args.variant:
        compare_variants(args.variant, lines, args.batch, args.clients, args.rounds)
        return
    bodies = [b"\n".join(lines[i:i + args.batch]) for i in range(0, len(lines), args.batch)]
    variants = [v.split(":") for v in args.decoders.split(",")] if args.decoders else [[None, None]]
    for decoder_path, workers in variants:
        run_server(args, lines, bodies, raw_bytes, decoder_path, workers, storage=len(variants) == 1)


def run_server(args: argparse.Namespace, lines: list[bytes], bodies: list[bytes], raw_bytes: int,
               decoder_path: str | None, workers: str | None, *, storage: bool) -> None:
    """Start a server (with ``decoder_path`` and ``workers`` when given), post ``bodies`` from the
    clients, and emit the ingest, drain and (with ``storage``) storage figures."""
    shares = [bodies[i::args.clients] for i in range(args.clients)]
    data_dir = Path(tempfile.mkdtemp(prefix="lh-bench-ingest-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    if decoder_path == "python":
        env["LOGHARBOR_PURE_PYTHON"] = "1"
    extra = ["--ingest-workers", workers] if workers is not None else []
    server = subprocess.Popen(
        [sys.executable, "-m", "logharbor.cli.main", "server", "--data-dir", str(data_dir),
         "--port", str(port), "--log-level", "warning", *extra], cwd=ROOT, env=env)
    variant = {"variant": f"{decoder_path}:{workers}"} if decoder_path is not None else {}
    try:
        _wait_ready(url)
        key = (data_dir / "admin.key").read_text().strip()  # made by the server on first start
        running = decoder_in_use(url, key)
        if decoder_path is not None and running != decoder_path:
            raise SystemExit(f"asked for the {decoder_path} decoder, the server runs {running}")
        warm = warm_up(url, key, bodies[:args.clients])
        wal_disk = WalDiskSampler(data_dir / "wal")
        queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
        procs = [mp.Process(target=_client, args=(url, key, share, queue)) for share in shares]
        load_before = load_average()
        cpu0 = tree_cpu_seconds(server.pid)
        t0 = time.perf_counter()
        for p in procs:
            p.start()
        latencies = [lat for _ in procs for lat in queue.get()]
        for p in procs:
            p.join()
        elapsed = time.perf_counter() - t0
        cpu = tree_cpu_seconds(server.pid) - cpu0
        latencies.sort()

        def pct(q: float) -> float:
            return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2)

        emit(stage="ingest", **variant, decoder=running, records=len(lines), batch=args.batch,
             clients=args.clients, seconds=round(elapsed, 3), records_per_s=round(len(lines) / elapsed),
             mb_per_s=round(raw_bytes / elapsed / 1e6, 2), p50_ms=pct(0.5), p99_ms=pct(0.99),
             server_cpu_us_per_record=round(cpu / len(lines) * 1e6, 2),
             load_before=load_before, load_after=load_average(),
             requests=len(latencies), server_peak_rss_mib=round(peak_rss_mib(server.pid), 1),
             wal_peak_mib=round(wal_disk.peak / 2**20, 1))
        t1 = time.perf_counter()
        while store_rows(url, key) < len(lines) + warm and time.perf_counter() - t1 < 600:
            time.sleep(0.2)
        # the whole cost of a record: the "ingest" stage's CPU and rate end at the last
        # acknowledgement, before the store has inserted (and indexed) most of the rows
        stored_s = time.perf_counter() - t0
        cpu_stored = tree_cpu_seconds(server.pid) - cpu0
        time.sleep(2.0)  # a batch or two after the last one: what the WAL still holds once drained
        wal_disk.stop()
        emit(stage="drain", **variant, seconds_after_last_ack=round(time.perf_counter() - t1, 2),
             records_per_s_to_stored=round(len(lines) / stored_s),
             server_cpu_us_per_record_to_stored=round(cpu_stored / len(lines) * 1e6, 2),
             store_rows=store_rows(url, key), server_peak_rss_mib=round(peak_rss_mib(server.pid), 1),
             wal_peak_mib=round(wal_disk.peak / 2**20, 1), wal_drained_mib=round(wal_disk.now() / 2**20, 2),
             **batcher_figures(url, key))
    finally:
        server.terminate()
        server.wait(timeout=120)
    if storage:
        storage_figures(data_dir, raw_bytes, len(lines))
    if not args.keep:
        shutil.rmtree(data_dir, ignore_errors=True)


def warm_up(url: str, key: str, bodies: list[bytes]) -> int:
    """Post ``bodies`` at once before the measured run, so the worker processes are started (the
    pool spawns them on first use: ~1 s of CPU each, importing logharbor) and the caches are
    filled; returns how many records they hold (stored too, not counted in the figures)."""
    headers = {"content-type": "application/x-ndjson", "authorization": f"Bearer {key}"}

    def post(body: bytes) -> int:
        answer = httpx.post(url + "/api/v1/logs", content=body, headers=headers, timeout=120)
        answer.raise_for_status()
        return int(answer.json()["accepted"])

    with ThreadPoolExecutor(len(bodies)) as pool:
        return sum(pool.map(post, bodies))


def decoder_in_use(url: str, key: str) -> str:
    """The decoder the server says it runs (``logharbor_ingest_decoder`` in /metrics)."""
    metrics = httpx.get(url + "/metrics", timeout=30, headers={"authorization": f"Bearer {key}"}).text
    for line in metrics.splitlines():
        if line.startswith('logharbor_ingest_decoder{path="'):
            return line.split('"')[1]
    return "unknown"


def decode_mode(url: str, key: str) -> str:
    """Where the server decodes NDJSON bodies (``logharbor_ingest_decode_mode`` in /metrics):
    ``threads`` or ``processes``, or ``processes?`` for a server from before the setting."""
    metrics = httpx.get(url + "/metrics", timeout=30, headers={"authorization": f"Bearer {key}"}).text
    for line in metrics.splitlines():
        if line.startswith('logharbor_ingest_decode_mode{ndjson="'):
            return line.split('"')[1]
    return "processes?"


def storage_figures(data_dir: Path, raw_bytes: int, records: int) -> None:
    from logharbor.server.engine.store.embedded import EmbeddedStore

    store = EmbeddedStore(data_dir / "store")
    store.open()
    store.optimize()
    stats = store.stats()
    store.close()
    emit(stage="storage", rows=stats.rows, bytes_on_disk=stats.bytes_on_disk,
         stored_bytes_per_record=round(stats.bytes_on_disk / max(stats.rows, 1), 2),
         raw_bytes_per_record=round(raw_bytes / records, 1),
         raw_to_stored_ratio=round(raw_bytes / max(stats.bytes_on_disk, 1), 2))


if __name__ == "__main__":
    main()
