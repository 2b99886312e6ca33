"""Issue 21 item 1: a scoped admin key never mints a wider key and acts only inside its scope.

Each test is the outside tester's attack against a real server process.
"""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess


def as_key(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    server = ServerProcess(tmp_path_factory.mktemp("scoped-admin") / "data", "--batch-max-age", "0.2").start()
    acme_writer = server.create_key("writer", tenant="acme")
    globex_writer = server.create_key("writer", tenant="globex")
    for key, tenant in ((acme_writer, "acme"), (globex_writer, "globex")):
        body = b"\n".join(orjson.dumps({"message": f"{tenant} record {i}", "service": svc, "user_id": "u-del"})
                          for i, svc in enumerate(["checkout", "api"]))
        assert httpx.post(server.url + "/api/v1/logs", content=body, headers=as_key(key), timeout=30).status_code == 200
    assert server.wait_rows(4) == 4
    keys = {
        "acme-admin": server.create_key("admin", tenant="acme", services=["checkout"]),
        "acme-wide-admin": server.create_key("admin", tenant="acme"),
        "globex-reader": server.create_key("reader", tenant="globex"),
    }
    yield server, keys
    server.stop()


def test_a_scoped_admin_cannot_mint_an_unscoped_key(srv) -> None:  # type: ignore[no-untyped-def]
    server, keys = srv
    with server.client(headers=as_key(keys["acme-admin"])) as c:
        for wider in ({"role": "admin", "tenant": "globex"}, {"role": "reader", "services": ["checkout", "api"]},
                      {"role": "reader", "tenant": "globex", "services": ["checkout"]}, {"role": "metrics"}):
            response = c.post("/api/v1/keys", json=wider)
            assert response.status_code == 403, (wider, response.text)
            assert response.json()["error"]["code"] == "forbidden"
        # what it leaves open is inherited, never widened: the new key reads only acme/checkout
        made = c.post("/api/v1/keys", json={"role": "admin"})
        assert made.status_code == 201, made.text
        assert (made.json()["tenant"], made.json()["services"]) == ("acme", ["checkout"])
    rows = httpx.post(server.url + "/api/v1/query", json={"q": "*", "from": "now-1d", "limit": 100},
                      headers=as_key(made.json()["key"]), timeout=30).json()["rows"]
    assert sorted(r["message"] for r in rows) == ["acme record 0"]


def test_a_scoped_admin_cannot_revoke_or_list_keys_outside_its_scope(srv) -> None:  # type: ignore[no-untyped-def]
    server, keys = srv
    bootstrap = server.api_key[3:15]
    with server.client(headers=as_key(keys["acme-admin"])) as c:
        assert c.delete(f"/api/v1/keys/{bootstrap}").status_code == 404
        listed = c.get("/api/v1/keys").json()["keys"]
    assert bootstrap not in {k["prefix"] for k in listed}
    assert {(k["tenant"], tuple(k["services"] or ())) for k in listed} <= {("acme", ("checkout",))}
    assert server.client().get("/api/v1/whoami").status_code == 200  # the bootstrap admin still works


def test_a_scoped_admin_reads_only_its_scope_of_the_audit_log(srv) -> None:  # type: ignore[no-untyped-def]
    server, keys = srv
    with server.client(headers=as_key(keys["acme-admin"])) as c:
        c.post("/api/v1/keys", json={"role": "reader", "name": "made by acme"}).raise_for_status()
        entries = c.get("/api/v1/audit", params={"limit": 1000}).json()["entries"]
    mine = keys["acme-admin"][3:15]
    assert entries and {e["actor"] for e in entries} <= {mine} | {
        k["prefix"] for k in server.client(headers=as_key(keys["acme-admin"])).get("/api/v1/keys").json()["keys"]}
    assert server.api_key[3:15] not in {e["actor"] for e in entries}  # the bootstrap admin's creations
    assert not [e for e in entries if e["action"] == "auth.failed"]


def test_a_scoped_admin_cannot_change_retention(srv) -> None:  # type: ignore[no-untyped-def]
    server, keys = srv
    with server.client(headers=as_key(keys["acme-wide-admin"])) as c:
        response = c.put("/api/v1/retention", json={"rules": [{"name": "wipe", "hot": "1h", "delete": "1h"}]})
        assert response.status_code == 403 and "server-wide" in response.json()["error"]["message"]
        assert c.get("/api/v1/retention").status_code == 403
        assert c.post("/api/v1/retention/run").status_code == 403
    assert server.client().get("/api/v1/retention").json().get("rules", []) == []


def test_a_scoped_admins_delete_by_query_stays_inside_its_scope(srv) -> None:  # type: ignore[no-untyped-def]
    server, keys = srv
    with server.client(headers=as_key(keys["acme-admin"])) as c:
        job = c.post("/api/v1/delete", json={"q": "user_id:u-del AND service:api"})
        assert job.status_code == 202, job.text
        job_id = job.json()["id"]
    with server.client() as admin:
        other = admin.post("/api/v1/delete", json={"q": "user_id:nobody-at-all"}).json()["id"]
        assert admin.get(f"/api/v1/delete/{job_id}").status_code == 200
    with server.client(headers=as_key(keys["acme-admin"])) as c:
        assert c.get(f"/api/v1/delete/{job_id}").status_code == 200
        assert c.get(f"/api/v1/delete/{other}").status_code == 404  # the unscoped admin's job
    with server.client() as admin:  # both jobs have run: the acme/checkout one erased nothing
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and {admin.get(f"/api/v1/delete/{j}").json()["state"]
                                                for j in (job_id, other)} != {"done"}:
            time.sleep(0.1)
        assert admin.get(f"/api/v1/delete/{job_id}").json()["deleted"] == 0
    messages = sorted(r["message"] for r in server.query("*", **{"from": "now-1d", "limit": 100})["rows"])
    assert messages == ["acme record 0", "acme record 1", "globex record 0", "globex record 1"]


def test_a_metrics_key_scrapes_and_reads_nothing_else(srv) -> None:  # type: ignore[no-untyped-def]
    server, _ = srv
    metrics = server.create_key("metrics")
    assert httpx.get(server.url + "/metrics", headers=as_key(metrics), timeout=30).status_code == 200
    assert httpx.get(server.url + "/metrics/recorded", headers=as_key(metrics), timeout=30).status_code == 200
    assert httpx.post(server.url + "/api/v1/query", json={"q": "*"}, headers=as_key(metrics),
                      timeout=30).status_code == 403
    scoped = server.client().post("/api/v1/keys", json={"role": "metrics", "tenant": "acme"})
    assert scoped.status_code == 400 and "server-wide" in scoped.json()["error"]["message"]


def test_scoped_readers_do_not_see_metrics_of_other_services(srv) -> None:  # type: ignore[no-untyped-def]
    """Item 4: /metrics is server-wide (every service's record counts): scoped keys get 403."""
    server, keys = srv
    response = httpx.get(server.url + "/metrics", headers=as_key(keys["globex-reader"]), timeout=30)
    assert response.status_code == 403 and "/api/v1/storage" in response.json()["error"]["message"]
    assert "logharbor_tier_service_records" not in response.text
    assert httpx.get(server.url + "/metrics", headers=as_key(keys["acme-admin"]), timeout=30).status_code == 403


def test_admin_audit_rows_carry_the_client_address(srv) -> None:  # type: ignore[no-untyped-def]
    """Item 13: admin actions are audited with the address they came from."""
    server, _ = srv
    with server.client() as c:
        c.put("/api/v1/saved-queries/audited", json={"query": "level:ERROR"}).raise_for_status()
        prefix = c.post("/api/v1/keys", json={"role": "reader"}).json()["prefix"]
        c.delete(f"/api/v1/keys/{prefix}").raise_for_status()
        entries = c.get("/api/v1/audit", params={"limit": 20}).json()["entries"]
    by_action = {e["action"]: e for e in reversed(entries)}
    for action in ("saved_query.create", "key.create", "key.revoke"):
        assert by_action[action]["remote"] == "127.0.0.1", by_action[action]
