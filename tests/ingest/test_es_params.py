"""Elasticsearch bulk parameters, one test each: honoured, refused as Elasticsearch refuses it, or
ignored with a reason (Warning header + ``logharbor_ingest_ignored_total``), never silently.

The cases are our own, written from Elasticsearch's documented behaviour and its bulk REST tests
(``rest-api-spec/test/bulk/*.yml``); docs/protocols.md "Bulk parameters" is the table they check.
``refresh`` is real here, so "not stored" is checked right after a ``?refresh=true`` request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from elasticsearch import Elasticsearch
from tests.conftest import ServerProcess

from .conftest import ALL_TIME

NDJSON = {"content-type": "application/x-ndjson"}


@pytest.fixture(scope="module")
def raw(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as client:
        yield client


def bulk(raw: httpx.Client, lines: list[Any], path: str = "/_bulk", **params: str) -> httpx.Response:
    body = b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines)
    return raw.post(path, content=body, params={"refresh": "true", **params}, headers=NDJSON)


def stored(server: ServerProcess, service: str) -> dict[str, dict[str, Any]]:
    """The records of ``service`` by message; no waiting: every test request used refresh."""
    rows = server.query(f"service:{service}", limit=1000, **ALL_TIME)["rows"]
    return {row["message"]: row for row in rows}


def doc(service: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"message": message, "service": service, **extra}


def ignored(raw: httpx.Client, what: str) -> float:
    text = raw.get("/metrics").text
    found = re.search(rf'logharbor_ingest_ignored_total{{protocol="elasticsearch",what="{what}"}} (\S+)', text)
    return float(found.group(1)) if found else 0.0


def items(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    return [next(iter(item.items())) for item in response.json()["items"]]


def test_keys_after_the_action_object_are_ignored(server: ServerProcess, raw: httpx.Client) -> None:
    """winston-elasticsearch's ``{"index":{…},"attempts":0}``: ES 8 reads the action object and
    ignores the rest of the line (with a deprecation warning); so does logharbor."""
    before = ignored(raw, "trailing")
    r = bulk(raw, [{"index": {"_index": "logs-w"}, "attempts": 0}, doc("p-trail", "one"),
                   {"index": {"_index": "logs-w"}, "attempts": 1, "more": {"x": 1}}, doc("p-trail", "two")])
    assert r.status_code == 200 and r.json()["errors"] is False
    assert [(a, i["status"]) for a, i in items(r)] == [("index", 201), ("index", 201)]
    assert "keys after the action object" in r.headers["warning"]
    assert set(stored(server, "p-trail")) == {"one", "two"}
    assert ignored(raw, "trailing") == before + 2


def test_an_unknown_parameter_inside_the_action_refuses_the_request(server: ServerProcess,
                                                                   raw: httpx.Client) -> None:
    for line, reason in [
        ({"index": {"_index": "logs-u", "attempts": 0}},
         "Action/metadata line [3] contains an unknown parameter [attempts]"),
        ({"index": {"_index": "logs-u", "_routing": "r"}},  # Elasticsearch 6's names are gone
         "Action/metadata line [3] contains an unknown parameter [_routing]"),
        ({"index": {"_index": "logs-u", "_version": 1}},
         "Action/metadata line [3] contains an unknown parameter [_version]"),
        ({"index": {"_index": ["logs-u"]}},
         "Malformed action/metadata line [3], expected a simple value for field [_index] but found [START_ARRAY]"),
        ({}, "Malformed action/metadata line [3], expected FIELD_NAME but found [END_OBJECT]"),
        ({"attempts": 0, "index": {}}, "expected field [create], [delete], [index] or [update] but found [attempts]"),
        ({"index": []}, "Malformed action/metadata line [3], expected START_OBJECT but found [START_ARRAY]"),
    ]:
        r = bulk(raw, [{"index": {"_index": "logs-u"}}, doc("p-unknown", "before"), line, doc("p-unknown", "x")])
        assert r.status_code == 400, line
        assert r.json()["error"]["type"] == "illegal_argument_exception"
        assert reason in r.json()["error"]["reason"], (line, r.json())
    assert stored(server, "p-unknown") == {}  # the whole request is refused, as in Elasticsearch


def test_op_type_create_in_an_index_action(server: ServerProcess, raw: httpx.Client) -> None:
    r = bulk(raw, [{"index": {"_index": "logs-o", "op_type": "create"}}, doc("p-op", "auto id"),
                   {"index": {"_index": "logs-o", "_id": "o-1", "op_type": "create"}}, doc("p-op", "first"),
                   {"index": {"_index": "logs-o", "_id": "o-1", "op_type": "create"}}, doc("p-op", "again"),
                   {"index": {"_index": "logs-o", "_id": "o-1", "op_type": "index"}}, doc("p-op", "indexed"),
                   {"create": {"_index": "logs-o", "op_type": "index"}}, doc("p-op", "create stays")])
    got = [(action, item["status"]) for action, item in items(r)]
    assert got == [("create", 201), ("create", 201), ("create", 409), ("index", 200), ("create", 201)]
    assert items(r)[2][1]["error"]["type"] == "version_conflict_engine_exception"
    assert set(stored(server, "p-op")) == {"auto id", "first", "indexed", "create stays"}
    bad = bulk(raw, [{"index": {"_index": "logs-o", "op_type": "upsert"}}, doc("p-op", "x")])
    assert bad.status_code == 400
    assert "opType must be 'create' or 'index', found: [upsert]" in bad.json()["error"]["reason"]


def test_an_empty_id_is_refused_alone(server: ServerProcess, raw: httpx.Client) -> None:
    r = bulk(raw, [{"index": {"_index": "logs-e", "_id": ""}}, doc("p-empty", "empty id"),
                   {"index": {"_index": "logs-e", "_id": "e-1"}}, doc("p-empty", "with id"),
                   {"create": {"_index": "logs-e"}}, doc("p-empty", "no id")])
    (_, first), (_, second), (_, third) = items(r)
    assert first["status"] == 400 and first["error"]["type"] == "illegal_argument_exception"
    assert first["error"]["reason"] == "if _id is specified it must not be empty"
    assert second["result"] == third["result"] == "created"
    assert set(stored(server, "p-empty")) == {"with id", "no id"}


def test_compare_and_write_is_refused_per_item(server: ServerProcess, raw: httpx.Client) -> None:
    r = bulk(raw, [{"index": {"_index": "logs-c", "_id": "c-1"}}, doc("p-cas", "plain"),
                   {"index": {"_index": "logs-c", "_id": "c-1", "if_seq_no": 0, "if_primary_term": 1}},
                   doc("p-cas", "conditional"),
                   {"index": {"_index": "logs-c", "_id": "c-2", "if_seq_no": 3}}, doc("p-cas", "seq only")])
    (_, plain), (_, cas), (_, seq) = items(r)
    assert plain["status"] == 201
    for item in (cas, seq):
        assert item["status"] == 400 and item["error"]["type"] == "action_request_validation_exception"
        assert "if_seq_no, if_primary_term" in item["error"]["reason"]
    assert set(stored(server, "p-cas")) == {"plain"}


def test_versioned_writes_are_refused_per_item(server: ServerProcess, raw: httpx.Client) -> None:
    r = bulk(raw, [{"index": {"_index": "logs-v", "_id": "v-1", "version": 5, "version_type": "external"}},
                   doc("p-ver", "external"),
                   {"index": {"_index": "logs-v", "_id": "v-2", "version": 1}}, doc("p-ver", "internal"),
                   {"index": {"_index": "logs-v", "_id": "v-3", "version_type": "internal"}}, doc("p-ver", "plain")])
    statuses = [item["status"] for _, item in items(r)]
    assert statuses == [400, 400, 201]
    assert "keeps no document versions" in items(r)[0][1]["error"]["reason"]
    assert set(stored(server, "p-ver")) == {"plain"}
    bad = bulk(raw, [{"index": {"_index": "logs-v", "version_type": "newest"}}, doc("p-ver", "x")])
    assert bad.status_code == 400 and "No version type match [newest]" in bad.json()["error"]["reason"]


def test_pipeline_is_ignored_and_said(server: ServerProcess, raw: httpx.Client) -> None:
    """No ingest pipeline runs here: the document is stored as sent, the answer's Warning header
    says so and the counter counts it (Elasticsearch would 400 an unknown pipeline, run a known one)."""
    before = ignored(raw, "pipeline")
    r = bulk(raw, [{"index": {"_index": "logs-p", "pipeline": "filebeat-nginx"}}, doc("p-pipe", "named"),
                   {"index": {"_index": "logs-p", "pipeline": "_none"}}, doc("p-pipe", "none")])
    assert [item["status"] for _, item in items(r)] == [201, 201]
    assert "bulk parameter [pipeline] is ignored" in r.headers["warning"]
    assert ignored(raw, "pipeline") == before + 1
    url = bulk(raw, [{"index": {"_index": "logs-p"}}, doc("p-pipe", "url")], pipeline="geoip")
    assert url.json()["errors"] is False and "[pipeline]" in url.headers["warning"]
    quiet = bulk(raw, [{"index": {"_index": "logs-p"}}, doc("p-pipe", "quiet")])
    assert "warning" not in quiet.headers
    assert set(stored(server, "p-pipe")) == {"named", "none", "url", "quiet"}


def test_require_alias_is_refused_like_a_missing_alias(server: ServerProcess, raw: httpx.Client) -> None:
    """logharbor has no aliases, so ``require_alias: true`` is what Elasticsearch answers for a
    name that is not one: a 404 for that item."""
    r = bulk(raw, [{"index": {"_index": "logs-a", "require_alias": True}}, doc("p-alias", "required"),
                   {"create": {"_index": "logs-a"}}, doc("p-alias", "plain")])
    (_, required), (_, plain) = items(r)
    assert required["status"] == 404 and required["error"]["type"] == "index_not_found_exception"
    assert required["error"]["reason"] == ("no such index [logs-a] and [require_alias] request flag is "
                                           "[true] and [logs-a] is not an alias")
    assert plain["status"] == 201
    url = bulk(raw, [{"index": {"_index": "logs-a"}}, doc("p-alias", "url flag"),
                     {"index": {"_index": "logs-a", "require_alias": False}}, doc("p-alias", "overridden")],
               require_alias="true")
    assert [item["status"] for _, item in items(url)] == [404, 201]
    assert set(stored(server, "p-alias")) == {"plain", "overridden"}


@pytest.mark.parametrize("param, value", [
    ("routing", "user-1"), ("dynamic_templates", {"level": "keyword"}), ("require_data_stream", True),
    ("_type", "_doc"), ("list_executed_pipelines", True), ("retry_on_conflict", 3),
])
def test_parameters_without_effect_here_are_counted(server: ServerProcess, raw: httpx.Client,
                                                    param: str, value: Any) -> None:
    before = ignored(raw, param)
    service = f"p-ign-{param.strip('_').replace('_', '-')}"
    r = bulk(raw, [{"create": {"_index": "logs-i", param: value}}, doc(service, "kept")])
    assert r.json()["errors"] is False
    assert f"bulk parameter [{param}] is ignored" in r.headers["warning"]
    assert ignored(raw, param) == before + 1
    (row,) = stored(server, service).values()
    assert row["index"] == "logs-i" and param not in row  # stored as sent, nothing added


def test_url_parameters(server: ServerProcess, raw: httpx.Client) -> None:
    unknown = bulk(raw, [{"index": {"_index": "logs-q"}}, doc("p-url", "x")], type="_doc")
    assert unknown.status_code == 400
    assert unknown.json()["error"]["reason"] == "request contains unrecognized parameter: [type]"
    bad_refresh = bulk(raw, [{"index": {"_index": "logs-q"}}, doc("p-url", "x")], refresh="soon")
    assert bad_refresh.status_code == 400 and "Unknown value for refresh: [soon]" in bad_refresh.text
    # what winston-elasticsearch and Vector send on every request
    ok = bulk(raw, [{"index": {"_index": "logs-q"}}, doc("p-url", "waited")], refresh="wait_for",
              timeout="2000ms", wait_for_active_shards="1", filter_path="errors")
    assert ok.json() == {"errors": False}
    assert set(stored(server, "p-url")) == {"waited"}  # searchable once refresh=wait_for answered


def test_single_document_calls(server: ServerProcess) -> None:
    """``es.index``/``es.create`` of the official client: ``POST /{index}/_doc``,
    ``PUT /{index}/_doc/{id}``, ``PUT /{index}/_create/{id}``, with ``refresh``."""
    es = Elasticsearch(server.url, basic_auth=("elastic", server.api_key), request_timeout=60)
    try:
        auto = es.index(index="logs-d", document=doc("p-doc", "auto"), refresh=True)
        assert auto.meta.status == 201 and auto["result"] == "created" and auto["_id"]
        first = es.index(index="logs-d", id="d-1", document=doc("p-doc", "by id"))
        assert first["result"] == "created" and first["_id"] == "d-1"
        again = es.index(index="logs-d", id="d-1", document=doc("p-doc", "by id"))
        assert again.meta.status == 200 and again["result"] == "updated"
        created = es.create(index="logs-d", id="d-2", document=doc("p-doc", "created"), refresh="wait_for")
        assert created["result"] == "created"
        from elasticsearch import ConflictError

        with pytest.raises(ConflictError):
            es.create(index="logs-d", id="d-2", document=doc("p-doc", "created twice"))
        with pytest.raises(ConflictError):
            es.index(index="logs-d", id="d-3", op_type="create", document=doc("p-doc", "op"))
            es.index(index="logs-d", id="d-3", op_type="create", document=doc("p-doc", "op"))
        es.indices.refresh(index="logs-d")
    finally:
        es.close()
    assert set(stored(server, "p-doc")) == {"auto", "by id", "created", "op"}
    pretty = httpx.post(server.url + "/logs-d/_doc?refresh=true", headers=server.headers,
                        content=b'{\n  "message": "pretty",\n  "service": "p-doc"\n}\n')
    assert pretty.status_code == 201 and pretty.headers["location"].startswith("/logs-d/_doc/")
    assert "pretty" in stored(server, "p-doc")


def test_calls_around_writing(server: ServerProcess, raw: httpx.Client) -> None:
    """What pino-elasticsearch, winston-elasticsearch, Filebeat and Logstash call besides _bulk."""
    es = Elasticsearch(server.url, basic_auth=("elastic", server.api_key), request_timeout=60)
    try:
        assert es.cluster.health()["status"] == "green"
        assert es.cat.health(format="json")[0]["status"] == "green"
        assert es.indices.refresh(index="logs-r")["_shards"]["failed"] == 0
        assert es.indices.exists_alias(name="logs-r").body is False
        assert es.indices.exists_index_template(name="t").body is False
    finally:
        es.close()
    text = raw.get("/_cat/health", params={"v": ""})
    assert text.status_code == 200 and text.text.splitlines()[0].startswith("epoch timestamp cluster status")
    assert raw.post("/_refresh").json()["_shards"]["successful"] == 1
    assert raw.post("/_aliases", json={"actions": []}).json() == {"acknowledged": True}
