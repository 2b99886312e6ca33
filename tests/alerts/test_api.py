"""The alerting, dashboard and service-health API on a real server process."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from tests.conftest import ROOT, ServerProcess

from .conftest import Receiver

RULE = {"name": "api errors", "query": "level:ERROR AND service:api-svc", "condition": "count > 2",
        "window": "5m", "interval": "10s", "annotations": {"summary": "{{value}} errors"}}


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("alerts-api") / "data", "--batch-max-age", "0.2").start()
    yield server
    server.stop()


def error_of(response: httpx.Response) -> str:
    return response.json()["error"]["message"]


def fields_of(response: httpx.Response) -> list[str | None]:
    """The rule fields a 4xx names (``error.detail.fields``), in order."""
    return [f["field"] for f in response.json()["error"].get("detail", {}).get("fields", [])]


def test_rule_crud_and_validation(srv: ServerProcess) -> None:
    with srv.client() as c:
        created = c.post("/api/v1/alerts/rules", json=RULE)
        assert created.status_code == 201 and created.json()["version"] == 1
        exists = c.post("/api/v1/alerts/rules", json=RULE)
        assert exists.status_code == 409 and fields_of(exists) == ["name"]
        bad = {  # message: (the field detail.fields names, the rule)
            "query: expected a value after 'level:' at 7": ("query", {**RULE, "query": "level:("}),
            "condition: a count threshold cannot be negative (-1.0)": ("condition", {**RULE, "condition": "count > -1"}),
            "condition: a ratio threshold is between 0 and 1, not 5.0":
                ("condition", {**RULE, "condition": "ratio(status:>=500) > 5"}),
            "channels: no channel named 'nowhere'": ("channels", {**RULE, "channels": ["nowhere"]}),
            "annotation 'summary': unknown template name {{host}}":
                ("annotations", {**RULE, "annotations": {"summary": "{{host}}"}}),
            "window: '5 minutes' is not a duration": ("window", {**RULE, "window": "5 minutes"}),
            "interval must be at least 10s": ("interval", {**RULE, "interval": "5s"}),
            "condition: column 'p99' is not in the query's output (n)": ("condition", {
                **RULE, "query": "* | stats count() as n", "condition": "p99 > 1"}),
        }
        for expected, (field, body) in bad.items():
            answer = c.put("/api/v1/alerts/rules/api errors", json=body)
            assert answer.status_code == 400, body
            assert answer.json()["error"]["code"] == "invalid_rule"
            assert expected in error_of(answer), (expected, error_of(answer))
            assert fields_of(answer) == [field], (expected, answer.json())
            # the preview endpoint refuses the same rule the same way (a form says it before saving)
            assert fields_of(c.post("/api/v1/alerts/test", json={"rule": {**body, "name": "x"}})) == [field]
        # every bad field at once, each named: a query that does not parse and every bad duration
        both = c.put("/api/v1/alerts/rules/api errors", json={**RULE, "query": "level:(", "window": "soon",
                                                               "for": "-1m"})
        assert fields_of(both) == ["query", "window", "for"], both.json()
        replaced = c.put("/api/v1/alerts/rules/api errors", json={**RULE, "condition": "count > 3"})
        assert replaced.status_code == 200 and replaced.json()["version"] == 2
        assert c.get("/api/v1/alerts/rules/api errors").json()["spec"]["condition"]["threshold"] == 3
        other = c.put("/api/v1/alerts/rules/other", json=RULE)
        assert error_of(other).startswith("name: the body says") and fields_of(other) == ["name"]
        reader = srv.create_key("reader")
        as_reader = {"authorization": f"Bearer {reader}"}
        assert c.get("/api/v1/alerts/rules", headers=as_reader).status_code == 200
        assert c.delete("/api/v1/alerts/rules/api errors", headers=as_reader).status_code == 403
        assert c.delete("/api/v1/alerts/rules/api errors").status_code == 200
        assert c.get("/api/v1/alerts/rules/api errors").status_code == 404
        actions = [e["action"] for e in c.get("/api/v1/audit").json()["entries"]]
        assert {"alert_rule.create", "alert_rule.update", "alert_rule.delete"} <= set(actions)


@pytest.mark.slow
def test_channels_masked_secrets_test_send_and_in_use(srv: ServerProcess, receiver: Receiver) -> None:
    receiver.secret = "channel-secret"
    with srv.client() as c:
        body = {"name": "team hook", "kind": "webhook", "config": {"url": receiver.url, "secret": "channel-secret"}}
        assert c.post("/api/v1/channels", json=body).status_code == 201
        shown = c.get("/api/v1/channels/team hook").json()
        assert shown["config"]["secret"] == "********"
        # PUT back what GET showed: the masked secret keeps the stored one
        assert c.put("/api/v1/channels/team hook", json={"kind": "webhook", "config": shown["config"]}).status_code == 200
        sent = c.post("/api/v1/channels/team hook/test")
        assert sent.status_code == 200 and receiver.requests[0]["signature_ok"]
        assert receiver.requests[0]["body"]["status"] == "test"
        bad = c.post("/api/v1/channels", json={"name": "x", "kind": "email", "config": {"host": "h", "to": []}})
        assert bad.status_code == 400 and "from" in error_of(bad) and "to" in error_of(bad)
        assert "unknown channel kind 'pager'" in error_of(c.post("/api/v1/channels", json={
            "name": "x", "kind": "pager", "config": {}}))
        c.post("/api/v1/channels", json={"name": "dead", "kind": "webhook", "config": {"url": "http://127.0.0.1:9/"}})
        refused = c.post("/api/v1/channels/dead/test")
        assert refused.status_code == 502 and refused.json()["error"]["code"] == "delivery_failed"
        assert c.put("/api/v1/alerts/rules/uses hook", json={**RULE, "name": "uses hook",
                                                             "channels": ["team hook"]}).status_code == 201
        in_use = c.delete("/api/v1/channels/team hook")
        assert in_use.status_code == 409 and "uses hook" in error_of(in_use)
        c.delete("/api/v1/alerts/rules/uses hook")
        assert c.delete("/api/v1/channels/team hook").status_code == 200


def test_silences_api(srv: ServerProcess) -> None:
    with srv.client() as c:
        made = c.post("/api/v1/silences", json={"matchers": [{"name": "service", "value": "web-.*", "op": "=~"}],
                                                "ends_at": "2h", "comment": "deploy"})
        assert made.status_code == 201 and made.json()["state"] == "active"
        sid = made.json()["id"]
        assert sid in [s["id"] for s in c.get("/api/v1/silences").json()["silences"]]
        assert "bad regex" in error_of(c.post("/api/v1/silences", json={
            "matchers": [{"name": "a", "value": "(", "op": "=~"}], "ends_at": "1h"}))
        assert "future" in error_of(c.post("/api/v1/silences", json={
            "matchers": [{"name": "a", "value": "b"}], "ends_at": "2020-01-01T00:00:00Z"}))
        assert c.delete(f"/api/v1/silences/{sid}").status_code == 200
        assert c.get(f"/api/v1/silences/{sid}").json()["state"] == "expired"
        assert sid not in [s["id"] for s in c.get("/api/v1/silences").json()["silences"]]
        assert c.delete(f"/api/v1/silences/{sid}").status_code == 404


def test_dashboards_and_saved_queries(srv: ServerProcess) -> None:
    with srv.client() as c:
        names = [d["name"] for d in c.get("/api/v1/dashboards").json()["items"]]
        assert "Reference stack" in names  # installed on the fresh server for the demo
        exported = c.get("/api/v1/dashboards/Reference stack/export").json()
        assert exported["format"] == "logharbor.dashboard/v1" and len(exported["dashboard"]["panels"]) >= 5
        assert {p["type"] for p in exported["dashboard"]["panels"]} == {"timechart", "table", "single", "top", "logs"}
        for panel in exported["dashboard"]["panels"]:  # every shipped panel runs on the server
            assert c.post("/api/v1/query", json={"q": panel["query"], "since": "1h"}).status_code == 200, panel
        copy = {**exported, "dashboard": {**exported["dashboard"], "name": "Copy"}}
        assert c.post("/api/v1/dashboards/import", json=copy).status_code == 201
        assert c.post("/api/v1/dashboards/import", json=copy).status_code == 409
        assert c.post("/api/v1/dashboards/import?overwrite=true", json=copy).status_code == 200
        again = c.get("/api/v1/dashboards/Copy/export").json()
        assert again["dashboard"] == copy["dashboard"]
        bad = c.put("/api/v1/dashboards/Broken", json={"panels": [{"title": "t", "type": "timechart",
                                                                   "query": "level:ERROR"}]})
        assert bad.status_code == 400 and "panels.0: a timechart panel needs a '| timechart …' query" in error_of(bad)
        assert "not a dashboard export" in error_of(c.post("/api/v1/dashboards/import", json={"name": "x"}))
        assert c.delete("/api/v1/dashboards/Copy").status_code == 200
        saved = {"name": "slow checkout", "query": "service:checkout AND duration_ms:>1000", "time_range": "1h"}
        assert c.post("/api/v1/saved-queries", json=saved).status_code == 201
        assert c.get("/api/v1/saved-queries/slow checkout").json()["query"] == saved["query"]
        assert c.put("/api/v1/saved-queries/slow checkout", json={**saved, "time_range": "4h"}).status_code == 200
        assert "query:" in error_of(c.post("/api/v1/saved-queries", json={"name": "b", "query": "a:("}))
        reader = {"authorization": f"Bearer {srv.create_key('reader')}"}
        assert c.get("/api/v1/saved-queries", headers=reader).status_code == 200
        assert c.delete("/api/v1/saved-queries/slow checkout", headers=reader).status_code == 403


def test_services_health_per_layer_and_scope(srv: ServerProcess) -> None:
    now = time.time_ns()
    records = []
    for i in range(100):
        ts = now - 60 * 10**9 + i * 10**8
        status = 502 if i % 10 == 0 else 200
        records.append({"timestamp": ts, "service": "svc-alb", "source": "alb", "message": "alb",
                        "http": {"status": status, "duration_ms": 20.0 + i}})
        records.append({"timestamp": ts, "service": "svc-nginx", "source": "nginx", "message": "nginx",
                        "http": {"status": status, "duration_ms": 15.0 + i}})
        records.append({"timestamp": ts, "service": "svc-app", "source": "app", "message": "app",
                        "http": {"status": 200 if i % 20 else 500, "duration_ms": 10.0 + i}})
        records.append({"timestamp": ts, "service": "svc-app", "source": "app", "message": "no request"})
    before = srv.store_rows()
    srv.ingest(records, wait=False)
    srv.wait_rows(before + len(records))
    with srv.client() as c:
        answer = c.get("/api/v1/services", params={"since": "5m"}).json()
        rows = {(s["service"], s["source"]): s for s in answer["services"]}
        alb, app = rows[("svc-alb", "alb")], rows[("svc-app", "app")]
        assert alb["requests"] == 100 and alb["errors"] == 10 and alb["error_ratio"] == 0.1
        assert app["requests"] == 100 and app["errors"] == 5  # the record without http is not a request
        assert rows[("svc-nginx", "nginx")]["requests"] == 100
        assert 65 <= alb["p50_ms"] <= 75 and alb["p99_ms"] >= 115 and alb["p95_ms"] >= alb["p50_ms"]
        assert abs(alb["range_rate_per_s"] - 100 / 300) < 0.01
        # over the minutes with requests (one or two, cut at "now"), not the 5 m asked
        active_s = (alb["active_to_ns"] - alb["active_from_ns"]) / 1e9
        assert 9.9 <= active_s <= 120 and abs(alb["rate_per_s"] - 100 / active_s) < 0.01
        recorded = c.get("/api/v1/services", params={"since": "5m", "recording": "true"}).json()
        assert recorded["source"] in ("recording", "raw")
        rrows = {(s["service"], s["source"]): s for s in recorded["services"]}
        assert rrows[("svc-alb", "alb")]["requests"] == 100 and rrows[("svc-alb", "alb")]["errors"] == 10
        assert c.get("/api/v1/services", params={"from": "bogus"}).status_code == 400
        series = c.get("/api/v1/services", params={"since": "5m", "step": "1m"}).json()["series"]
        assert sum(p["requests"] for p in series if p["service"] == "svc-alb") == 100
        assert "whole number of minutes" in error_of(c.get("/api/v1/services", params={"step": "30s"}))
        assert "points" in error_of(c.get("/api/v1/services", params={"since": "30d", "step": "1m"}))
        scoped = {"authorization": f"Bearer {srv.create_key('reader', services=['svc-app'])}"}
        mine = c.get("/api/v1/services", params={"since": "5m"}, headers=scoped).json()["services"]
        assert [(s["service"], s["requests"]) for s in mine] == [("svc-app", 100)]


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "logharbor.cli.main", "alerts", *args, "--server", server.url,
                           "--api-key", server.api_key], capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.mark.e2e
def test_cli_apply_list_test(srv: ServerProcess, tmp_path: Path) -> None:
    srv.ingest([{"level": "ERROR", "service": "cli-svc", "message": "x"} for _ in range(4)], wait=False)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: cli errors\n    query: level:ERROR AND service:cli-svc\n    condition: count > 2\n"
        "    window: 5m\n    group_by: [service]\n    annotations: {summary: '{{service}} has {{value}}'}\n"
        "---\n"
        "- name: cli quiet\n  query: service:cli-nothing\n  condition: absent\n  window: 10m\n")
    assert cli(srv, "apply", "-f", str(rules), "--check").stdout.strip() == "2 rule(s) valid"
    applied = cli(srv, "apply", "-f", str(rules))
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.splitlines() == ["created cli errors", "created cli quiet"]
    assert cli(srv, "apply", "-f", str(rules)).stdout.splitlines() == ["updated cli errors", "updated cli quiet"]
    deadline = time.monotonic() + 30
    out = ""
    while time.monotonic() < deadline:  # the records are searchable within a second
        out = cli(srv, "test", "cli errors").stdout
        if "FIRING" in out:
            break
        time.sleep(0.2)
    assert "cli errors: count > 2 → FIRING" in out and "service=cli-svc: 4" in out and "cli-svc has 4" in out
    from_file = cli(srv, "test", "cli quiet", "-f", str(rules), "--json")  # a rule not saved yet
    assert from_file.returncode == 0 and orjson.loads(from_file.stdout)["firing"] is True
    listed = cli(srv, "list")
    assert listed.returncode == 0 and "cli errors" in listed.stdout and "cli quiet" in listed.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("- name: b\n  query: 'level:('\n  condition: count > 1\n")
    refused = cli(srv, "apply", "-f", str(bad), "--check")
    assert refused.returncode == 1 and "rule b: query: expected a value after 'level:'" in refused.stderr
    pruned = cli(srv, "apply", "-f", str(rules), "--prune")
    assert pruned.returncode == 0
    with srv.client() as c:
        assert {r["name"] for r in c.get("/api/v1/alerts/rules").json()["rules"]} == {"cli errors", "cli quiet"}
