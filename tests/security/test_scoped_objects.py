"""Issue 21 item 14 (and item 1 on rules, channels, silences): alert rules, channels, silences,
dashboards and saved queries carry the scope of the key that made them; a key sees and changes
only those its scope covers.

The attacks: a scoped reader lists every rule's query (and every dashboard's, every saved query);
a scoped admin replaces or deletes a server-wide rule, points its rule at a channel it cannot see,
silences alerts it cannot see, or runs a rule over every tenant's records.
"""

from __future__ import annotations

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess

OBJECTS = {  # path → body of a PUT
    "/api/v1/alerts/rules/{name}": {"query": "user_id:{name}", "condition": "count > 0", "window": "5m"},
    "/api/v1/dashboards/{name}": {"panels": [{"title": "n", "type": "single",
                                              "query": "user_id:{name} | stats count() as n"}]},
    "/api/v1/saved-queries/{name}": {"query": "user_id:{name}"},
    "/api/v1/channels/{name}": {"kind": "webhook", "config": {"url": "http://127.0.0.1:9/{name}"}},
}
LISTS = {"/api/v1/alerts/rules": "rules", "/api/v1/dashboards": "items", "/api/v1/saved-queries": "items",
         "/api/v1/channels": "channels"}


def as_key(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def put_all(server: ServerProcess, key: str, name: str) -> None:
    with server.client(headers=as_key(key)) as c:
        for template, body in OBJECTS.items():
            filled = orjson.loads(orjson.dumps(body).replace(b"{name}", name.encode()))
            response = c.put(template.format(name=name), json=filled)
            assert response.status_code == 201, (template, response.text)


def visible(server: ServerProcess, key: str) -> set[str]:
    names = set()
    with server.client(headers=as_key(key)) as c:
        for path, field in LISTS.items():
            response = c.get(path)
            assert response.status_code == 200, response.text
            names |= {item["name"] for item in response.json()[field]}
            if "globex-secret-user" not in names:  # nor in any query text shown
                assert "globex-secret-user" not in response.text
    return names


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    server = ServerProcess(tmp_path_factory.mktemp("objects") / "data", "--batch-max-age", "0.2").start()
    keys = {
        "acme-admin": server.create_key("admin", tenant="acme"),
        "acme-reader": server.create_key("reader", tenant="acme"),
        "acme-checkout": server.create_key("reader", tenant="acme", services=["checkout"]),
        "globex-admin": server.create_key("admin", tenant="globex"),
        "globex-reader": server.create_key("reader", tenant="globex"),
    }
    put_all(server, keys["acme-admin"], "acme-ops")
    put_all(server, keys["globex-admin"], "globex-secret-user")
    put_all(server, server.api_key, "global-ops")
    yield server, keys
    server.stop()


def test_objects_are_seen_only_inside_their_scope(srv) -> None:  # type: ignore[no-untyped-def]
    server, keys = srv
    assert visible(server, keys["acme-reader"]) == {"acme-ops"}
    assert visible(server, keys["acme-admin"]) == {"acme-ops"}
    assert visible(server, keys["globex-reader"]) == {"globex-secret-user"}
    assert visible(server, keys["acme-checkout"]) == set()  # the objects may read all of acme
    assert {"acme-ops", "globex-secret-user", "global-ops", "Reference stack"} <= visible(server, server.api_key)
    with server.client(headers=as_key(keys["acme-reader"])) as c:
        for template in OBJECTS:
            assert c.get(template.format(name="globex-secret-user")).status_code == 404
            assert c.get(template.format(name="global-ops")).status_code == 404
            shown = c.get(template.format(name="acme-ops"))
            assert shown.status_code == 200 and shown.json()["scope"] == {"tenant": "acme", "services": None}
        assert c.get("/api/v1/dashboards/globex-secret-user/export").status_code == 404


def test_a_scoped_admin_cannot_replace_or_delete_what_it_cannot_see(srv) -> None:  # type: ignore[no-untyped-def]
    server, keys = srv
    with server.client(headers=as_key(keys["acme-admin"])) as c:
        for template, body in OBJECTS.items():
            filled = orjson.loads(orjson.dumps(body).replace(b"{name}", b"hijacked"))
            response = c.put(template.format(name="global-ops"), json=filled)
            assert response.status_code == 409, (template, response.text)
            assert "global" not in response.json()["error"]["message"].replace("global-ops", "")
            assert c.delete(template.format(name="global-ops")).status_code == 404
        imported = c.post("/api/v1/dashboards/import", params={"overwrite": "true"}, json={
            "format": "logharbor.dashboard/v1", "dashboard": {"name": "global-ops", "panels": []}})
        assert imported.status_code == 409
    rule = server.client().get("/api/v1/alerts/rules/global-ops").json()
    assert rule["spec"]["query"] == "user_id:global-ops" and rule["scope"] is None
    # an unscoped admin edits a tenant's object: it stays the tenant's
    with server.client() as c:
        assert c.put("/api/v1/saved-queries/acme-ops", json={"query": "level:ERROR"}).status_code == 200
    shown = httpx.get(server.url + "/api/v1/saved-queries/acme-ops", headers=as_key(keys["acme-reader"]))
    assert shown.status_code == 200 and shown.json()["query"] == "level:ERROR"


def test_a_scoped_rule_names_only_channels_inside_its_scope(srv) -> None:  # type: ignore[no-untyped-def]
    server, keys = srv
    with server.client(headers=as_key(keys["acme-admin"])) as c:
        for channel in ("global-ops", "globex-secret-user"):
            response = c.put("/api/v1/alerts/rules/acme-paging", json={
                "query": "level:ERROR", "condition": "count > 0", "window": "5m", "channels": [channel]})
            assert response.status_code == 400 and "no channel named" in response.json()["error"]["message"]
        assert c.put("/api/v1/alerts/rules/acme-paging", json={
            "query": "level:ERROR", "condition": "count > 0", "window": "5m", "channels": ["acme-ops"]}).status_code == 201
        assert c.post("/api/v1/channels/global-ops/test").status_code == 404


def test_silences_are_scoped(srv) -> None:  # type: ignore[no-untyped-def]
    server, keys = srv
    with server.client(headers=as_key(keys["acme-admin"])) as c:
        made = c.post("/api/v1/silences", json={"matchers": [{"name": "alertname", "op": "=~", "value": ".*"}],
                                                "ends_at": "1h"})
        assert made.status_code == 201 and made.json()["scope"] == {"tenant": "acme", "services": None}
    with server.client() as c:
        mine = c.post("/api/v1/silences", json={"matchers": [{"name": "service", "value": "x"}], "ends_at": "1h"})
        global_id = mine.json()["id"]
    for reader, expected in (("acme-reader", {made.json()["id"]}), ("globex-reader", set())):
        listed = httpx.get(server.url + "/api/v1/silences", headers=as_key(keys[reader])).json()["silences"]
        assert {s["id"] for s in listed} == expected
    with server.client(headers=as_key(keys["acme-admin"])) as c:
        assert c.delete(f"/api/v1/silences/{global_id}").status_code == 404


def test_a_scoped_rule_reads_only_its_scope(srv) -> None:  # type: ignore[no-untyped-def]
    server, keys = srv
    acme, globex = server.create_key("writer", tenant="acme"), server.create_key("writer", tenant="globex")
    for key, tenant in ((acme, "acme"), (globex, "globex"), (globex, "globex")):
        body = orjson.dumps({"message": "scoped rule", "service": "checkout", "level": "ERROR", "tag": tenant})
        assert httpx.post(server.url + "/api/v1/logs", content=body, headers=as_key(key)).status_code == 200
    server.wait_rows(3)
    with server.client(headers=as_key(keys["acme-admin"])) as c:
        assert c.put("/api/v1/alerts/rules/acme-counts", json={
            "query": "tag:*", "condition": "count > 0", "window": "1h", "group_by": ["tag"]}).status_code == 201
    with server.client() as c:  # even run by an unscoped admin, the rule reads acme's records only
        groups = c.post("/api/v1/alerts/test", json={"name": "acme-counts"}).json()["groups"]
    assert {(g["group"]["tag"], g["value"]) for g in groups} == {("acme", 1)}


def test_a_scoped_rule_s_alerts_stay_in_its_scope_whatever_its_labels(srv) -> None:  # type: ignore[no-untyped-def]
    """A globex rule labelled ``tenant: acme`` (static labels a scoped admin writes) is not an acme
    alert: its alerts, history and notifications (they carry globex's figures and text) are not
    shown to acme keys. Labels place alerts of *server-wide* rules only."""
    import time

    server, keys = srv
    rule = {"query": "*", "condition": "count >= 0", "window": "1h", "interval": "10s",
            "labels": {"tenant": "acme", "service": "checkout"}, "channels": ["globex-secret-user"],
            "annotations": {"summary": "globex-secret-user {{value}}"}}
    with server.client(headers=as_key(keys["globex-admin"])) as c:
        assert c.put("/api/v1/alerts/rules/globex-spoof", json=rule).status_code == 201
        deadline = time.monotonic() + 60  # the first evaluation slot is at most 10 s away
        while time.monotonic() < deadline:
            notes = c.get("/api/v1/alerts/notifications", params={"rule": "globex-spoof"}).json()["notifications"]
            if notes and c.get("/api/v1/alerts/history", params={"rule": "globex-spoof"}).json()["history"]:
                break
            time.sleep(0.2)  # polling the condition, with a deadline
        assert notes, "the globex rule never notified"
        assert c.get("/api/v1/alerts").json()["alerts"]
    for name in ("acme-reader", "acme-admin", "acme-checkout"):
        with server.client(headers=as_key(keys[name])) as c:
            for path, field in (("/api/v1/alerts", "alerts"), ("/api/v1/alerts/history", "history"),
                                ("/api/v1/alerts/notifications", "notifications")):
                for params in ({}, {"rule": "globex-spoof"}):
                    response = c.get(path, params=params)
                    assert response.status_code == 200, response.text
                    assert "globex" not in response.text, (name, path, params, response.json()[field])
