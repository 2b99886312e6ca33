"""Node loggers and shippers from npm (pinned in tests/clients/package.json and its lockfile,
installed by ``scripts/install.sh --test``), configured as their READMEs say, against a real
server: every record arrives once with its time (sub-second, zone), level, message, service and
attributes, and the client reports no error (``loggers.js`` collects what each one reports)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import uuid
from typing import Any

from tests.conftest import ServerProcess

from .conftest import HERE, arrived, from_ms, from_ns, needs, utc

COUNT = 12


def run(server: ServerProcess, client: str) -> tuple[str, list[dict[str, Any]]]:
    """Run one client to its end; its run token and what each record must look like."""
    node = shutil.which("node")
    needs(HERE / "node_modules" / "pino", "the Node clients (npm ci in tests/clients)")
    assert node, "node is installed by scripts/install.sh"
    token = uuid.uuid4().hex[:10]
    env = dict(os.environ, LH_URL=server.url, LH_KEY=server.api_key, LH_RUN=token, LH_COUNT=str(COUNT),
               TZ="Asia/Kolkata")
    proc = subprocess.run([node, str(HERE / "loggers.js"), client], cwd=HERE, env=env,
                          capture_output=True, timeout=180)
    report = json.loads(proc.stdout or b"{}")
    assert proc.returncode == 0 and report.get("errors") == [], (proc.returncode, report.get("errors"),
                                                                 proc.stderr[-2000:])
    assert len(report["expected"]) == COUNT
    return token, report["expected"]


def one_each(rows: list[dict[str, Any]], message_of: Any) -> dict[str, dict[str, Any]]:
    by = {}
    for row in rows:
        message = message_of(row)
        assert message not in by, f"stored twice: {message}"
        by[message] = row
    return by


def request_id(row: dict[str, Any]) -> Any:
    """pino's ``reqId``: an attribute as sent, or the request id where the record folds it."""
    return row.get("request_id", row.get("reqId"))


def test_pino_elasticsearch(server: ServerProcess) -> None:
    """pino 10 → pino-elasticsearch 9 (``@elastic/elasticsearch`` bulk helper, refresh at the end)."""
    token, expected = run(server, "pino-elasticsearch")
    rows = one_each(arrived(server, f'"pino-elasticsearch {token}"', COUNT), lambda r: r["message"])
    assert len(rows) == COUNT
    for want in expected:
        row = rows[want["message"]]
        assert row["timestamp"] == from_ms(want["time_ms"])
        assert row["level"] == want["level"], (want, row)
        assert row["service"] == "shop-pino-es" and row["index"] == "shop-pino"
        assert request_id(row) == want["attrs"]["reqId"]
        assert row["userId"] == want["attrs"]["userId"] and row["cart"] == want["attrs"]["cart"]


def test_pino_loki(server: ServerProcess) -> None:
    """pino 10 → pino-loki 3 (JSON push; the line is pino's JSON, the level a label it maps)."""
    token, expected = run(server, "pino-loki")
    rows = one_each(arrived(server, f"service:shop-pino-loki AND {token}", COUNT),
                    lambda r: json.loads(r["message"])["msg"])
    assert len(rows) == COUNT
    # pino-loki's own level map: trace (10) is pushed as "debug", fatal (60) as "critical"
    label_level = {"TRACE": "DEBUG"}
    for want in expected:
        row = rows[want["message"]]
        line = json.loads(row["message"])  # the line, byte for byte, as Loki keeps it
        assert line["time"] == want["time_ms"] and line["name"] == "shop-pino-loki"
        assert row["timestamp"] == from_ms(want["time_ms"])
        assert row["level"] == label_level.get(want["level"], want["level"]), (want, row)
        assert row["service"] == "shop-pino-loki"
        assert request_id(row) == want["attrs"]["reqId"]
        assert row["userId"] == want["attrs"]["userId"] and row["cart"] == want["attrs"]["cart"]


def _winston_time(text: str) -> str:
    return utc(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z"))


def test_winston_elasticsearch(server: ServerProcess) -> None:
    """winston 3 → winston-elasticsearch 0.19 (its transformer: ``@timestamp``, ``severity``,
    meta under ``fields``; an index template installed at start; ``"attempts"`` after each action)."""
    token, expected = run(server, "winston-elasticsearch")
    rows = one_each(arrived(server, f'"winston-elasticsearch {token}"', COUNT), lambda r: r["message"])
    assert len(rows) == COUNT
    for want in expected:
        row = rows[want["message"]]
        assert want["time"][-5] == "+" and row["timestamp"] == _winston_time(want["time"])
        assert row["level"] == want["level"]
        assert row["service"] == "shop-winston-elasticsearch" and row["index"] == "shop-winston"
        assert row["fields"]["reqId"] == want["attrs"]["reqId"]
        assert row["fields"]["userId"] == want["attrs"]["userId"]
        assert row["fields"]["cart"] == want["attrs"]["cart"]


def test_winston_loki(server: ServerProcess) -> None:
    """winston 3 → winston-loki 6 (protobuf + snappy, a JSON line per record, ``level`` label)."""
    token, expected = run(server, "winston-loki")
    rows = one_each(arrived(server, f"service:shop-winston-loki AND {token}", COUNT),
                    lambda r: json.loads(r["message"])["message"])
    assert len(rows) == COUNT
    for want in expected:
        row = rows[want["message"]]
        assert row["timestamp"] == _winston_time(want["time"])
        assert row["level"] == want["level"]
        assert row["service"] == "shop-winston-loki"
        assert row["reqId"] == want["attrs"]["reqId"] and row["userId"] == want["attrs"]["userId"]
        assert row["cart"] == want["attrs"]["cart"]


def test_opentelemetry_js_logs_exporter(server: ServerProcess) -> None:
    """``@opentelemetry/sdk-logs`` 3 + ``exporter-logs-otlp-http`` 0.301 (OTLP JSON): nanosecond
    times, severity number and text, map attributes with dotted keys."""
    token, expected = run(server, "otel-js")
    rows = one_each(arrived(server, f"service:shop-otel-js AND {token}", COUNT), lambda r: r["message"])
    assert len(rows) == COUNT
    for want in expected:
        row = rows[want["message"]]
        assert row["timestamp"] == from_ns(want["time_s"] * 1_000_000_000 + want["time_ns"])
        assert row["level"] == want["level"] and row["severity_text"] == want["severity_text"]
        assert row["version"] == "3.1.0" and row["scope.name"] == "shop.checkout"
        attrs = want["attrs"]
        assert row["reqId"] == attrs["reqId"] and row["userId"] == attrs["userId"]
        assert row["cart"] == attrs["cart"] and row["http_route"] == attrs["http.route"]
        assert isinstance(row["observed_time_unix_nano"], int)
