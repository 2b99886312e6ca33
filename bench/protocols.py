"""Protocol ingest benchmark: records/s of every shipper protocol against one server, beside native.

Generates N application records, encodes them once per protocol (native NDJSON, Elasticsearch
``_bulk``, Loki protobuf+snappy and JSON, OTLP protobuf and JSON, syslog RFC 5424 over TCP with
octet counting, Fluent forward PackedForward with acks), starts one real server (fsync on, auth
on, syslog and forward listeners on loopback) and sends each protocol's batches from several
client processes. A protocol's time runs from its first byte to the moment the server's
``logharbor_records_accepted_total{protocol=…}`` counter has all N (for HTTP and forward that is
also the last acknowledgement; syslog has no acknowledgement). First, each protocol's server-side
decoder is timed in this process on one core (``stage: decode``, CPU µs per record: independent of
what else the machine runs). Protocols then run in rounds, in
alternating order; one JSON line per run, then a summary line per protocol with the median
records/s and its ratio to native:

    python bench/protocols.py --records 200000 --batch 2000 --clients 4 --rounds 3
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cramjam
import httpx
import msgpack
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (  # noqa: E402
    ExportLogsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue  # noqa: E402
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord  # noqa: E402

from logharbor.formats.syslog import format_rfc5424  # noqa: E402
from logharbor.record import format_timestamp  # noqa: E402
from logharbor.server.ingest.loki import PushRequest  # noqa: E402

SERVICES = ("checkout", "cart", "search", "auth", "payments")
LEVELS = (("INFO", 9, 6), ("INFO", 9, 6), ("INFO", 9, 6), ("WARN", 13, 4), ("ERROR", 17, 3),
          ("DEBUG", 5, 7))
PATHS = ("/api/orders", "/api/cart", "/api/search", "/login", "/api/pay")


def emit(**fields: object) -> None:
    print(orjson.dumps(fields).decode(), flush=True)


def make_records(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """``n`` app records (about 300 bytes of NDJSON each), one millisecond apart."""
    rng = random.Random(seed)
    start = time.time_ns() - 3600 * 1_000_000_000
    out = []
    for i in range(n):
        level, _, _ = rng.choice(LEVELS)
        status = rng.choice((200, 200, 200, 201, 404, 502))
        out.append({
            "ts": start + i * 1_000_000, "service": rng.choice(SERVICES), "level": level,
            "message": f"request {rng.choice(PATHS)} finished with {status} for user u-{rng.randrange(5000)}",
            "host": f"web-{rng.randrange(8)}", "trace_id": f"{rng.getrandbits(128):032x}",
            "method": rng.choice(("GET", "POST")), "path": rng.choice(PATHS), "status": status,
            "duration_ms": round(rng.uniform(1, 900), 2), "user_id": f"u-{rng.randrange(5000)}",
        })
    return out


# ---------------------------------------------------------------------------------------------
# encoders: a batch of records → one request body (or socket payload)


def native(batch: list[dict[str, Any]]) -> bytes:
    return b"\n".join(orjson.dumps({
        "timestamp": format_timestamp(r["ts"]), "service": r["service"], "level": r["level"],
        "message": r["message"], "host": r["host"], "trace_id": r["trace_id"],
        "http": {"method": r["method"], "path": r["path"], "status": r["status"],
                 "duration_ms": r["duration_ms"]}, "user_id": r["user_id"]}) for r in batch)


def es_bulk(batch: list[dict[str, Any]]) -> bytes:
    lines = []
    for r in batch:
        lines.append(b'{"create":{"_index":"logs-app"}}')
        lines.append(orjson.dumps({
            "@timestamp": format_timestamp(r["ts"]), "message": r["message"],
            "log": {"level": r["level"].lower()}, "service": {"name": r["service"]},
            "host": {"name": r["host"]}, "trace": {"id": r["trace_id"]},
            "http": {"request": {"method": r["method"]}, "response": {"status_code": r["status"]}},
            "url": {"path": r["path"]}, "user_id": r["user_id"]}))
    return b"\n".join(lines) + b"\n"


def _loki_streams(batch: list[dict[str, Any]]) -> dict[tuple[str, str, str], list[dict[str, Any]]]:
    streams: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in batch:
        streams.setdefault((r["service"], r["level"].lower(), r["host"]), []).append(r)
    return streams


def loki_protobuf(batch: list[dict[str, Any]]) -> bytes:
    request = PushRequest()
    for (service, level, host), rows in _loki_streams(batch).items():
        stream = request.streams.add(labels=f'{{service_name="{service}", level="{level}", host="{host}"}}')
        for r in rows:
            entry = stream.entries.add(line=r["message"])
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(r["ts"], 1_000_000_000)
            entry.structuredMetadata.add(name="trace_id", value=r["trace_id"])
            entry.structuredMetadata.add(name="user_id", value=r["user_id"])
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def loki_json(batch: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"streams": [
        {"stream": {"service_name": s, "level": lv, "host": h},
         "values": [[str(r["ts"]), r["message"], {"trace_id": r["trace_id"], "user_id": r["user_id"]}]
                    for r in rows]}
        for (s, lv, h), rows in _loki_streams(batch).items()]})


def _otlp_request(batch: list[dict[str, Any]]) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    by_service: dict[str, list[dict[str, Any]]] = {}
    for r in batch:
        by_service.setdefault(r["service"], []).append(r)
    severity = {name: number for name, number, _ in LEVELS}
    for service, rows in by_service.items():
        rl = request.resource_logs.add()
        rl.resource.attributes.append(KeyValue(key="service.name", value=AnyValue(string_value=service)))
        sl = rl.scope_logs.add()
        sl.scope.name = "bench"
        for r in rows:
            sl.log_records.append(LogRecord(
                time_unix_nano=r["ts"], severity_number=severity[r["level"]], severity_text=r["level"],
                body=AnyValue(string_value=r["message"]), trace_id=bytes.fromhex(r["trace_id"]),
                attributes=[KeyValue(key="host.name", value=AnyValue(string_value=r["host"])),
                            KeyValue(key="http.request.method", value=AnyValue(string_value=r["method"])),
                            KeyValue(key="url.path", value=AnyValue(string_value=r["path"])),
                            KeyValue(key="http.response.status_code", value=AnyValue(int_value=r["status"])),
                            KeyValue(key="user_id", value=AnyValue(string_value=r["user_id"]))]))
    return request


def otlp_protobuf(batch: list[dict[str, Any]]) -> bytes:
    return _otlp_request(batch).SerializeToString()


def otlp_json(batch: list[dict[str, Any]]) -> bytes:
    def kv(key: str, value: dict[str, Any]) -> dict[str, Any]:
        return {"key": key, "value": value}

    out = {"resourceLogs": []}
    for rl in _otlp_request(batch).resource_logs:
        logs = [{"timeUnixNano": str(lr.time_unix_nano), "severityNumber": lr.severity_number,
                 "body": {"stringValue": lr.body.string_value}, "traceId": lr.trace_id.hex(),
                 "attributes": [kv(a.key, {"intValue": str(a.value.int_value)}
                                   if a.value.WhichOneof("value") == "int_value"
                                   else {"stringValue": a.value.string_value}) for a in lr.attributes]}
                for lr in rl.scope_logs[0].log_records]
        out["resourceLogs"].append({
            "resource": {"attributes": [kv("service.name", {"stringValue": rl.resource.attributes[0]
                                                              .value.string_value})]},
            "scopeLogs": [{"scope": {"name": "bench"}, "logRecords": logs}]})
    return orjson.dumps(out)


def syslog_tcp(batch: list[dict[str, Any]]) -> bytes:
    severity = {name: sev for name, _, sev in LEVELS}
    parts = []
    for r in batch:
        msg = format_rfc5424(pri=8 * 16 + severity[r["level"]], timestamp=format_timestamp(r["ts"]),
                             host=r["host"], app=r["service"], procid=1234,
                             structured_data={"req@1": {"trace_id": r["trace_id"], "user_id": r["user_id"]}},
                             message=r["message"]).encode()
        parts.append(b"%d %s" % (len(msg), msg))
    return b"".join(parts)


def forward_packed(batch: list[dict[str, Any]]) -> bytes:
    entries = b"".join(msgpack.packb([
        msgpack.ExtType(0, (r["ts"] // 1_000_000_000).to_bytes(4, "big")
                        + (r["ts"] % 1_000_000_000).to_bytes(4, "big")),
        {"message": r["message"], "service": r["service"], "level": r["level"], "host": r["host"],
         "trace_id": r["trace_id"], "user_id": r["user_id"], "status": r["status"]}]) for r in batch)
    return msgpack.packb(["app.bench", entries, {"chunk": "", "size": len(batch)}])


HTTP = {
    "native": ("/api/v1/logs", "application/x-ndjson", native),
    "elasticsearch": ("/_bulk", "application/x-ndjson", es_bulk),
    "loki_protobuf": ("/loki/api/v1/push", "application/x-protobuf", loki_protobuf),
    "loki_json": ("/loki/api/v1/push", "application/json", loki_json),
    "otlp_protobuf": ("/v1/logs", "application/x-protobuf", otlp_protobuf),
    "otlp_json": ("/v1/logs", "application/json", otlp_json),
}
METRIC = {"native": "native", "elasticsearch": "elasticsearch", "loki_protobuf": "loki",
          "loki_json": "loki", "otlp_protobuf": "otlp", "otlp_json": "otlp", "syslog_tcp": "syslog",
          "forward": "forward"}


# ---------------------------------------------------------------------------------------------
# clients (one process each)


def _http_client(url: str, path: str, ctype: str, key: str, bodies: list[bytes], q: mp.Queue) -> None:  # type: ignore[type-arg]
    headers = {"content-type": ctype, "authorization": f"Bearer {key}"}
    with httpx.Client(base_url=url, timeout=120, headers=headers) as client:
        for body in bodies:
            while True:
                r = client.post(path, content=body)
                if r.status_code == 429:
                    time.sleep(float(r.headers.get("retry-after", "1")))
                    continue
                if r.status_code >= 300:
                    raise RuntimeError(f"{path}: {r.status_code} {r.text[:300]}")
                break
    q.put(len(bodies))


def _syslog_client(port: int, bodies: list[bytes], q: mp.Queue) -> None:  # type: ignore[type-arg]
    with socket.create_connection(("127.0.0.1", port)) as conn:
        for body in bodies:
            conn.sendall(body)
    q.put(len(bodies))


def _forward_client(port: int, bodies: list[bytes], q: mp.Queue) -> None:  # type: ignore[type-arg]
    unpacker = msgpack.Unpacker(raw=False)
    with socket.create_connection(("127.0.0.1", port)) as conn:
        for i, body in enumerate(bodies):
            # each body was packed with an empty chunk id: give it a real one and wait for its ack
            tag, entries, option = msgpack.unpackb(body, raw=False)
            option["chunk"] = f"c{i}"
            conn.sendall(msgpack.packb([tag, entries, option]))
            while True:
                acks = list(unpacker)
                if acks:
                    assert acks[-1]["ack"] == f"c{i}"
                    break
                unpacker.feed(conn.recv(65536))
    q.put(len(bodies))


def accepted(url: str, key: str, protocol: str) -> int:
    text = httpx.get(url + "/metrics", timeout=30, headers={"authorization": f"Bearer {key}"}).text
    for line in text.splitlines():
        if line.startswith(f'logharbor_records_accepted_total{{protocol="{protocol}"}}'):
            return int(float(line.split()[-1]))
    return 0


def run(name: str, target: Callable[..., None], args_of: Callable[[list[bytes]], tuple[Any, ...]],
        bodies: list[bytes], clients: int, url: str, key: str, expected: int) -> float:
    before = accepted(url, key, METRIC[name])
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    procs = [mp.Process(target=target, args=(*args_of(bodies[i::clients]), q)) for i in range(clients)]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    for _ in procs:
        q.get(timeout=600)
    while accepted(url, key, METRIC[name]) - before < expected:
        if time.perf_counter() - t0 > 600:
            raise RuntimeError(f"{name}: the server did not accept {expected} records")
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3,
                    help="runs per protocol; the median is reported (0: decode costs only)")
    ap.add_argument("--only", default="", help="comma-separated protocols (default: all)")
    args = ap.parse_args()

    records = make_records(args.records)
    batches = [records[i:i + args.batch] for i in range(0, len(records), args.batch)]
    encoders: dict[str, Callable[[list[dict[str, Any]]], bytes]] = {
        **{name: enc for name, (_, _, enc) in HTTP.items()},
        "syslog_tcp": syslog_tcp, "forward": forward_packed,
    }
    chosen = [n for n in encoders if not args.only or n in args.only.split(",")]
    sample = batches[: max(1, 20_000 // args.batch)]
    for name in chosen:
        cpu = decode_cost(name, [encoders[name](b) for b in sample])
        n = sum(len(b) for b in sample)
        emit(stage="decode", protocol=name, records=n, cpu_us_per_record=round(cpu / n * 1e6, 2),
             records_per_cpu_s=round(n / cpu))
    if args.rounds <= 0:  # decoder costs only
        return
    data_dir = Path(tempfile.mkdtemp(prefix="lh-bench-protocols-"))
    ports = {k: _free_port() for k in ("http", "syslog", "forward")}
    url = f"http://127.0.0.1:{ports['http']}"
    server = subprocess.Popen(
        [sys.executable, "-m", "logharbor.cli.main", "server", "--data-dir", str(data_dir),
         "--port", str(ports["http"]), "--log-level", "warning",
         "--syslog-tcp", f"127.0.0.1:{ports['syslog']}", "--forward", f"127.0.0.1:{ports['forward']}"],
        cwd=ROOT)
    try:
        _wait_ready(url)
        key = (data_dir / "admin.key").read_text().strip()
        # warm up: the first large bodies start the server's decode worker processes
        warm = [native(b) for b in batches[: 2 * args.clients]]
        run("native", _http_client, lambda share: (url, "/api/v1/logs", "application/x-ndjson", key, share),
            warm, args.clients, url, key, sum(len(b) for b in batches[: 2 * args.clients]))
        rates: dict[str, list[float]] = {name: [] for name in chosen}
        for round_no in range(args.rounds):
            # alternate the order so a change in machine load does not favour one protocol
            for name in chosen if round_no % 2 == 0 else chosen[::-1]:
                t0 = time.perf_counter()
                bodies = [encoders[name](b) for b in batches]
                encode_s = time.perf_counter() - t0
                size = sum(len(b) for b in bodies)
                if name in HTTP:
                    path, ctype, _ = HTTP[name]
                    elapsed = run(name, _http_client, lambda share, p=path, c=ctype: (url, p, c, key, share),
                                  bodies, args.clients, url, key, len(records))
                elif name == "syslog_tcp":
                    elapsed = run(name, _syslog_client, lambda share: (ports["syslog"], share),
                                  bodies, args.clients, url, key, len(records))
                else:
                    elapsed = run(name, _forward_client, lambda share: (ports["forward"], share),
                                  bodies, args.clients, url, key, len(records))
                rates[name].append(len(records) / elapsed)
                emit(stage="run", round=round_no, protocol=name, seconds=round(elapsed, 3),
                     records_per_s=round(len(records) / elapsed),
                     wire_bytes_per_record=round(size / len(records), 1), client_encode_s=round(encode_s, 2))
        native_rate = statistics.median(rates["native"]) if rates.get("native") else None
        for name in chosen:
            rate = statistics.median(rates[name])
            emit(stage="summary", protocol=name, records=len(records), batch=args.batch, clients=args.clients,
                 rounds=args.rounds, records_per_s=round(rate),
                 ratio_to_native=round(rate / native_rate, 2) if native_rate else None)
    finally:
        server.terminate()
        server.wait(timeout=120)
        shutil.rmtree(data_dir, ignore_errors=True)


def decode_cost(name: str, bodies: list[bytes]) -> float:
    """CPU seconds (this process, one core) the server's decoder spends on ``bodies``."""
    from logharbor.server.ingest.base import RecordLimits
    from logharbor.server.ingest.ecs import decode_bulk
    from logharbor.server.ingest.forward import _unpacker, decode_entries
    from logharbor.server.ingest.loki import decode_push, snappy_block
    from logharbor.server.ingest.native import decode_ndjson
    from logharbor.server.ingest.otlp import decode_otlp
    from logharbor.server.ingest.syslog import SyslogFramer, decode_syslog

    limits = RecordLimits()
    now = time.time_ns()
    t0 = time.process_time()
    for body in bodies:
        if name == "native":
            decode_ndjson(body, received_ns=now, limits=limits)
        elif name == "elasticsearch":
            decode_bulk(body, None, now, limits)
        elif name.startswith("loki"):
            protobuf = name == "loki_protobuf"
            decode_push(snappy_block(body, 1 << 30) if protobuf else body, protobuf, now, limits, None)
        elif name.startswith("otlp"):
            decode_otlp(body, name == "otlp_json", now, limits, None)
        elif name == "syslog_tcp":
            decode_syslog(SyslogFramer(1 << 20).feed(body), "127.0.0.1", now, limits)
        else:
            tag, entries, _ = msgpack.unpackb(body, raw=False)
            unpacker = _unpacker(1 << 30)
            unpacker.feed(entries)
            decode_entries(tag, list(unpacker), now, limits)
    return time.process_time() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str) -> None:
    for _ in range(600):
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the server did not become ready")


if __name__ == "__main__":
    main()
