"""deploy/grafana: the provisioning a stock Grafana loads, and every dashboard query run for real."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from tests.conftest import ServerProcess

from logharbor.server.features.health.recorded import load_rules
from logharbor.server.features.loki.logql import parse_logql

from .conftest import END_NS, START_NS, query_range

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARD = orjson.loads((DEPLOY / "dashboards" / "reference-stack.json").read_bytes())
#: what Grafana puts in place of the dashboard's variables before it sends a query
VARIABLES = {"$__auto": "1m", "$__interval": "1m", "$service": ".+", "$env": ".+"}


#: panels the query corpus has no records for (its one NGINX record answered 200)
EMPTY_IN_CORPUS = {"5xx at NGINX"}


def loki_targets() -> list[str]:
    return [t["expr"] for p in DASHBOARD["panels"] for t in p["targets"] if t["datasource"]["type"] == "loki"]


def titled_targets() -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in DASHBOARD["panels"] for t in p["targets"]
            if t["datasource"]["type"] == "loki"]


def expand(expr: str) -> str:
    return re.sub(r"\$__auto|\$__interval|\$service|\$env", lambda m: VARIABLES[m[0]], expr)


def test_datasources_provisioning() -> None:
    config = yaml.safe_load((DEPLOY / "provisioning" / "datasources" / "logharbor.yaml").read_text())
    assert config["apiVersion"] == 1
    by_uid = {d["uid"]: d for d in config["datasources"]}
    loki = by_uid["logharbor"]
    assert loki["type"] == "loki" and loki["access"] == "proxy" and loki["basicAuth"] is True
    assert loki["secureJsonData"]["basicAuthPassword"] == "${LOGHARBOR_API_KEY}"
    assert not loki["url"].rstrip("/").endswith("/loki")  # Grafana appends /loki/api/v1/…
    used = {t["datasource"]["uid"] for p in DASHBOARD["panels"] for t in p["targets"]}
    assert used <= set(by_uid)
    providers = yaml.safe_load((DEPLOY / "provisioning" / "dashboards" / "logharbor.yaml").read_text())
    assert providers["providers"][0]["type"] == "file"


def test_dashboard_is_well_formed() -> None:
    assert DASHBOARD["uid"] and DASHBOARD["schemaVersion"] >= 36
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in DASHBOARD["panels"]:
        assert panel["type"] in ("timeseries", "stat", "logs") and panel["targets"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
    names = {v["name"] for v in DASHBOARD["templating"]["list"]}
    for expr in loki_targets():
        assert set(re.findall(r"\$(\w+)", expr)) - {"__auto", "__interval"} <= names
        parse_logql(expand(expr))


@pytest.mark.parametrize(("title", "expr"), titled_targets())
def test_dashboard_queries_run(loki: ServerProcess, title: str, expr: str) -> None:
    data: dict[str, Any] = query_range(loki, expand(expr), step="60000ms", start=str(START_NS), end=str(END_NS))
    assert data["resultType"] in ("matrix", "streams")
    assert bool(data["result"]) is (title not in EMPTY_IN_CORPUS), expr


def test_recorded_series_used_by_grafana_and_alerts_exist() -> None:
    records = {r.record for r in load_rules(DEPLOY / "recording-rules.yaml")}
    used = {t["expr"] for p in DASHBOARD["panels"] for t in p["targets"] if t["datasource"]["type"] == "prometheus"}
    alerts = yaml.safe_load((DEPLOY / "alerts.example.yaml").read_text())
    used |= {r["expr"] for g in alerts["groups"] for r in g["rules"]}
    for expr in used:
        assert set(re.findall(r"logharbor:[\w:]+", expr)) <= records, expr
    scrape = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert "/metrics/recorded" in {job["metrics_path"] for job in scrape["scrape_configs"]}
