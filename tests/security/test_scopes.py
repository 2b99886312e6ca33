"""Scoped keys: a scoped reader sees only its records, however the query is written and
whichever endpoint reads them (issue 5); a scoped writer writes only inside its scope, on every
ingest protocol."""

from __future__ import annotations

import time
from urllib.parse import quote, urlencode

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess


def ingest(server: ServerProcess, key: str, records: list[dict]) -> dict:  # type: ignore[type-arg]
    response = httpx.post(server.url + "/api/v1/logs", content=b"\n".join(orjson.dumps(r) for r in records),
                          headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def query(server: ServerProcess, key: str, q: str) -> httpx.Response:
    return httpx.post(server.url + "/api/v1/query", json={"q": q, "limit": 1000, "from": "now-1d"},
                      headers={"authorization": f"Bearer {key}"}, timeout=30)


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    server = ServerProcess(tmp_path_factory.mktemp("scope") / "data", "--batch-max-age", "0.2").start()
    acme_writer = server.create_key("writer", tenant="acme")
    globex_writer = server.create_key("writer", tenant="globex")
    # the body claims another tenant: the key's tenant wins
    ingest(server, acme_writer, [{"message": f"acme secret {i}", "service": s, "tenant": "globex",
                                  "attributes": {"tenant": "globex"}}
                                 for i, s in enumerate(["checkout", "api", "checkout"])])
    ingest(server, globex_writer, [{"message": f"globex secret {i}", "service": "checkout"} for i in range(4)])
    assert server.wait_rows(7) == 7
    keys = {
        "acme": server.create_key("reader", tenant="acme"),
        "acme-checkout": server.create_key("reader", tenant="acme", services=["checkout"]),
        "globex": server.create_key("reader", tenant="globex"),
    }
    yield server, keys
    server.stop()


ESCAPES = ['*', 'secret', 'secret OR tenant:*', 'NOT tenant:acme', 'tenant:globex', 'tenant:* OR NOT tenant:*',
           'attributes.tenant:globex', '"globex secret 1"', 'service:* | stats count() by tenant',
           'secret | stats count() by service', '_exists_:message OR _exists_:tenant']


@pytest.mark.parametrize("q", ESCAPES)
def test_scoped_readers_see_only_their_scope(tenants, q: str) -> None:  # type: ignore[no-untyped-def]
    server, keys = tenants
    for name, key in keys.items():
        response = query(server, key, q)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 400:
            assert "globex secret" not in response.text and "acme secret" not in response.text
            continue
        text = response.text
        if name.startswith("acme"):
            assert "globex secret" not in text
        else:
            assert "acme secret" not in text
        for row in response.json()["rows"]:
            if "tenant" in row:
                assert row["tenant"] == name.split("-")[0]
            if name == "acme-checkout" and "service" in row:
                assert row["service"] == "checkout"


def test_scope_counts_are_exact(tenants) -> None:  # type: ignore[no-untyped-def]
    server, keys = tenants
    counts = {name: len(query(server, key, "secret").json()["rows"]) for name, key in keys.items()}
    assert counts == {"acme": 3, "acme-checkout": 2, "globex": 4}


def test_tenant_is_stamped_by_the_writer_key(tenants) -> None:  # type: ignore[no-untyped-def]
    server, _ = tenants
    rows = httpx.post(server.url + "/api/v1/query", json={"q": "secret", "limit": 100, "from": "now-1d"},
                      headers=server.headers, timeout=30).json()["rows"]
    by_tenant = {(r["tenant"], r["message"].split()[0]) for r in rows}
    assert by_tenant == {("acme", "acme"), ("globex", "globex")}


SHARED_TRACE = "5759e988bd862e3fe1be46a994272793"


def test_traces_show_only_the_readers_tenant(tenants) -> None:  # type: ignore[no-untyped-def]
    server, keys = tenants
    acme_writer = server.create_key("writer", tenant="acme")
    globex_writer = server.create_key("writer", tenant="globex")
    before = server.store_rows()  # whatever other tests of the module stored
    ingest(server, acme_writer, [{"message": "acme span", "service": "checkout", "trace_id": SHARED_TRACE}])
    ingest(server, globex_writer, [{"message": "globex span", "service": "checkout", "trace_id": SHARED_TRACE}])
    assert server.wait_rows(before + 2) >= before + 2
    for name, own, other in (("acme", "acme span", "globex span"), ("globex", "globex span", "acme span")):
        response = httpx.get(server.url + f"/api/v1/traces/{SHARED_TRACE}", timeout=30,
                             headers={"authorization": f"Bearer {keys[name]}"})
        assert response.status_code == 200, response.text
        assert own in response.text and other not in response.text


def test_tail_shows_only_the_readers_tenant(tenants) -> None:  # type: ignore[no-untyped-def]
    server, keys = tenants
    acme_writer = server.create_key("writer", tenant="acme")
    globex_writer = server.create_key("writer", tenant="globex")
    seen: list[str] = []
    with httpx.stream("GET", server.url + "/api/v1/tail", params={"q": "tailmark OR NOT tailmark"},
                      headers={"authorization": f"Bearer {keys['acme']}", "accept": "text/event-stream"},
                      timeout=30) as stream:
        lines = stream.iter_lines()
        event = ""
        for line in lines:  # wait for the subscribed event's data line, then write from both tenants
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "subscribed":
                break
        ingest(server, globex_writer, [{"message": "tailmark globex", "service": "checkout"}])
        ingest(server, acme_writer, [{"message": "tailmark acme", "service": "checkout"}])
        ingest(server, globex_writer, [{"message": "tailmark globex late", "service": "checkout"}])
        ingest(server, acme_writer, [{"message": "tailmark acme last", "service": "checkout"}])
        event = ""
        for line in lines:
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event in ("", "message"):
                seen.append(orjson.loads(line[6:]).get("message", ""))
                if "tailmark acme last" in seen:
                    break
            elif not line:
                event = ""
    assert seen == ["tailmark acme", "tailmark acme last"]


EXPLAIN_ESCAPES = ['*', 'secret', 'NOT tenant:acme', 'tenant:globex', 'tenant:* OR NOT tenant:*',
                   '"globex secret 1"', 'service:checkout']


@pytest.mark.parametrize("q", EXPLAIN_ESCAPES)
@pytest.mark.parametrize("baseline", ["previous", "complement"])
def test_explain_answers_from_the_scope_only(tenants, q: str, baseline: str) -> None:  # type: ignore[no-untyped-def]
    """Counts, values, templates and the left-out list of ``POST /api/v1/explain`` come from the
    key's records only, whatever the filter and the baseline."""
    server, keys = tenants
    for name, key in keys.items():
        response = httpx.post(server.url + "/api/v1/explain", json={"q": q, "since": "1d", "baseline": baseline},
                              headers={"authorization": f"Bearer {key}"}, timeout=60)
        assert response.status_code in (200, 400), response.text
        if response.status_code == 400:
            continue
        # what the key reads, asked after explain (other tests add records: counts only grow)
        own = len(query(server, key, "*").json()["rows"])
        answer = response.json()
        answer.pop("query")  # the caller's own text, echoed
        text = orjson.dumps(answer).decode()
        other = "acme secret" if name == "globex" else "globex secret"
        assert other not in text, (name, q, text)
        assert answer["focus"]["count"] + (answer["baseline"]["count"] if baseline == "complement" else 0) \
            <= own, (name, q, own, answer["focus"], answer["baseline"])
        for row in (*answer["values"], *answer["fell"]):
            if row["field"] == "tenant":
                assert row["value"] == name.split("-")[0], (name, q, row)
            if row["field"] == "service" and name == "acme-checkout":
                assert row["value"] == "checkout", (name, q, row)


# --- writing: a key writes only inside its scope, on every ingest protocol ---------------------

WRITER_SCOPE = {"tenant": "acme", "services": ["checkout", "api"]}


def logical_records(mark: str) -> list[dict]:  # type: ignore[type-arg]
    """Two inside the writer's scope (``api`` claims another tenant: the key's wins), two outside
    (``billing``; no service at all, stored as ``unknown``)."""
    return [{"message": f"{mark} checkout", "service": "checkout"},
            {"message": f"{mark} billing", "service": "billing"},
            {"message": f"{mark} api", "service": "api", "tenant": "globex"},
            {"message": f"{mark} nameless"}]


def _auth(key: str, content_type: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}", "content-type": content_type}


def send_ndjson(server: ServerProcess, key: str, mark: str) -> list[tuple[int, str]]:
    """Blank and broken lines between the records: the refusals keep their own line numbers."""
    one, two, three, four = (orjson.dumps(r) for r in logical_records(mark))
    body = b"\n".join([one, b"", two, three, b"{not json", four])
    response = httpx.post(server.url + "/api/v1/logs", content=body, headers=_auth(key, "application/x-ndjson"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [r["line"] for r in answer["rejected"] if "invalid JSON" in r["error"]] == [5]
    return [(r["line"], r["error"]) for r in answer["rejected"] if "invalid JSON" not in r["error"]]


def send_ndjson_handed_back(server: ServerProcess, key: str, mark: str) -> list[tuple[int, str]]:
    """Lines the C normaliser hands back to Python (an integer beyond 64 bits, an ``attributes``
    key) beside lines it takes: both are checked."""
    one, two, three, four = (orjson.dumps(r) for r in logical_records(mark))
    two = two[:-1] + b',"n":123456789012345678901234567890}'
    four = four[:-1] + b',"attributes":{"k":1}}'
    response = httpx.post(server.url + "/api/v1/logs", content=b"\n".join([one, two, three, four]),
                          headers=_auth(key, "application/x-ndjson"))
    assert response.status_code == 200, response.text
    return [(r["line"], r["error"]) for r in response.json()["rejected"]]


def _bulk_refusals(answer: dict) -> list[tuple[int, str]]:  # type: ignore[type-arg]
    out = []
    for number, item in enumerate(answer["items"], start=1):
        (result,) = item.values()
        if result["status"] >= 300:
            assert result["status"] == 403 and result["error"]["type"] == "security_exception", result
            out.append((number, result["error"]["reason"]))
    assert answer["errors"] is bool(out)
    return out


def send_bulk(server: ServerProcess, key: str, mark: str, path: str = "/_bulk") -> list[tuple[int, str]]:
    action = b'{"index":{"_index":"logs-app"}}' if path == "/_bulk" else b'{"create":{}}'
    body = b"".join(action + b"\n" + orjson.dumps(r) + b"\n" for r in logical_records(mark))
    response = httpx.post(server.url + path, content=body, headers=_auth(key, "application/x-ndjson"))
    assert response.status_code == 200, response.text
    return _bulk_refusals(response.json())


def send_index_bulk(server: ServerProcess, key: str, mark: str) -> list[tuple[int, str]]:
    return send_bulk(server, key, mark, "/logs-app/_bulk")


def send_doc(server: ServerProcess, key: str, mark: str) -> list[tuple[int, str]]:
    out = []
    for number, record in enumerate(logical_records(mark), start=1):
        response = httpx.post(server.url + "/logs-app/_doc", json=record, headers={"authorization": f"Bearer {key}"})
        if response.status_code != 201:
            assert response.status_code == 403, response.text
            error = response.json()["error"]
            assert error["type"] == "security_exception", error
            out.append((number, error["reason"]))
    return out


def _loki_streams(mark: str) -> list[tuple[dict[str, str], str]]:
    """The records as Loki streams: labels name the service (none for the nameless one)."""
    out = []
    for record in logical_records(mark):
        labels = {k: v for k, v in record.items() if k in ("service", "tenant")} or {"filename": "/var/log/x"}
        out.append((labels, record["message"]))
    return out


def _loki_refusals(response: httpx.Response) -> list[tuple[int, str]]:
    if response.status_code == 204:
        return []
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "entries_rejected", error
    return [(e["entry"], e["error"]) for e in error["detail"]]


def send_loki_json(server: ServerProcess, key: str, mark: str) -> list[tuple[int, str]]:
    now = str(time.time_ns())
    body = {"streams": [{"stream": labels, "values": [[now, line]]} for labels, line in _loki_streams(mark)]}
    return _loki_refusals(httpx.post(server.url + "/loki/api/v1/push", content=orjson.dumps(body),
                                     headers=_auth(key, "application/json")))


def send_loki_protobuf(server: ServerProcess, key: str, mark: str) -> list[tuple[int, str]]:
    import cramjam

    from logharbor.server.ingest.loki import PushRequest

    request = PushRequest()
    now = time.time_ns()
    for labels, line in _loki_streams(mark):
        stream = request.streams.add()
        stream.labels = "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
        entry = stream.entries.add()
        entry.timestamp.seconds, entry.timestamp.nanos = divmod(now, 1_000_000_000)
        entry.line = line
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    return _loki_refusals(httpx.post(server.url + "/loki/api/v1/push", content=body,
                                     headers=_auth(key, "application/x-protobuf")))


def _otlp_request(mark: str) -> dict:  # type: ignore[type-arg]
    resources = []
    for record in logical_records(mark):
        names = {"service": "service.name", "tenant": "tenant"}
        attributes = [{"key": names[k], "value": {"stringValue": v}} for k, v in record.items() if k in names]
        resources.append({"resource": {"attributes": attributes},
                          "scopeLogs": [{"logRecords": [{"body": {"stringValue": record["message"]}}]}]})
    return {"resourceLogs": resources}


def send_otlp_json(server: ServerProcess, key: str, mark: str) -> list[tuple[int, str]]:
    response = httpx.post(server.url + "/v1/logs", content=orjson.dumps(_otlp_request(mark)),
                          headers=_auth(key, "application/json"))
    assert response.status_code == 200, response.text
    partial = response.json().get("partialSuccess")
    if not partial:
        return []
    return [(0, partial["errorMessage"])] * int(partial["rejectedLogRecords"])  # one message for all


def send_otlp_protobuf(server: ServerProcess, key: str, mark: str) -> list[tuple[int, str]]:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
        ExportLogsServiceResponse,
    )

    request = json_format.Parse(orjson.dumps(_otlp_request(mark)), ExportLogsServiceRequest())
    response = httpx.post(server.url + "/v1/logs", content=request.SerializeToString(),
                          headers=_auth(key, "application/x-protobuf"))
    assert response.status_code == 200, response.text
    partial = ExportLogsServiceResponse.FromString(response.content).partial_success
    return [(0, partial.error_message)] * partial.rejected_log_records


#: protocol → (sender, the item numbers of the two refused records: billing, nameless; 0 where the
#: protocol names no item)
SENDERS = {
    "ndjson": (send_ndjson, [3, 6]),
    "ndjson-handed-back": (send_ndjson_handed_back, [2, 4]),
    "es-bulk": (send_bulk, [2, 4]),
    "es-index-bulk": (send_index_bulk, [2, 4]),
    "es-doc": (send_doc, [2, 4]),
    "loki-json": (send_loki_json, [2, 4]),
    "loki-protobuf": (send_loki_protobuf, [2, 4]),
    "otlp-json": (send_otlp_json, [0, 0]),
    "otlp-protobuf": (send_otlp_protobuf, [0, 0]),
}


def stored(server: ServerProcess, mark: str, expected: int) -> dict[str, tuple[str, str]]:
    """``message → (tenant, service)`` of the records carrying ``mark``, once ``expected`` are
    searchable (what was refused went in the same WAL entry as what was kept, or nowhere)."""
    deadline = time.monotonic() + 60
    while True:
        rows = server.query(mark, limit=100, **{"from": "now-1d"})["rows"]
        if len(rows) >= expected or time.monotonic() > deadline:
            return {r["message"]: (r.get("tenant", ""), r["service"]) for r in rows}
        time.sleep(0.1)


@pytest.mark.parametrize("protocol", sorted(SENDERS))
def test_a_writer_writes_only_its_services(tenants, protocol: str) -> None:  # type: ignore[no-untyped-def]
    """A record of a service outside the key's scope is refused on its own, in the protocol's own
    per-item form, naming the service and the scope; the records beside it are stored."""
    server, _ = tenants
    send, numbers = SENDERS[protocol]
    mark = f"wscope{protocol.replace('-', '')}"
    refusals = send(server, server.create_key("writer", **WRITER_SCOPE), mark)
    assert [n for n, _ in refusals] == numbers, refusals
    reasons = " | ".join(reason for _, reason in refusals)
    assert "'billing'" in reasons and "tenant acme, services checkout, api" in reasons, reasons
    if protocol not in ("otlp-json", "otlp-protobuf"):  # OTLP says the first reason only
        assert "'unknown'" in refusals[1][1] and "names no service" in refusals[1][1], refusals
    assert stored(server, mark, 2) == {f"{mark} checkout": ("acme", "checkout"), f"{mark} api": ("acme", "api")}


@pytest.mark.parametrize("protocol", sorted(SENDERS))
def test_unscoped_and_tenant_writers_write_every_service(tenants, protocol: str) -> None:  # type: ignore[no-untyped-def]
    """The same bodies from a key scoped to a tenant only, and from an unscoped key: all stored."""
    server, _ = tenants
    send, _ = SENDERS[protocol]
    for who, scope in (("tenant", {"tenant": "initech"}), ("all", {})):
        mark = f"wall{who}{protocol.replace('-', '')}"
        assert send(server, server.create_key("writer", **scope), mark) == []
        rows = stored(server, mark, 4)
        assert {service for _, service in rows.values()} == {"checkout", "billing", "api", "unknown"}, rows
        if who == "tenant":
            assert {tenant for tenant, _ in rows.values()} == {"initech"}, rows


def test_a_scoped_admin_writes_only_its_services_too(tenants) -> None:  # type: ignore[no-untyped-def]
    server, _ = tenants
    admin = server.create_key("admin", tenant="acme", services=["checkout"])
    refusals = send_ndjson(server, admin, "wscopeadmin")
    assert [n for n, _ in refusals] == [3, 4, 6], refusals  # billing, api, nameless
    assert stored(server, "wscopeadmin", 1) == {"wscopeadmin checkout": ("acme", "checkout")}


ROW_SHAPES = [
    {"message": "plain", "service": "checkout"},
    {"message": 'say "hi", {"service":"api"} [x]', "service": "checkout", "tenant": "acme"},
    {"message": ',"service":"api",', "service": 'chec"kout\\', "tenant": 'ac"me'},
    {"message": "m", "service": "café", "tenant": "ünï", "attributes": {"x": {"tenant": "globex", "service": "api"}}},
    {"message": "m", "service": "checkout", "nested": {"a": 1, "tenant": "globex"}, "list": [{"service": "x"}]},
    {"message": "m", "nested": {"a": 1, "tenant": "globex", "service": "x"}},
    {"message": "m", "service": "api", "http": {"status": 200, "path": '/a,"tenant":"x"'}, "tenant": "t"},
]


@pytest.mark.parametrize("record", ROW_SHAPES)
def test_a_rows_service_is_read_exactly(record: dict) -> None:  # type: ignore[type-arg]
    """The byte search of ``row_service`` gives what a JSON reader gives, whatever the values hold."""
    from logharbor.server.engine.store.rows import encode_record
    from logharbor.server.ingest.writescope import row_service

    row = encode_record(record, received_ns=1)
    service = row_service(row)
    if isinstance(service, bytes):
        service = orjson.loads(b'"' + service + b'"')
    assert service == orjson.loads(row)["service"]


# --- reading: every read endpoint × every scoped key -------------------------------------------

_ALL = '{service=~".+"}'
#: endpoint → (method, path, JSON body, whether its answer holds the records themselves: then the
#: key's own records must be in it, so the check cannot pass on an empty answer)
READS: dict[str, tuple[str, str, dict | None, bool]] = {  # type: ignore[type-arg]
    "query": ("POST", "/api/v1/query", {"q": "secret", "from": "now-1d", "limit": 1000}, True),
    "query.stats": ("POST", "/api/v1/query", {"q": "* | stats count() by tenant, service", "from": "now-1d"}, False),
    "query.top": ("POST", "/api/v1/query", {"q": "* | top 50 message", "from": "now-1d"}, True),
    "export": ("POST", "/api/v1/query#ndjson", {"q": "secret", "from": "now-1d", "limit": 1000}, True),
    "fields": ("GET", "/api/v1/fields?q=*&since=1d&top=100", None, True),
    "explain": ("POST", "/api/v1/explain", {"q": "secret", "since": "1d"}, False),
    "services": ("GET", "/api/v1/services?since=1d", None, False),
    "services.recorded": ("GET", "/api/v1/services?since=1d&recording=true", None, False),
    "storage": ("GET", "/api/v1/storage", None, False),
    "clock": ("GET", "/api/v1/clock/offsets", None, False),
    "trace": ("GET", f"/api/v1/traces/{SHARED_TRACE}", None, False),
    "alert-test": ("POST", "/api/v1/alerts/test", {"rule": {
        "name": "scopeprobe", "query": "secret", "condition": "count > 0", "window": "1d",
        "group_by": ["tenant", "service", "message"]}}, True),
    "loki.query_range": ("GET", "/loki/api/v1/query_range?limit=1000&query=" + quote(_ALL + ' |= "secret"'), None, True),
    "loki.query": ("GET", "/loki/api/v1/query?query="
                   + quote(f"sum by (tenant, service, message) (count_over_time({_ALL}[1d]))"), None, True),
    "loki.labels": ("GET", "/loki/api/v1/labels", None, False),
    "loki.service-values": ("GET", "/loki/api/v1/label/service/values", None, False),
    "loki.tenant-values": ("GET", "/loki/api/v1/label/tenant/values", None, False),
    "loki.message-values": ("GET", "/loki/api/v1/label/message/values", None, True),
    "loki.series": ("GET", "/loki/api/v1/series?match[]=" + quote(_ALL), None, False),
    "loki.index-stats": ("GET", "/loki/api/v1/index/stats?query=" + quote(_ALL), None, False),
    "loki.volume": ("GET", "/loki/api/v1/index/volume?query=" + quote(_ALL), None, False),
    "loki.detected-fields": ("GET", "/loki/api/v1/detected_fields?query=" + quote(_ALL), None, False),
    "loki.detected-labels": ("GET", "/loki/api/v1/detected_labels?query=" + quote(_ALL), None, False),
    "loki.detected-values": ("GET", "/loki/api/v1/detected_field/message/values?query=" + quote(_ALL), None, True),
    "loki.patterns": ("GET", "/loki/api/v1/patterns?query=" + quote(_ALL), None, False),
    "loki.other-org": ("GET", "/loki/api/v1/query_range?query=" + quote(_ALL) + "#org=globex", None, False),
}
#: key → (texts its answers must never hold, a text of its own records)
OUTSIDE = {
    "acme": (["globex secret", "globex span", '"billing"'], "acme secret 0"),
    "acme-checkout": (["globex secret", "globex span", "acme secret 1", '"api"', '"billing"'], "acme secret 0"),
    "globex": (["acme secret", "acme span", '"billing"'], "globex secret 0"),
}


@pytest.mark.parametrize("endpoint", sorted(READS))
@pytest.mark.parametrize("who", sorted(OUTSIDE))
def test_every_read_endpoint_answers_from_the_keys_scope_only(tenants, endpoint: str, who: str) -> None:  # type: ignore[no-untyped-def]
    """Records, counts, label and field values, series, volumes, patterns, rule previews: nothing
    of another tenant or service reaches a scoped reader (``"api"`` is acme's other service, which
    the ``acme-checkout`` reader must not learn even exists)."""
    server, keys = tenants
    method, path, body, holds_records = READS[endpoint]
    path, _, variant = path.partition("#")
    headers = {"authorization": f"Bearer {keys[who]}"}
    if variant == "ndjson":
        headers["accept"] = "application/x-ndjson"
    if variant.startswith("org="):
        headers["x-scope-orgid"] = variant[4:]
    response = httpx.request(method, server.url + path, json=body, headers=headers, timeout=60)
    forbidden, own = OUTSIDE[who]
    if variant.startswith("org="):  # Loki's tenant header cannot widen a key
        assert response.status_code == 403 if who != "globex" else response.status_code == 200, response.text
    else:
        assert response.status_code in (200, 404) if endpoint == "trace" else response.status_code == 200, response.text
    for text in forbidden:
        assert text not in response.text, (endpoint, who, text, response.text[:2000])
    if holds_records:
        assert own in response.text, (endpoint, who, response.text[:2000])


def test_every_tail_transport_streams_the_keys_services_only(tenants) -> None:  # type: ignore[no-untyped-def]
    """SSE, NDJSON and WebSocket on ``/api/v1/tail`` and Loki's WebSocket tail, opened by a reader
    scoped to one service of a tenant, get that service's new records and nothing else."""
    from tests.tail.clients import SseClient
    from websockets.sync.client import connect

    from logharbor.cli.tail import ws_url

    server, keys = tenants
    key = keys["acme-checkout"]
    auth = {"authorization": f"Bearer {key}"}
    sse = SseClient(server, "tailscope", key)
    sse.wait_subscribed()
    ws = connect(ws_url(server.url, "tailscope"), additional_headers=auth, open_timeout=30)
    assert "subscribed" in str(ws.recv(timeout=30))
    loki = connect(server.url.replace("http", "ws", 1) + "/loki/api/v1/tail?"
                   + urlencode({"query": '{service=~".+"} |= "tailscope"'}), additional_headers=auth, open_timeout=30)
    with httpx.stream("GET", server.url + "/api/v1/tail", params={"q": "tailscope"}, timeout=60,
                      headers={**auth, "accept": "application/x-ndjson"}) as ndjson:
        lines = ndjson.iter_lines()
        assert "subscribed" in next(lines)
        acme_writer = server.create_key("writer", tenant="acme")
        globex_writer = server.create_key("writer", tenant="globex")
        ingest(server, acme_writer, [{"message": "tailscope api", "service": "api"}])
        ingest(server, globex_writer, [{"message": "tailscope globex", "service": "checkout"}])
        ingest(server, acme_writer, [{"message": "tailscope checkout", "service": "checkout"},
                                     {"message": "tailscope last", "service": "checkout"}])
        ndjson_seen = []
        for line in lines:
            if line.strip():
                ndjson_seen.append(orjson.loads(line).get("message"))
                if "tailscope last" in ndjson_seen:
                    break
    sse_seen = [r["message"] for r in sse.records_until("tailscope last")[0]]
    sse.close()
    ws_seen: list[str] = []
    while "tailscope last" not in ws_seen:
        ws_seen.append(orjson.loads(ws.recv(timeout=60)).get("message"))
    ws.close()
    loki_text = ""
    while "tailscope last" not in loki_text:
        loki_text += str(loki.recv(timeout=60))
    loki.close()
    for seen in (ndjson_seen, sse_seen, ws_seen):
        assert [m for m in seen if m] == ["tailscope checkout", "tailscope last"], seen
    assert "tailscope checkout" in loki_text and "tailscope api" not in loki_text and "globex" not in loki_text


@pytest.mark.parametrize("services", [["checkout"], ['chec"kout\\', "café"], ["chec"], ['chec"kout\\\\'], ["unknown", "api"]])
def test_the_check_keeps_exactly_the_rows_of_the_keys_services(services: list[str]) -> None:
    """Both ways through ``WriteScope.sift_payload`` (every row inside: the byte search alone; some
    outside: row by row) keep exactly the rows whose decoded service is in the list."""
    from logharbor.server.engine.store.rows import encode_record
    from logharbor.server.ingest.writescope import WriteScope
    from logharbor.server.scopes import Scope

    rows = [encode_record(record, received_ns=1) for record in ROW_SHAPES]
    rows += [encode_record({"message": "m", "service": s}, received_ns=1) for s in ('chec"kout\\', "café", "chec")]
    check = WriteScope(Scope.of("acme", services))
    inside = [row for row in rows if orjson.loads(row)["service"] in services]
    for body in (rows, inside):
        payload, kept, refused = check.sift_payload(b"\n".join(body), len(body))
        assert (payload.split(b"\n") if kept else []) == [row for row in body if row in inside]
        assert kept == len([row for row in body if row in inside])
        assert [i for i, _ in refused] == [i for i, row in enumerate(body) if row not in inside]


@pytest.mark.parametrize("row", [b'{"service":{"a":1},"message":"m"}', b'{"service":["checkout"]}', b"[1]", b"not json"])
def test_a_row_of_another_shape_is_refused_never_an_error(row: bytes) -> None:
    """Rows are the encoders' own; one of any other shape (a service that is not a string, no
    object, no JSON) is refused like a row without a service, never a 500."""
    from logharbor.server.ingest.writescope import WriteScope
    from logharbor.server.scopes import Scope

    assert WriteScope(Scope.of(None, ["checkout"])).sift_payload(row, 1)[1:] == (
        0, [(0, "service None is outside this key's scope (services checkout)")])


# --- minting: no key makes a key wider than itself ---------------------------------------------

#: request → status, for a creator that is an admin of acme/checkout expiring in 1 h at 100 records/s
MINTS = [
    ({"role": "reader"}, 201),
    ({"role": "admin"}, 201),
    ({"role": "reader", "tenant": "acme", "services": ["checkout"]}, 201),
    ({"role": "reader", "expires": "30m"}, 201),
    ({"role": "writer", "ingest_rate": 50}, 201),
    ({"role": "reader", "expires": "2h"}, 403),
    ({"role": "writer", "ingest_rate": 1000}, 403),
    ({"role": "admin", "services": ["checkout", "api"]}, 403),
    ({"role": "admin", "services": ["api"]}, 403),
    ({"role": "admin", "tenant": "globex"}, 403),
    ({"role": "reader", "tenant": "ACME"}, 403),
    ({"role": "metrics"}, 403),
    ({"role": "reader", "services": []}, 400),
    ({"role": "reader", "services": ["checkout", ""]}, 400),
]


@pytest.fixture(scope="module")
def minter(tenants):  # type: ignore[no-untyped-def]
    server, _ = tenants
    with server.client() as client:
        made = client.post("/api/v1/keys", json={"role": "admin", "tenant": "acme", "services": ["checkout"],
                                                 "expires": "1h", "ingest_rate": 100, "name": "minter"})
    assert made.status_code == 201, made.text
    return server, made.json()["key"], made.json()["expires_ns"]


@pytest.mark.parametrize(("request_body", "status"), MINTS)
def test_no_key_mints_a_key_wider_than_itself(minter, request_body: dict, status: int) -> None:  # type: ignore[no-untyped-def, type-arg]
    """In role (a metrics key reads server-wide figures), tenant, services, expiry and ingest rate;
    what the request leaves open is the creator's, and so is what the new key mints in turn."""
    server, key, expires_ns = minter
    response = httpx.post(server.url + "/api/v1/keys", json=request_body, headers={"authorization": f"Bearer {key}"})
    assert response.status_code == status, (request_body, response.text)
    if status != 201:
        return
    made = response.json()
    assert (made["tenant"], made["services"]) == ("acme", ["checkout"])
    assert made["expires_ns"] is not None and made["expires_ns"] <= expires_ns
    listed = {k["prefix"]: k for k in httpx.get(server.url + "/api/v1/keys", headers=server.headers).json()["keys"]}
    assert listed[made["prefix"]]["ingest_rate"] <= 100
    if made["role"] == "admin":  # its own keys are bounded by what it was given, not by its request
        again = httpx.post(server.url + "/api/v1/keys", json={"role": "reader", "expires": "2h"},
                           headers={"authorization": f"Bearer {made['key']}"})
        assert again.status_code == 403, again.text


def test_the_service_a_record_ends_up_with_is_the_one_checked(tenants) -> None:  # type: ignore[no-untyped-def]
    """However a shipper names the service (an alias, ECS ``service.name``, a Loki label Loki reads
    it from, a nested object), the check sees the service the record is stored with."""
    server, _ = tenants
    key = server.create_key("writer", tenant="acme", services=["checkout"])
    lines = [{"message": "aliasmark a", "serviceName": "billing"}, {"message": "aliasmark b", "service.name": "billing"},
             {"message": "aliasmark c", "service": {"name": "billing"}}, {"message": "aliasmark d", "service_name": "checkout"}]
    answer = httpx.post(server.url + "/api/v1/logs", content=b"\n".join(orjson.dumps(r) for r in lines),
                        headers=_auth(key, "application/x-ndjson")).json()
    assert [r["line"] for r in answer["rejected"]] == [1, 2, 3] and answer["accepted"] == 1, answer
    assert all("service 'billing' is outside" in r["error"] for r in answer["rejected"]), answer
    bulk = b'{"index":{"_index":"logs-app"}}\n{"message":"aliasmark e","service":{"name":"billing"}}\n'
    items = httpx.post(server.url + "/_bulk", content=bulk, headers=_auth(key, "application/x-ndjson")).json()["items"]
    assert items[0]["index"]["status"] == 403 and "'billing'" in items[0]["index"]["error"]["reason"], items
    now = str(time.time_ns())
    push = {"streams": [{"stream": {"app": "billing"}, "values": [[now, "aliasmark f"]]},
                        {"stream": {"job": "varlogs", "service_name": "checkout"}, "values": [[now, "aliasmark g"]]}]}
    loki = httpx.post(server.url + "/loki/api/v1/push", content=orjson.dumps(push), headers=_auth(key, "application/json"))
    assert loki.status_code == 400 and [e["entry"] for e in loki.json()["error"]["detail"]] == [1], loki.text
    assert stored(server, "aliasmark", 2) == {"aliasmark d": ("acme", "checkout"), "aliasmark g": ("acme", "checkout")}
