"""docs/protocols.md stays true: its endpoints answer, its example requests store what the tables
say, its rsyslog action forwards through Debian's rsyslog, and its CLI flags exist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import ServerProcess, free_port
from tests.rsyslog import RSYSLOGD

from .conftest import records

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocols.md"
TEXT = DOC.read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", TEXT, flags=re.S)


def test_every_named_endpoint_answers(server: ServerProcess) -> None:
    named = set(re.findall(r"`(GET|POST|PUT|HEAD) (/[^`\s]*)`", TEXT))
    named |= {("GET", path) for path in re.findall(r"`(/_[^`\s]*)`", TEXT)}  # listed without a method
    assert len(named) >= 12, named
    with server.client() as client:
        for method, path in sorted(named):
            url = path.replace("{index}", "logs-doc").replace("{name}", "doc")
            response = client.request(method, url, content=b"{}" if method in ("PUT", "POST") else None,
                                      headers={"content-type": "application/json"})
            assert response.status_code not in (405, 500), (method, path, response.status_code)
            if response.status_code == 404:  # allowed only as Elasticsearch's own "not installed"
                assert response.headers.get("x-elastic-product") == "Elasticsearch", (method, path)


EXPECTED = {  # what the mapping tables promise for each example request
    "docs-es": {"level": "ERROR", "http": {"status": 502}, "index": "logs-app",
                "timestamp": "2026-11-01T12:34:56.789000Z"},
    "docs-loki": {"level": "WARN", "job": "docs-loki", "trace_id": "5759e988bd862e3fe1be46a994272793",
                  "message": "disk 91% full"},
    "docs-otlp": {"level": "ERROR", "message": "card declined", "span_id": "53995c3f42cd8ad8",
                  "scope.name": "docs"},  # a dotted key comes back as it was stored (docs/record.md)
}


def test_example_requests_store_what_the_tables_say(server: ServerProcess) -> None:
    examples = blocks("request")
    assert len(examples) == 3
    with server.client() as client:
        for example in examples:
            head, _, body = example.partition("\n")
            method, path, ctype = head.split()
            response = client.request(method, path, content=body.strip().encode(),
                                      headers={"content-type": ctype})
            assert response.status_code in (200, 204), (head, response.text)
            if path.endswith("_bulk"):
                assert response.json()["errors"] is False
    for service, fields in EXPECTED.items():
        (row,) = records(server, f"service:{service}", 1)
        for key, value in fields.items():
            assert row[key] == value, (service, key, row)


@pytest.mark.skipif(not Path(RSYSLOGD).exists(), reason="rsyslog is installed by scripts/install.sh --test")
def test_rsyslog_action_from_the_docs(server_factory, rsyslog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    server: ServerProcess = server_factory("--batch-max-age", "0.2", "--syslog-tcp", f"127.0.0.1:{port}")
    (action,) = blocks("rsyslog")
    action = action.replace('"logharbor.example"', '"127.0.0.1"').replace('Port="5514"', f'Port="{port}"')
    source = tmp_path / "docs.log"
    source.write_text("from the documented action\n")
    rsyslog(source, action)
    (row,) = records(server, "service:shopapp", 1)
    assert row["message"] == "from the documented action" and row["facility"] == "local3"


@pytest.mark.skipif(not Path("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_ossl.so").exists(),
                    reason="rsyslog-openssl is installed by scripts/install.sh --test")
def test_rsyslog_tls_action_from_the_docs(server_factory, rsyslog, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "1", "-subj", "/CN=logharbor.example",
                    "-addext", "subjectAltName=DNS:logharbor.example"], check=True, capture_output=True)
    port = free_port()
    server: ServerProcess = server_factory("--batch-max-age", "0.2", "--syslog-tls", f"127.0.0.1:{port}",
                                           "--listener-tls-cert", str(cert), "--listener-tls-key", str(key))
    (config,) = blocks("rsyslog-tls")
    config = (config.replace("/etc/ssl/certs/logharbor-ca.pem", str(cert))
              .replace('Target="logharbor.example"', 'Target="127.0.0.1"').replace('Port="6514"', f'Port="{port}"'))
    source = tmp_path / "docs-tls.log"
    source.write_text("over the documented tls action\n")
    rsyslog(source, config)
    (row,) = records(server, "service:shopapp", 1)
    assert row["message"] == "over the documented tls action"


def test_every_listener_flag_exists() -> None:
    flags = set(re.findall(r"`(--(?:syslog|forward|listener|tls|max-line)[a-z-]*)", TEXT))
    assert len(flags) >= 8, flags
    env = dict(os.environ, COLUMNS="250", TERM="dumb", NO_COLOR="1")
    help_text = subprocess.run([sys.executable, "-m", "logharbor.cli.main", "server", "--help"],
                               capture_output=True, text=True, env=env, check=True).stdout
    for flag in flags:
        assert flag in help_text, flag


def test_doc_covers_every_protocol_registered() -> None:
    from logharbor.server.app import ingest_protocols
    from logharbor.server.config import ServerConfig

    names = {p.name for p in ingest_protocols(ServerConfig())}
    titles = {"native": "native NDJSON", "elasticsearch": "## Elasticsearch", "loki": "## Loki",
              "otlp": "## OTLP", "syslog": "## Syslog", "forward": "## Fluent forward"}
    assert names <= set(titles), names
    for name in names:
        assert titles[name] in TEXT, name

