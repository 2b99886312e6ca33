"""Bodies of several gzip members / zstd frames on every endpoint that takes compressed bodies.

Fault: a shipper sends ``cat a.gz b.gz`` (or two zstd frames) and each piece carries different
records. A server that reads only the first piece answers 2xx for the whole body and stores half.
Here every endpoint (native, ``_bulk``, ``/{index}/_bulk``, Loki JSON and protobuf, OTLP JSON and
protobuf, Fluent forward's CompressedPackedForward) gets such bodies from a client that counts
what was acknowledged; the ids are read back through the query API and tallied. The broken
variants (second piece truncated, trailing garbage) must be refused with a 400 that says so, and
nothing of such a body may be stored.
"""

from __future__ import annotations

import gzip
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cramjam
import httpx
import msgpack
import orjson
import pytest
import zstandard
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from tests.conftest import ServerProcess, free_port
from tests.faults.conftest import Tally

from logharbor.server.ingest.loki import PushRequest

SERVICE = "cmfaults"
ALL_TIME = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}


def gzip_members(first: bytes, second: bytes) -> bytes:
    return gzip.compress(first) + gzip.compress(second)


def zstd_frames(first: bytes, second: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(first) + zstandard.ZstdCompressor().compress(second)


CODINGS: dict[str, Callable[[bytes, bytes], bytes]] = {"gzip": gzip_members, "zstd": zstd_frames}


@dataclass
class Endpoint:
    """How one endpoint takes records: its path, content type, the two halves of a body that
    carry the given messages (first, second), and whether an answer acknowledged them all."""

    path: str
    content_type: str
    halves: Callable[[list[str], list[str]], tuple[bytes, bytes]]
    acknowledged: Callable[[httpx.Response, int], bool]


def _ndjson(messages: list[str]) -> bytes:
    return b"".join(orjson.dumps({"message": m, "service": SERVICE}) + b"\n" for m in messages)


def _bulk(messages: list[str]) -> bytes:
    return b"".join(b'{"create":{"_index":"logs"}}\n' + orjson.dumps({"message": m, "service": SERVICE})
                    + b"\n" for m in messages)


def _split(body: bytes) -> tuple[bytes, bytes]:
    """A document cut in the middle: each piece carries the bytes of different records."""
    return body[: len(body) // 2], body[len(body) // 2:]


def _loki_json(first: list[str], second: list[str]) -> tuple[bytes, bytes]:
    now = time.time_ns()
    values = [[str(now + i), m] for i, m in enumerate(first + second)]
    return _split(orjson.dumps({"streams": [{"stream": {"service_name": SERVICE}, "values": values}]}))


def _loki_protobuf(first: list[str], second: list[str]) -> tuple[bytes, bytes]:
    request = PushRequest()
    stream = request.streams.add(labels=f'{{service_name="{SERVICE}"}}')
    for m in first + second:
        entry = stream.entries.add(line=m)
        entry.timestamp.FromNanoseconds(time.time_ns())
    return _split(bytes(cramjam.snappy.compress_raw(request.SerializeToString())))


def _otlp_request(messages: list[str]) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    resource_logs = request.resource_logs.add()
    resource_logs.resource.attributes.add(key="service.name").value.string_value = SERVICE
    scope = resource_logs.scope_logs.add()
    for m in messages:
        record = scope.log_records.add(time_unix_nano=time.time_ns())
        record.body.string_value = m
    return request


def _otlp_protobuf(first: list[str], second: list[str]) -> tuple[bytes, bytes]:
    # two whole messages: protobuf concatenation merges them, so a server reading only the first
    # member would see a valid request with half the records (the silent case)
    return _otlp_request(first).SerializeToString(), _otlp_request(second).SerializeToString()


def _otlp_json(first: list[str], second: list[str]) -> tuple[bytes, bytes]:
    records = [{"timeUnixNano": str(time.time_ns()), "body": {"stringValue": m}} for m in first + second]
    body = {"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": SERVICE}}]},
        "scopeLogs": [{"logRecords": records}]}]}
    return _split(orjson.dumps(body))


def _native_ok(response: httpx.Response, sent: int) -> bool:
    return response.status_code == 200 and response.json()["accepted"] == sent \
        and not response.json()["rejected"]


def _bulk_ok(response: httpx.Response, sent: int) -> bool:
    body = response.json()
    return response.status_code == 200 and not body["errors"] and len(body["items"]) == sent


def _otlp_ok(response: httpx.Response, sent: int) -> bool:
    return response.status_code == 200 and b"rejected" not in response.content


ENDPOINTS = {
    "native": Endpoint("/api/v1/logs", "application/x-ndjson",
                       lambda a, b: (_ndjson(a), _ndjson(b)), _native_ok),
    "bulk": Endpoint("/_bulk", "application/x-ndjson", lambda a, b: (_bulk(a), _bulk(b)), _bulk_ok),
    "index-bulk": Endpoint("/logs-cm/_bulk", "application/x-ndjson",
                           lambda a, b: (_bulk(a), _bulk(b)), _bulk_ok),
    "loki-json": Endpoint("/loki/api/v1/push", "application/json", _loki_json,
                          lambda r, n: r.status_code == 204),
    "loki-protobuf": Endpoint("/loki/api/v1/push", "application/x-protobuf", _loki_protobuf,
                              lambda r, n: r.status_code == 204),
    "otlp-json": Endpoint("/v1/logs", "application/json", _otlp_json, _otlp_ok),
    "otlp-protobuf": Endpoint("/v1/logs", "application/x-protobuf", _otlp_protobuf, _otlp_ok),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    port = free_port()
    proc = ServerProcess(tmp_path_factory.mktemp("members") / "data", "--batch-max-age", "0.2",
                         "--forward", f"127.0.0.1:{port}")
    proc.forward_port = port  # type: ignore[attr-defined]
    proc.start()
    yield proc
    proc.stop()


def stored_messages(server: ServerProcess, prefix: str, expected: int, timeout: float = 60.0) -> list[str]:
    """Messages starting with ``prefix`` in the store, once there are ``expected`` (or time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = server.query(f'service:{SERVICE} AND "{prefix}"', limit=10_000, **ALL_TIME)["rows"]
        found = [r["message"] for r in rows if r["message"].startswith(prefix + " ")]
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.mark.parametrize("coding", sorted(CODINGS))
@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_every_member_is_stored(server: ServerProcess, name: str, coding: str) -> None:
    endpoint = ENDPOINTS[name]
    tally = Tally(f"compressed-members/{name}/{coding}")
    prefix = f"cm{name.replace('-', '')}{coding}"
    with server.client() as client:
        for body_no in range(3):  # bodies of different sizes, each piece with its own records
            first = [f"{prefix} b{body_no} first {i}" for i in range(1 + body_no * 40)]
            second = [f"{prefix} b{body_no} second {i}" for i in range(2 + body_no * 25)]
            one, two = endpoint.halves(first, second)
            response = client.post(endpoint.path, content=CODINGS[coding](one, two), headers={
                "content-type": endpoint.content_type, "content-encoding": coding})
            assert endpoint.acknowledged(response, len(first) + len(second)), response.text
            tally.ack(first + second)
    tally.saw(stored_messages(server, prefix, len(tally.acknowledged)))
    tally.report()


BROKEN: dict[str, Callable[[bytes], bytes]] = {
    "second member truncated": lambda body: body[:-7],
    "trailing garbage": lambda body: body + b"garbage!",
}


@pytest.mark.parametrize("fault", sorted(BROKEN))
@pytest.mark.parametrize("coding", sorted(CODINGS))
@pytest.mark.parametrize("name", ["native", "bulk", "loki-json", "loki-protobuf", "otlp-json", "otlp-protobuf"])
def test_a_broken_body_is_refused_and_nothing_of_it_is_stored(
        server: ServerProcess, name: str, coding: str, fault: str) -> None:
    endpoint = ENDPOINTS[name]
    prefix = f"cmbroken{name.replace('-', '')}{coding}{fault.split()[0]}"
    first = [f"{prefix} first {i}" for i in range(5)]
    second = [f"{prefix} second {i}" for i in range(5)]
    body = BROKEN[fault](CODINGS[coding](*endpoint.halves(first, second)))
    with server.client() as client:
        response = client.post(endpoint.path, content=body, headers={
            "content-type": endpoint.content_type, "content-encoding": coding})
        assert response.status_code == 400, response.text
        assert "truncated" in response.text or "not a" in response.text, response.text
        # a good body after it, so the store has caught up when we look for the broken one's records
        marker = [f"{prefix} marker"]
        good = client.post(endpoint.path, content=CODINGS[coding](*endpoint.halves(marker, [])),
                           headers={"content-type": endpoint.content_type, "content-encoding": coding})
        assert endpoint.acknowledged(good, 1), good.text
    stored = stored_messages(server, prefix, 1)
    assert stored == marker, f"records of a refused body were stored: {stored}"


def _forward_acks(conn: socket.socket, count: int) -> list[str]:
    unpacker = msgpack.Unpacker(raw=False)
    acks: list[str] = []
    conn.settimeout(60)
    while len(acks) < count:
        data = conn.recv(65536)
        if not data:
            break
        unpacker.feed(data)
        acks.extend(obj["ack"] for obj in unpacker)
    return acks


def test_forward_compressed_packed_members(server: ServerProcess) -> None:
    """Fluentd appends a gzip member per chunk to CompressedPackedForward; all are read, and a
    message with a truncated member or trailing garbage is not acknowledged and not stored."""
    tally = Tally("compressed-members/forward/gzip")
    now = int(time.time())

    def packed(messages: list[str]) -> bytes:
        return b"".join(msgpack.packb([now, {"message": m, "service": SERVICE}]) for m in messages)

    first = [f"cmforward first {i}" for i in range(30)]
    second = [f"cmforward second {i}" for i in range(20)]
    body = gzip.compress(packed(first)) + gzip.compress(packed(second))
    port = server.forward_port  # type: ignore[attr-defined]
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(msgpack.packb(["cm", body, {"chunk": "whole", "compressed": "gzip"}]))
        assert _forward_acks(conn, 1) == ["whole"]
    tally.ack(first + second)
    for fault, broken in BROKEN.items():
        doomed = [f"cmforward {fault.split()[0]} {i}" for i in range(5)]
        bad = broken(gzip.compress(packed(doomed[:2])) + gzip.compress(packed(doomed[2:])))
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(msgpack.packb(["cm", bad, {"chunk": fault, "compressed": "gzip"}]))
            assert _forward_acks(conn, 1) == [], f"{fault}: a broken message was acknowledged"
    # a packed stream (no gzip) that ends inside an entry: refused, not cut short
    cut = packed(["cmforward cut 0", "cmforward cut 1"])[:-3]
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(msgpack.packb(["cm", cut, {"chunk": "cut"}]))
        assert _forward_acks(conn, 1) == []
    tally.saw(stored_messages(server, "cmforward", len(tally.acknowledged)))
    tally.report()  # a broken message's records would show as unacknowledged extras
    assert set(tally.stored) == tally.acknowledged
