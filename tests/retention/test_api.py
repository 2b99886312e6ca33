"""The retention API on a real server process: rules, preview, run, storage, delete by query
with progress and audit, cold records still found by queries."""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess

DAY_S = 86_400


def _ingest(server: ServerProcess, records: list[dict]) -> None:  # type: ignore[type-arg]
    body = b"\n".join(orjson.dumps(r) for r in records)
    with server.client() as client:
        response = client.post("/api/v1/logs", content=body, headers={"content-type": "application/x-ndjson"})
        assert response.status_code == 200, response.text
        assert response.json()["accepted"] == len(records)


def _records(now: float) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for age_days in (0.1, 10, 40):
        for i in range(20):
            out.append({"timestamp": now - age_days * DAY_S - i, "level": "ERROR" if i % 4 == 0 else "INFO",
                        "service": "checkout" if i % 2 else "alb-edge", "source": "alb" if i % 2 == 0 else "app",
                        "message": f"request {i} aged {age_days}d", "user_id": f"u-{i % 5}",
                        "trace_id": f"{i + int(age_days * 1000):032x}"})
    return out


RULES = {"rules": [
    {"name": "alb", "match": {"source": "alb"}, "hot": "7d", "warm": "30d", "cold": "365d", "priority": 1},
    {"name": "everything", "hot": "5d", "cold": "90d"},
]}


@pytest.mark.e2e
def test_rules_run_storage_and_delete(server: ServerProcess) -> None:
    now = time.time()
    _ingest(server, _records(now))
    assert server.wait_rows(60) >= 60
    with server.client() as client:
        bad = client.put("/api/v1/retention", json={"rules": [{"name": "x", "hot": "9d", "warm": "2d"}]})
        assert bad.status_code == 400 and "warm" in bad.json()["error"]["message"]
        assert client.put("/api/v1/retention", json=RULES).status_code == 200
        shown = client.get("/api/v1/retention").json()
        assert [r["name"] for r in shown["rules"]] == ["alb", "everything"]
        preview = {r["rule"]: r for r in client.post("/api/v1/retention/preview").json()["rules"]}
        # alb (source alb = even i): 10 at 10d → warm, 10 at 40d → cold; the rest: 20 → cold
        assert preview["alb"]["to_warm"] == 10 and preview["alb"]["to_cold"] == 10
        assert preview["everything"]["to_cold"] == 20 and preview["everything"]["to_warm"] == 0
        done = client.post("/api/v1/retention/run").json()
        assert done["moved"] == 40
        storage = client.get("/api/v1/storage").json()
        assert {t: storage["tiers"][t]["records"] for t in ("hot", "warm", "cold")} == \
            {"hot": 20, "warm": 10, "cold": 30}
        assert storage["tiers"]["cold"]["files"] >= 2 and storage["tiers"]["cold"]["bytes"] > 0
        assert sum(g["records"] for g in storage["groups"]) == 60
        # cold records answer queries through the same language
        found = client.post("/api/v1/query", json={"q": "\"aged 40d\" AND user_id:u-1", "from": "now-400d"}).json()
        assert len(found["rows"]) == 4
        metrics = client.get("/metrics").text
        assert 'logharbor_tier_records{tier="cold"} 30.0' in metrics

        # delete by query: every tier, nothing else
        job = client.post("/api/v1/delete", json={"q": "user_id:u-3"})
        assert job.status_code == 202
        job_id = job.json()["id"]
        deadline = time.monotonic() + 300  # a delete job walks every tier: minutes on a loaded machine
        state = job.json()
        while state["state"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
            state = client.get(f"/api/v1/delete/{job_id}").json()
        assert state["state"] == "done", state
        assert state["deleted"] == 12
        assert set(state["progress"]["tiers_done"]) == {"hot", "warm", "cold"}
        assert client.post("/api/v1/query", json={"q": "user_id:u-3", "from": "now-400d"}).json()["rows"] == []
        left = client.post("/api/v1/query", json={"q": "* | stats count() as n", "from": "now-400d"}).json()
        assert int(left["rows"][0]["n"]) == 48, left
        audit = client.get("/api/v1/audit", params={"action": "delete.done"}).json()
        assert any(job_id == e["target"] for e in audit["entries"])
        assert client.get("/api/v1/delete/nope").status_code == 404
        assert client.post("/api/v1/delete", json={"q": "level:("}).status_code == 400


def test_reader_cannot_delete(server: ServerProcess) -> None:
    reader = server.create_key("reader")
    response = httpx.post(server.url + "/api/v1/delete", json={"q": "user_id:u-1"},
                          headers={"authorization": f"Bearer {reader}"})
    assert response.status_code == 403


@pytest.mark.e2e
def test_a_scoped_admin_deletes_only_in_its_scope(server: ServerProcess) -> None:
    now = time.time()
    _ingest(server, [{"timestamp": now - i, "service": service, "message": f"m {i}", "user_id": "u-9"}
                     for service in ("checkout", "search") for i in range(5)])
    assert server.wait_rows(10) >= 10
    scoped = server.create_key("admin", services=["checkout"])
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {scoped}"}, timeout=30) as client:
        job = client.post("/api/v1/delete", json={"q": "user_id:u-9"}).json()
        deadline = time.monotonic() + 300  # a delete job walks every tier: minutes on a loaded machine
        while job["state"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = client.get(f"/api/v1/delete/{job['id']}").json()
    assert job["state"] == "done" and job["deleted"] == 5
    left = server.query("user_id:u-9 | stats count() as n by service", **{"from": "now-1h"})["rows"]
    assert {r["service"]: int(r["n"]) for r in left} == {"search": 5}


def test_encrypted_store_keeps_moved_records_sealed(server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from logharbor.sealing import generate_key_file

    keyfile = tmp_path / "keys"
    generate_key_file(keyfile, 1)
    server = server_factory("--encryption-key-file", str(keyfile))
    marker = "sealed-marker-7f3a9c"
    _ingest(server, [{"timestamp": time.time() - 10 * DAY_S - i, "source": "alb", "message": f"{marker} {i}"}
                     for i in range(20)])
    assert server.wait_rows(20) >= 20
    with server.client() as client:
        assert client.get("/api/v1/retention").json()["cold_storage"] is None  # Parquet is not sealed
        assert client.put("/api/v1/retention", json=RULES).status_code == 200
        assert client.post("/api/v1/retention/run").json()["moved"] == 20
        tiers = client.get("/api/v1/storage").json()["tiers"]
        assert (tiers["hot"]["records"], tiers["warm"]["records"], tiers["cold"]["records"]) == (0, 20, 0)
        assert len(client.post("/api/v1/query", json={"q": marker, "from": "now-30d"}).json()["rows"]) == 20
    server.stop()
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            assert marker.encode() not in path.read_bytes(), f"{path} holds a record in the clear"
