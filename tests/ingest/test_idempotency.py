"""Idempotency-Key and Elasticsearch ``_id``s against a real server: what a client sees."""

from __future__ import annotations

import asyncio
import gzip
import time
import uuid

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess

from .conftest import records

NDJSON = {"content-type": "application/x-ndjson"}


def _ndjson(service: str, n: int, tag: str = "m") -> bytes:
    return b"\n".join(orjson.dumps({"message": f"{tag} {i}", "service": service}) for i in range(n))


def test_a_retried_batch_is_stored_once_and_answered_as_before(server: ServerProcess) -> None:
    body = _ndjson("idem-native", 5) + b"\nnot json"
    key = {"idempotency-key": f"batch-{uuid.uuid4()}"}
    with server.client() as client:
        first = client.post("/api/v1/logs", content=body, headers={**NDJSON, **key})
        again = client.post("/api/v1/logs", content=gzip.compress(body),  # recompressed: same body
                            headers={**NDJSON, **key, "content-encoding": "gzip"})
        other = client.post("/api/v1/logs", content=body, headers=NDJSON)  # no key: a new batch
    assert first.status_code == again.status_code == 200
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() == {"accepted": 5, "rejected": [
        {"line": 6, "error": first.json()["rejected"][0]["error"]}]}
    assert other.status_code == 200
    assert len(records(server, "service:idem-native", 10)) == 10


def test_the_same_key_with_another_body_is_a_422(server: ServerProcess) -> None:
    key = {"idempotency-key": f"batch-{uuid.uuid4()}"}
    with server.client() as client:
        assert client.post("/api/v1/logs", content=_ndjson("idem-422", 2), headers={**NDJSON, **key}
                           ).status_code == 200
        response = client.post("/api/v1/logs", content=_ndjson("idem-422", 3), headers={**NDJSON, **key})
        bad = client.post("/api/v1/logs", content=b"{}",
                          headers={**NDJSON, "idempotency-key": "caf\u00e9".encode()})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "idempotency_key_reused"
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_idempotency_key"
    assert len(records(server, "service:idem-422", 2)) == 2


def test_keys_are_scoped_by_api_key(server: ServerProcess) -> None:
    """Two clients (API keys) that happen to pick the same key both get their batch stored."""
    one, two = server.create_key("writer", name="one"), server.create_key("writer", name="two")
    for secret in (one, two):
        response = httpx.post(server.url + "/api/v1/logs", content=_ndjson("idem-scope", 3, secret[:10]),
                              headers={**NDJSON, "authorization": f"Bearer {secret}",
                                       "idempotency-key": "batch-1"}, timeout=30)
        assert response.status_code == 200 and "idempotent-replayed" not in response.headers
    assert len(records(server, "service:idem-scope", 6)) == 6


def test_concurrent_attempts_with_one_key_store_once(server: ServerProcess) -> None:
    """Attempts that overlap: the later ones wait for the first and replay its answer."""
    body = _ndjson("idem-concurrent", 2000)
    key = {"idempotency-key": f"batch-{uuid.uuid4()}"}

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers, timeout=60) as client:
            return await asyncio.gather(*(client.post("/api/v1/logs", content=body,
                                                      headers={**NDJSON, **key}) for _ in range(6)))

    answers = asyncio.run(send_all())
    assert [a.status_code for a in answers] == [200] * 6
    assert all(a.json()["accepted"] == 2000 for a in answers)
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 5
    rows = records(server, "service:idem-concurrent", 2000, limit=10_000)
    assert len(rows) == 2000
    assert len(records(server, "service:idem-concurrent", 2001, limit=10_000, timeout=2)) == 2000


@pytest.mark.parametrize(("path", "ctype", "body"), [
    ("/loki/api/v1/push", "application/json",
     orjson.dumps({"streams": [{"stream": {"service_name": "idem-loki"},
                                "values": [[str(time.time_ns()), "a"], [str(time.time_ns()), "b"]]}]})),
    ("/v1/logs", "application/json", orjson.dumps({"resourceLogs": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "idem-otlp"}}]},
        "scopeLogs": [{"logRecords": [{"body": {"stringValue": "a"}}, {"body": {"stringValue": "b"}}]}]}]})),
])
def test_loki_and_otlp_take_the_header_too(server: ServerProcess, path: str, ctype: str, body: bytes) -> None:
    key = {"idempotency-key": f"batch-{uuid.uuid4()}", "content-type": ctype}
    with server.client() as client:
        first, again = (client.post(path, content=body, headers=key) for _ in range(2))
    assert first.status_code == again.status_code and first.status_code < 300
    assert again.headers["idempotent-replayed"] == "true"
    service = "idem-loki" if "loki" in path else "idem-otlp"
    assert len(records(server, f"service:{service}", 2)) == 2
    assert len(records(server, f"service:{service}", 3, timeout=2)) == 2


def _bulk(*docs: tuple[str, dict[str, object], str | None]) -> bytes:
    lines = []
    for action, doc, doc_id in docs:
        meta: dict[str, object] = {"_index": "idem-es"}
        if doc_id is not None:
            meta["_id"] = doc_id
        lines += [orjson.dumps({action: meta}), orjson.dumps(doc)]
    return b"\n".join(lines) + b"\n"


def test_bulk_create_of_a_known_id_is_409_and_index_is_not_stored_twice(server: ServerProcess) -> None:
    tag = uuid.uuid4().hex[:8]

    def doc(n: int, text: str = "v1") -> dict[str, object]:
        return {"message": f"{tag} doc {n} {text}", "service": "idem-es"}

    with server.client() as client:
        def bulk(body: bytes) -> list[dict[str, object]]:
            answer = client.post("/_bulk", content=body, headers=NDJSON).json()
            return [next(iter(item.values())) for item in answer["items"]]

        first = bulk(_bulk(("create", doc(1), f"{tag}-1"), ("index", doc(2), f"{tag}-2"),
                           ("create", doc(3), None), ("create", doc(4), f"{tag}-4"),
                           ("create", doc(4), f"{tag}-4")))  # the same _id twice in one request
        assert [i["status"] for i in first] == [201, 201, 201, 201, 409]
        assert first[4]["error"]["type"] == "version_conflict_engine_exception"
        again = bulk(_bulk(("create", doc(1), f"{tag}-1"), ("index", doc(2), f"{tag}-2"),
                           ("index", doc(5), f"{tag}-5"), ("index", doc(2, "v2"), f"{tag}-2")))
        assert [i["status"] for i in again] == [409, 200, 201, 200]
        assert [i.get("result") for i in again[1:]] == ["updated", "created", "updated"]
        empty = bulk(_bulk(("create", doc(6), ""), ("index", doc(7), "x" * 513), ("create", doc(8), None)))
        assert [i["status"] for i in empty] == [400, 400, 201]
        assert "must not be empty" in empty[0]["error"]["reason"]
    rows = records(server, f'service:idem-es AND "{tag}"', 7)
    messages = sorted(r["message"] for r in rows)
    # 1, 2 (v1), 3, 4, 5, 2 (v2: a changed source is kept beside the first), 8
    assert messages == sorted(f"{tag} doc {n}" for n in ("1 v1", "2 v1", "3 v1", "4 v1", "5 v1", "2 v2", "8 v1"))
    assert len(records(server, f'service:idem-es AND "{tag}"', 8, timeout=2)) == 7


def test_ids_are_scoped_by_tenant(server: ServerProcess) -> None:
    tag = uuid.uuid4().hex[:8]
    for tenant in ("idem-a", "idem-b"):
        secret = server.create_key("writer", tenant=tenant)
        answer = httpx.post(server.url + "/_bulk", content=_bulk(("create", {"message": f"{tag} {tenant}"}, "same")),
                            headers={**NDJSON, "authorization": f"Bearer {secret}"}, timeout=30).json()
        assert answer["items"][0]["create"]["status"] == 201


@pytest.mark.e2e
def test_replay_survives_a_restart(server_factory) -> None:  # type: ignore[no-untyped-def]
    """kill -9 after the answer; the key is rebuilt from the WAL (and the file) at start."""
    server = server_factory("--batch-max-age", "0.2")
    key = {"idempotency-key": "restart-1", **NDJSON}
    body = _ndjson("idem-restart", 50)
    with server.client() as client:
        assert client.post("/api/v1/logs", content=body, headers=key).status_code == 200
        ids = _bulk(("create", {"message": "restart doc", "service": "idem-restart"}, "r-1"))
        assert client.post("/_bulk", content=ids, headers=NDJSON).json()["errors"] is False
    assert len(records(server, "service:idem-restart", 51)) == 51
    server.kill9()
    server.start()
    with server.client() as client:
        again = client.post("/api/v1/logs", content=body, headers=key)
        assert again.status_code == 200 and again.headers["idempotent-replayed"] == "true"
        answer = client.post("/_bulk", content=ids, headers=NDJSON).json()
        assert answer["items"][0]["create"]["status"] == 409
    assert len(records(server, "service:idem-restart", 52, timeout=3)) == 51


def test_window_zero_turns_it_off(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--batch-max-age", "0.2", "--idempotency-window", "0")
    with server.client() as client:
        for _ in range(2):
            response = client.post("/api/v1/logs", content=_ndjson("idem-off", 1),
                                   headers={**NDJSON, "idempotency-key": "k"})
            assert response.status_code == 200 and "idempotent-replayed" not in response.headers
    assert len(records(server, "service:idem-off", 2)) == 2
