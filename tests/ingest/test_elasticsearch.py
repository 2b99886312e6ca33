"""Elasticsearch ``_bulk`` against the official Python client (product check, helpers, per-item errors)."""

from __future__ import annotations

import gzip
import time

import httpx
import pytest
from elasticsearch import Elasticsearch, helpers
from tests.conftest import ServerProcess

from .conftest import by_message, records


@pytest.fixture
def es(server: ServerProcess) -> Elasticsearch:
    client = Elasticsearch(server.url, basic_auth=("elastic", server.api_key), request_timeout=30,
                           http_compress=True)
    yield client
    client.close()


def test_product_check_and_setup_calls(server: ServerProcess, es: Elasticsearch) -> None:
    info = es.info()  # the client raises UnsupportedProductError unless the probe looks right
    assert info["version"]["number"].startswith("8.")
    assert es.license.get()["license"]["status"] == "active"
    assert es.indices.exists(index="logs-app").body is True
    assert es.indices.create(index="logs-app")["acknowledged"] is True
    assert es.indices.put_index_template(name="t", index_patterns=["logs-*"])["acknowledged"] is True
    assert es.ilm.put_lifecycle(name="p", policy={"phases": {}})["acknowledged"] is True
    with httpx.Client(base_url=server.url, headers=server.headers) as raw:
        assert raw.get("/_index_template/t").status_code == 404  # nothing is really installed
        html = raw.get("/", headers={"accept": "text/html"}, follow_redirects=False)
        assert html.status_code == 302 and html.headers["location"] == "/ui/"
        assert raw.get("/").headers["x-elastic-product"] == "Elasticsearch"


def test_helpers_bulk_maps_ecs_and_dotted_fields(server: ServerProcess, es: Elasticsearch) -> None:
    now = time.time()
    actions = []
    for i in range(300):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now - 60)) + f".{i:03d}Z"
        if i % 2:
            source = {"@timestamp": stamp, "message": f"nested {i}",
                      "log": {"level": "error", "logger": "app.pay"},
                      "service": {"name": "checkout", "version": "1.4.2"},
                      "host": {"name": "web-1", "ip": ["10.0.0.5"]},
                      "trace": {"id": "5759E988BD862E3FE1BE46A994272793"},
                      "http": {"request": {"method": "POST"},
                               "response": {"status_code": 502, "body": {"bytes": 612}}},
                      "url": {"path": "/api/orders"}, "event": {"duration": 1_234_500_000},
                      "user_id": f"u-{i}"}
        else:
            source = {"@timestamp": stamp, "message": f"dotted {i}", "log.level": "warn",
                      "service.name": "checkout", "host.name": "web-2", "order_id": i}
        action = {"_index": "logs-app", "_source": source}
        if i % 3 == 0:
            action["_op_type"] = "create"
        actions.append(action)
    ok, errors = helpers.bulk(es, actions, chunk_size=100)
    assert ok == 300 and errors == []

    rows = by_message(records(server, "service:checkout", 300, limit=1000))
    assert len(rows) == 300
    nested = rows["nested 1"]
    assert nested["level"] == "ERROR" and nested["service"] == "checkout" and nested["version"] == "1.4.2"
    assert nested["host"] == "web-1" and nested["trace_id"] == "5759e988bd862e3fe1be46a994272793"
    assert nested["http"] == {"method": "POST", "status": 502, "bytes_sent": 612, "path": "/api/orders",
                              "duration_ms": 1234.5}
    assert nested["index"] == "logs-app" and nested["user_id"] == "u-1"
    assert nested["host_ip"] == ["10.0.0.5"] and nested["log.logger"] == "app.pay"  # as flattened
    dotted = rows["dotted 2"]
    assert dotted["level"] == "WARN" and dotted["host"] == "web-2" and dotted["order_id"] == 2
    assert dotted["timestamp"].endswith(".002000Z")


def test_streaming_bulk_reports_each_bad_item(server: ServerProcess, es: Elasticsearch) -> None:
    actions = [
        {"_index": "logs-x", "_source": {"message": "good one", "service": "sb"}},
        {"_index": "logs-x", "_source": {"message": "bad time", "service": "sb", "@timestamp": "yesterday"}},
        {"_op_type": "delete", "_index": "logs-x", "_id": "abc"},
        {"_op_type": "update", "_index": "logs-x", "_id": "abc", "doc": {"a": 1}},
        {"_index": "_bad", "_source": {"message": "bad index", "service": "sb"}},
        {"_index": "logs-x", "_id": "mine", "_source": {"message": "good two", "service": "sb"}},
    ]
    results = list(helpers.streaming_bulk(es, actions, raise_on_error=False, max_retries=0))
    statuses = [(ok, next(iter(item.values()))["status"]) for ok, item in results]
    assert statuses == [(True, 201), (False, 400), (False, 400), (False, 400), (False, 400), (True, 201)]
    assert "timestamp" in results[1][1]["index"]["error"]["reason"]
    assert results[2][1]["delete"]["error"]["type"] == "action_request_validation_exception"
    assert results[5][1]["index"]["_id"] == "mine"
    rows = by_message(records(server, "service:sb", 2))
    assert set(rows) == {"good one", "good two"}
    assert rows["good two"]["doc_id"] == "mine"


def test_raw_bulk_gzip_filter_path_and_malformed(server: ServerProcess) -> None:
    body = b'{"index":{}}\n{"message":"via path index","service":"rawes"}\n'
    with httpx.Client(base_url=server.url, headers=server.headers) as raw:
        r = raw.post("/logs-raw/_bulk?filter_path=errors,items.*.status", content=gzip.compress(body),
                     headers={"content-type": "application/x-ndjson", "content-encoding": "gzip"})
        assert r.status_code == 200
        assert r.json() == {"errors": False, "items": [{"index": {"status": 201}}]}
        bad = raw.post("/_bulk", content=b'{"index":{}\n{"message":"x"}\n',
                       headers={"content-type": "application/x-ndjson"})
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "illegal_argument_exception"
        empty = raw.post("/_bulk", content=b"\n", headers={"content-type": "application/x-ndjson"})
        assert empty.status_code == 400
        anonymous = httpx.post(server.url + "/_bulk", content=body,
                               headers={"content-type": "application/x-ndjson"})
        assert anonymous.status_code == 401
    (row,) = records(server, "service:rawes", 1)
    assert row["index"] == "logs-raw"
