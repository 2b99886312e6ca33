"""Every endpoint × every kind of caller: the status each must get (issue 5; scoped admins, the
metrics role and server-wide retention: issue 21)."""

from __future__ import annotations

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess

LINE = orjson.dumps({"message": "matrix", "service": "checkout"})
BULK = b'{"index":{"_index":"logs"}}\n{"message":"matrix"}\n'
RULE = orjson.dumps({"name": "matrix", "query": "level:ERROR", "condition": "count > 10", "window": "5m"})
CHANNEL = orjson.dumps({"name": "matrix", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}})
DASHBOARD = orjson.dumps({"name": "matrix", "panels": [{"title": "n", "type": "single",
                                                        "query": "* | stats count() as n"}]})
SAVED = orjson.dumps({"name": "matrix", "query": "level:ERROR"})


def unnamed(body: bytes) -> bytes:
    """A body for PUT /…/{name}: the name comes from the path."""
    return orjson.dumps({k: v for k, v in orjson.loads(body).items() if k != "name"})


# endpoint → (method, path, body, status when allowed, permission it needs)
ENDPOINTS = {
    "ingest": ("POST", "/api/v1/logs", LINE, 200, "write"),
    "es.bulk": ("POST", "/_bulk", BULK, 200, "write"),
    "es.index-bulk": ("POST", "/logs-app/_bulk", BULK, 200, "write"),
    "es.license": ("GET", "/_license", None, 200, "write"),
    "es.xpack": ("GET", "/_xpack", None, 200, "write"),
    "es.nodes": ("GET", "/_nodes", None, 200, "write"),
    "es.health": ("GET", "/_cluster/health", None, 200, "write"),
    "es.cat-health": ("GET", "/_cat/health", None, 200, "write"),
    "es.doc": ("POST", "/logs-app/_doc", orjson.dumps({"message": "matrix", "service": "checkout"}), 201, "write"),
    "es.refresh": ("POST", "/logs-app/_refresh", None, 200, "write"),
    "loki.push": ("POST", "/loki/api/v1/push", orjson.dumps({"streams": [{"stream": {"service": "checkout"},
                  "values": [["1793536496000000000", "matrix"]]}]}), 204, "write"),
    "otlp": ("POST", "/v1/logs", orjson.dumps({"resourceLogs": []}), 200, "write"),
    "query": ("POST", "/api/v1/query", orjson.dumps({"q": "service:checkout"}), 200, "read"),
    "fields": ("GET", "/api/v1/fields?q=service:checkout", None, 200, "read"),
    "explain": ("POST", "/api/v1/explain", orjson.dumps({"q": "service:checkout", "since": "1h"}), 200, "read"),
    "trace": ("GET", "/api/v1/traces/5759e988bd862e3fe1be46a994272793", None, 404, "read"),
    "tail": ("GET", "/api/v1/tail?q=level:ERROR", None, 200, "read"),
    "keys.list": ("GET", "/api/v1/keys", None, 200, "admin"),
    "keys.create": ("POST", "/api/v1/keys", orjson.dumps({"role": "reader"}), 201, "admin"),
    "keys.revoke": ("DELETE", "/api/v1/keys/000000000000", None, 404, "admin"),
    "audit": ("GET", "/api/v1/audit", None, 200, "admin"),
    "whoami": ("GET", "/api/v1/whoami", None, 200, "read"),
    "metrics": ("GET", "/metrics", None, 200, "metrics"),
    "healthz": ("GET", "/healthz", None, 200, "public"),
    "readyz": ("GET", "/readyz", None, 200, "public"),
    "es.probe": ("GET", "/", None, 200, "public"),
    # alerting, dashboards and service health (issue 10)
    "alerts.rules.list": ("GET", "/api/v1/alerts/rules", None, 200, "read"),
    "alerts.rules.create": ("POST", "/api/v1/alerts/rules", RULE, 201, "admin"),
    "alerts.rules.get": ("GET", "/api/v1/alerts/rules/none", None, 404, "read"),
    "alerts.rules.put": ("PUT", "/api/v1/alerts/rules/matrix-put", unnamed(RULE), 201, "admin"),
    "alerts.rules.delete": ("DELETE", "/api/v1/alerts/rules/none", None, 404, "admin"),
    "alerts.test": ("POST", "/api/v1/alerts/test", orjson.dumps({"rule": orjson.loads(RULE)}), 200, "read"),
    "alerts.states": ("GET", "/api/v1/alerts", None, 200, "read"),
    "alerts.history": ("GET", "/api/v1/alerts/history", None, 200, "read"),
    "alerts.notifications": ("GET", "/api/v1/alerts/notifications", None, 200, "read"),
    "channels.list": ("GET", "/api/v1/channels", None, 200, "read"),
    "channels.create": ("POST", "/api/v1/channels", CHANNEL, 201, "admin"),
    "channels.get": ("GET", "/api/v1/channels/none", None, 404, "read"),
    "channels.put": ("PUT", "/api/v1/channels/matrix-put", unnamed(CHANNEL), 201, "admin"),
    "channels.delete": ("DELETE", "/api/v1/channels/none", None, 404, "admin"),
    "channels.test": ("POST", "/api/v1/channels/none/test", None, 404, "admin"),
    "silences.list": ("GET", "/api/v1/silences", None, 200, "read"),
    "silences.create": ("POST", "/api/v1/silences", orjson.dumps({"matchers": [{"name": "service", "value": "x"}],
                        "ends_at": "1h"}), 201, "admin"),
    "silences.get": ("GET", "/api/v1/silences/999999", None, 404, "read"),
    "silences.delete": ("DELETE", "/api/v1/silences/999999", None, 404, "admin"),
    "services": ("GET", "/api/v1/services?since=15m", None, 200, "read"),
    "clock.offsets": ("GET", "/api/v1/clock/offsets", None, 200, "read"),
    "clock.estimate": ("POST", "/api/v1/clock/estimate", None, 200, "server-admin"),
    "dashboards.list": ("GET", "/api/v1/dashboards", None, 200, "read"),
    "dashboards.create": ("POST", "/api/v1/dashboards", DASHBOARD, 201, "admin"),
    "dashboards.get": ("GET", "/api/v1/dashboards/none", None, 404, "read"),
    "dashboards.put": ("PUT", "/api/v1/dashboards/matrix-put", unnamed(DASHBOARD), 201, "admin"),
    "dashboards.delete": ("DELETE", "/api/v1/dashboards/none", None, 404, "admin"),
    "dashboards.export": ("GET", "/api/v1/dashboards/none/export", None, 404, "read"),
    "dashboards.import": ("POST", "/api/v1/dashboards/import", orjson.dumps(
        {"format": "logharbor.dashboard/v1", "dashboard": {"name": "matrix-import", "panels": []}}), 201, "admin"),
    "saved.list": ("GET", "/api/v1/saved-queries", None, 200, "read"),
    "saved.create": ("POST", "/api/v1/saved-queries", SAVED, 201, "admin"),
    "saved.get": ("GET", "/api/v1/saved-queries/none", None, 404, "read"),
    "saved.put": ("PUT", "/api/v1/saved-queries/matrix-put", unnamed(SAVED), 201, "admin"),
    "saved.delete": ("DELETE", "/api/v1/saved-queries/none", None, 404, "admin"),
    # retention, delete by query, storage (issue 11)
    "retention.get": ("GET", "/api/v1/retention", None, 200, "server-admin"),
    "retention.put": ("PUT", "/api/v1/retention", orjson.dumps({"rules": []}), 200, "server-admin"),
    "retention.preview": ("POST", "/api/v1/retention/preview", None, 200, "server-admin"),
    "retention.run": ("POST", "/api/v1/retention/run", None, 200, "server-admin"),
    "delete.create": ("POST", "/api/v1/delete", orjson.dumps({"q": "user_id:matrix-nobody"}), 202, "admin"),
    "delete.get": ("GET", "/api/v1/delete/none", None, 404, "admin"),
    "storage": ("GET", "/api/v1/storage", None, 200, "read"),
    # Loki read API and recorded metrics (issue 16)
    "loki.query": ("GET", "/loki/api/v1/query?query=vector(1)%2Bvector(1)", None, 200, "read"),
    "loki.query_range": ("GET", "/loki/api/v1/query_range?query=%7Bservice%3D%22checkout%22%7D", None, 200, "read"),
    "loki.labels": ("GET", "/loki/api/v1/labels", None, 200, "read"),
    "loki.label_values": ("GET", "/loki/api/v1/label/service/values", None, 200, "read"),
    "loki.series": ("GET", "/loki/api/v1/series?match%5B%5D=%7Bservice%3D%22checkout%22%7D", None, 200, "read"),
    "loki.index_stats": ("GET", "/loki/api/v1/index/stats?query=%7Bservice%3D%22checkout%22%7D", None, 200, "read"),
    "loki.index_volume": ("GET", "/loki/api/v1/index/volume?query=%7Bservice%3D%22checkout%22%7D", None, 200, "read"),
    "loki.index_volume_range": ("GET", "/loki/api/v1/index/volume_range?query=%7Bservice%3D%22checkout%22%7D", None, 200, "read"),
    "loki.detected_labels": ("GET", "/loki/api/v1/detected_labels?query=%7Bservice%3D%22checkout%22%7D", None, 200, "read"),
    "loki.detected_fields": ("GET", "/loki/api/v1/detected_fields?query=%7Bservice%3D%22checkout%22%7D", None, 200, "read"),
    "loki.detected_field_values": ("GET", "/loki/api/v1/detected_field/service/values?query=%7Bservice%3D%22checkout%22%7D",
                                   None, 200, "read"),
    "loki.patterns": ("GET", "/loki/api/v1/patterns?query=%7Bservice%3D%22checkout%22%7D", None, 200, "read"),
    "loki.buildinfo": ("GET", "/loki/api/v1/status/buildinfo", None, 200, "read"),
    "loki.ready": ("GET", "/ready", None, 200, "read"),
    "metrics.recorded": ("GET", "/metrics/recorded", None, 200, "recorded"),
}
#: OpenAPI path templates of the endpoints above
TEMPLATES = {"/api/v1/keys/{prefix}", "/api/v1/traces/{trace_id}", "/{index}/_bulk", "/{index}/_doc",
             "/api/v1/alerts/rules/{name}", "/api/v1/channels/{name}", "/api/v1/channels/{name}/test",
             "/api/v1/silences/{silence_id}", "/api/v1/dashboards/{name}", "/api/v1/dashboards/{name}/export",
             "/api/v1/saved-queries/{name}", "/api/v1/delete/{job_id}", "/loki/api/v1/label/{name}/values",
             "/loki/api/v1/detected_field/{name}/values"}
ROLE_MAY = {"admin": {"server-admin", "admin", "write", "read", "metrics", "recorded"},
            "scoped-admin": {"admin", "write", "read", "recorded"},
            "writer": {"write"}, "scoped-writer": {"write"},
            "reader": {"read", "metrics", "recorded"}, "scoped-reader": {"read", "recorded"},
            "metrics": {"metrics", "recorded"}}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    server = ServerProcess(tmp_path_factory.mktemp("sec") / "data", "--batch-max-age", "0.2").start()
    keys = {
        "admin": server.api_key,
        "writer": server.create_key("writer"),
        "reader": server.create_key("reader"),
        "scoped-reader": server.create_key("reader", tenant="acme", services=["checkout"]),
        "scoped-admin": server.create_key("admin", tenant="acme", services=["checkout"]),
        "scoped-writer": server.create_key("writer", tenant="acme"),
        "metrics": server.create_key("metrics"),
    }
    yield server, keys
    server.stop()


def call(server: ServerProcess, endpoint: str, headers: dict[str, str], caller: str = "") -> int:
    """The status of one call (a stream such as tail is closed as soon as its status is known).

    Objects are named after the caller (``matrix-admin``, ``matrix-scoped-admin``), so each role
    that may create one gets its 201 rather than the 409 of a name another role took first.
    """
    method, path, body, _, _ = ENDPOINTS[endpoint]
    path = path.replace("matrix", f"matrix-{caller}")
    body = body.replace(b'"matrix', f'"matrix-{caller}'.encode()) if body else body
    content_type = "application/x-ndjson" if endpoint.startswith("es.") else "application/json"
    with httpx.stream(method, server.url + path, content=body, timeout=30,
                      headers={"content-type": content_type, "accept": "text/event-stream"
                               if endpoint == "tail" else "application/json", **headers}) as response:
        if response.status_code in (401, 403):
            response.read()
            error = response.json()["error"]
            assert error["code"] == ("unauthorized" if response.status_code == 401 else "forbidden")
            assert "acme" not in response.text
        return response.status_code


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("caller", ["none", "wrong", "malformed", "admin", "writer", "reader", "scoped-reader",
                                    "scoped-admin", "scoped-writer", "metrics"])
def test_matrix(secured, endpoint: str, caller: str) -> None:  # type: ignore[no-untyped-def]
    server, keys = secured
    anonymous = {
        "none": {},
        "wrong": {"authorization": "Bearer lh_0123456789ab_notthesecretatallnotthesecret"},
        "malformed": {"x-api-key": "hunter2"},
    }
    headers = anonymous[caller] if caller in anonymous else {"authorization": f"Bearer {keys[caller]}"}
    _, _, _, ok, permission = ENDPOINTS[endpoint]
    if permission == "public":
        expected = ok
    elif caller in anonymous:
        expected = 401
    else:
        expected = ok if permission in ROLE_MAY[caller] else 403
    assert call(server, endpoint, headers, caller) == expected, (endpoint, caller)


def test_every_route_is_in_the_matrix(secured) -> None:  # type: ignore[no-untyped-def]
    """A new endpoint must be added to this matrix (and so to a permission) before it ships."""
    server, _ = secured
    paths = httpx.get(server.url + "/api/openapi.json", timeout=30).json()["paths"]
    known = {path.split("?")[0] for _, path, _, _, _ in ENDPOINTS.values()} | TEMPLATES
    assert set(paths) <= known, f"routes missing from the matrix: {set(paths) - known}"


def test_other_ways_to_present_a_key(secured) -> None:  # type: ignore[no-untyped-def]
    server, keys = secured
    assert httpx.get(server.url + "/api/v1/whoami", headers={"x-api-key": keys["reader"]}).json()["role"] == "reader"
    basic = httpx.get(server.url + "/api/v1/whoami", auth=("grafana", keys["reader"]))
    assert basic.json()["role"] == "reader"
    import base64

    elastic = base64.b64encode(f"filebeat:{keys['writer']}".encode()).decode()
    response = httpx.post(server.url + "/_bulk", content=BULK, timeout=30,
                          headers={"authorization": f"ApiKey {elastic}", "content-type": "application/x-ndjson"})
    assert response.status_code == 200 and response.json()["errors"] is False
    template = httpx.put(server.url + "/_component_template/logs-settings", json={"template": {}}, timeout=30,
                         headers={"authorization": f"ApiKey {elastic}"})
    assert template.status_code != 403
