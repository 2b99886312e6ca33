"""The ``elasticsearch`` sink against Elasticsearch's documented ``_bulk`` answers, replayed on the
wire by a loopback server that records what the sink sent, and against logharbor's own ``_bulk``
endpoint on a real server process."""

from __future__ import annotations

import base64
import gzip
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.agent.conftest import sink_retries, wait_for

from logharbor.agent.config import ConfigError, parse_config
from logharbor.agent.sinks.elasticsearch import Config, ElasticsearchSink, classify_item
from logharbor.agent.types import Ack, AckStatus, Encoded

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "es_bulk_responses.json").read_text())
DAY1 = "2026-11-24T23:59:59.500000000Z"
DAY2 = "2026-11-25T00:00:01.000000000Z"


class Replay:
    """Answers each request with the next recorded response; keeps every request it got."""

    def __init__(self, script: list[str]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
                replay.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                        "at": time.monotonic()})
                name = replay.script.pop(0) if replay.script else "all_created"
                answer = FIXTURE[name]
                data = b"" if answer["body"] is None else json.dumps(answer["body"]).encode()
                self.send_response(answer["status"])
                for k, v in answer["headers"].items():
                    if k.lower() != "content-length":
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def pairs(self, k: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """(action, document) pairs of request ``k``."""
        lines = [orjson.loads(x) for x in self.requests[k]["body"].split(b"\n") if x]
        return list(zip(lines[0::2], lines[1::2], strict=True))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def replay() -> Iterator[Any]:
    made: list[Replay] = []

    def make(*script: str) -> Replay:
        r = Replay(list(script))
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def records(ns: list[int], ts: str = DAY1) -> bytes:
    return b"".join(orjson.dumps({"timestamp": ts, "message": f"m{n}", "n": n}) + b"\n" for n in ns)


def make_sink(tmp: Path, url: str, **options: Any) -> ElasticsearchSink:
    cfg = Config.model_validate({"type": "elasticsearch", "url": url, "retry_initial_secs": 0.05,
                                 "retry_max_secs": 0.2, "batch": {"timeout_secs": 0.1}, **options})
    sink = ElasticsearchSink("es", cfg, tmp / "data")
    sink.start()
    return sink


def submit(sink: ElasticsearchSink, payload: bytes, count: int) -> Ack:
    ack = Ack(1)
    sink.submit(Encoded(payload, count, ack))
    return ack


def test_all_created_one_request_with_create_actions_and_basic_auth(tmp_path: Path, replay: Any) -> None:
    r = replay("all_created")
    sink = make_sink(tmp_path, r.url, index="test", username="elastic", password="changeme")
    ack = submit(sink, records([1, 2, 3]), 3)
    assert wait_for(lambda: ack.finished, 10)
    sink.close(2)
    assert ack.status == AckStatus.DELIVERED and len(r.requests) == 1
    req = r.requests[0]
    assert req["path"] == "/_bulk"
    assert req["headers"]["Content-Type"] == "application/x-ndjson"
    assert req["headers"]["Content-Encoding"] == "gzip"
    assert req["headers"]["Authorization"] == "Basic " + base64.b64encode(b"elastic:changeme").decode()
    pairs = r.pairs(0)
    assert [{"create": {"_index": a["create"]["_index"]}} for a, _ in pairs] == [{"create": {"_index": "test"}}] * 3
    assert len({a["create"]["_id"] for a, _ in pairs}) == 3  # deterministic ids (document_ids: batch)
    assert [d["n"] for _, d in pairs] == [1, 2, 3]
    assert pairs[0][1]["@timestamp"] == DAY1  # data streams need it; taken from the record


def test_mixed_answer_retries_exactly_the_failed_items_and_dead_letters_the_permanent_ones(
        tmp_path: Path, replay: Any) -> None:
    r = replay("mixed", "retried_created")
    dead = tmp_path / "dead.ndjson"
    sink = make_sink(tmp_path, r.url, index="test", api_key="a2V5OnNlY3JldA==", compression="none",
                     dead_letter_path=str(dead))
    ack = submit(sink, records([1, 2, 3, 4, 5, 6]), 6)
    assert wait_for(lambda: ack.finished, 10)
    time.sleep(0.3)  # a wrong third request would show up now
    sink.close(2)
    assert len(r.requests) == 2
    assert r.requests[0]["headers"]["Authorization"] == "ApiKey a2V5OnNlY3JldA=="
    assert "Content-Encoding" not in r.requests[0]["headers"]
    assert [d["n"] for _, d in r.pairs(0)] == [1, 2, 3, 4, 5, 6]
    # the retry carries exactly the 429 and the 503 items, as they were, nothing else
    assert [d["n"] for _, d in r.pairs(1)] == [2, 5]
    assert r.pairs(1) == [r.pairs(0)[1], r.pairs(0)[4]]
    # the 400 is dead-lettered with its reason; the 409 (already there on create) is not
    lines = [orjson.loads(x) for x in dead.read_bytes().splitlines()]
    assert [x["n"] for x in lines] == [3]
    assert lines[0]["_dead_letter"]["status"] == 400
    assert "mapper_parsing_exception" in lines[0]["_dead_letter"]["reason"]
    assert ack.status == AckStatus.REJECTED  # one record was refused for good
    assert sink.delivered == 5


def test_whole_request_429_waits_out_retry_after_and_resends_the_same_body(tmp_path: Path,
                                                                          replay: Any) -> None:
    r = replay("too_many_requests", "all_created")
    sink = make_sink(tmp_path, r.url, index="test")
    ack = submit(sink, records([1, 2, 3]), 3)
    assert wait_for(lambda: ack.finished, 15)
    sink.close(2)
    assert ack.status == AckStatus.DELIVERED and len(r.requests) == 2
    assert r.requests[1]["body"] == r.requests[0]["body"]
    assert r.requests[1]["at"] - r.requests[0]["at"] >= 0.95  # Retry-After: 1 (a lower bound only)


def test_413_splits_the_batch_in_halves(tmp_path: Path, replay: Any) -> None:
    r = replay("too_large", "all_created", "all_created")
    sink = make_sink(tmp_path, r.url, index="test", batch={"timeout_secs": 0.5})
    acks = [submit(sink, records([1, 2, 3]), 3), submit(sink, records([4, 5, 6]), 3)]
    assert wait_for(lambda: all(a.finished for a in acks), 10)
    sink.close(2)
    assert len(r.requests) == 3
    assert [d["n"] for _, d in r.pairs(0)] == [1, 2, 3, 4, 5, 6]
    assert [d["n"] for _, d in r.pairs(1)] == [1, 2, 3]
    assert [d["n"] for _, d in r.pairs(2)] == [4, 5, 6]
    assert all(a.status == AckStatus.DELIVERED for a in acks)


def test_date_pattern_index_from_each_records_own_timestamp_in_utc(tmp_path: Path, replay: Any) -> None:
    r = replay("all_created")
    sink = make_sink(tmp_path, r.url, index="logs-%Y.%m.%d")
    payload = (orjson.dumps({"timestamp": DAY1, "n": 1}) + b"\n"
               + orjson.dumps({"timestamp": "2026-11-25T01:00:01+02:00", "n": 2}) + b"\n"
               + orjson.dumps({"timestamp": 1795564801_000_000_000, "n": 3}) + b"\n")  # ns, DAY2
    ack = submit(sink, payload, 3)
    assert wait_for(lambda: ack.finished, 10)
    sink.close(2)
    assert [a["create"]["_index"] for a, _ in r.pairs(0)] == [
        "logs-2026.11.24", "logs-2026.11.24", "logs-2026.11.25"]


def test_item_classification() -> None:
    items = FIXTURE["mixed"]["body"]["items"]
    assert [classify_item(i)[0] for i in items] == ["ok", "retry", "reject", "ok", "retry", "ok"]
    assert classify_item({"create": {"status": 500, "error": {"type": "x"}}})[0] == "retry"
    # es_rejected_execution_exception is retried whatever status it comes with
    assert classify_item({"create": {"status": 400, "error": {
        "type": "es_rejected_execution_exception"}}})[0] == "retry"


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    base = {"sources": {"a": {"type": "file", "include": ["x"]}}}
    for sink, key, reason in [
        ({"index": "Logs-%Y"}, "sinks.es.index", "not a valid index name"),
        ({"index": "logs %Y"}, "sinks.es.index", "not a valid index name"),
        ({"password": "p"}, "sinks.es", "without username"),
        ({"username": "u", "api_key": "k"}, "sinks.es", "not both"),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_config({**base, "sinks": {"es": {"type": "elasticsearch", "url": "http://h:9200", **sink}}},
                         "agent.yaml")
        assert key in str(info.value) and reason in str(info.value), str(info.value)


@pytest.mark.slow
def test_into_the_real_servers_bulk_endpoint_with_a_date_pattern_index(tmp_path: Path,
                                                                       server_factory: Any) -> None:
    srv = server_factory("--batch-max-age", "0.2")
    key = srv.create_key("writer")
    sink = make_sink(tmp_path, srv.url, index="shipped-%Y.%m.%d", headers={"Authorization": f"Bearer {key}"})
    now = time.time()
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now))
    day = time.strftime("%Y.%m.%d", time.gmtime(now))
    acks = [submit(sink, records(list(range(i * 100, i * 100 + 100)), ts), 100) for i in range(4)]
    assert wait_for(lambda: all(a.finished for a in acks), 30)
    sink.close(5)
    assert all(a.status == AckStatus.DELIVERED for a in acks)
    assert srv.wait_rows(400) >= 400
    rows = srv.query("n:[0 TO 399] | stats count() as c by index", since="now-1d")["rows"]
    assert rows == [{"index": f"shipped-{day}", "c": 400}]


def test_tls_with_a_custom_ca(tmp_path: Path, receiver_factory: Any) -> None:
    import subprocess

    ca_key, ca = tmp_path / "ca.key", tmp_path / "ca.pem"
    key, csr, cert = tmp_path / "srv.key", tmp_path / "srv.csr", tmp_path / "srv.pem"
    ext = tmp_path / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")

    def run(*a: str) -> None:
        subprocess.run(["openssl", *a], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
        "-days", "2", "-subj", "/CN=test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(ext))
    r = receiver_factory("--tls-cert", str(cert), "--tls-key", str(key))
    untrusted = make_sink(tmp_path / "u", r.url)
    before = sink_retries("es")
    ack_u = submit(untrusted, records([0]), 1)
    assert wait_for(lambda: sink_retries("es") >= before + 2, 30)  # the handshake failed, twice
    assert not ack_u.finished  # an unknown CA is never trusted silently
    untrusted.close(0.3)
    sink = make_sink(tmp_path, r.url, tls={"ca_file": str(ca)})
    ack = submit(sink, records([1, 2, 3]), 3)
    assert wait_for(lambda: ack.finished, 10)
    sink.close(2)
    assert ack.status == AckStatus.DELIVERED
    assert [x["n"] for x in r.records()] == [1, 2, 3]
