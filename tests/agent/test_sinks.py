"""The logharbor sink against a real receiver process: encodings, keys, TLS, retries, refusals."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.agent.conftest import sink_retries, wait_for

from logharbor.agent.sinks.base import BufferedSink
from logharbor.agent.sinks.logharbor import Config, LogharborSink, parse_retry_after
from logharbor.agent.types import Ack, AckStatus, Encoded


def payload(start: int, n: int) -> bytes:
    return b"".join(orjson.dumps({"message": f"m{i}", "n": i}) + b"\n" for i in range(start, start + n))


def make_sink(tmp: Path, url: str, **options: Any) -> LogharborSink:
    cfg = Config.model_validate({"type": "logharbor", "url": url, "retry_initial_secs": 0.05,
                                 "batch": {"timeout_secs": 0.05}, **options})
    sink = LogharborSink("srv", cfg, tmp / "data")
    sink.start()
    return sink


def submit(sink: BufferedSink, start: int, n: int) -> Ack:
    done: list[Ack] = []
    ack = Ack(1, done.append)
    sink.submit(Encoded(payload(start, n), n, ack))
    return ack


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_batches_arrive_compressed_with_the_api_key(tmp_path: Path, receiver_factory: Any,
                                                    compression: str) -> None:
    r = receiver_factory("--api-key", "lh_secret")
    sink = make_sink(tmp_path, r.url, api_key="lh_secret", compression=compression)
    acks = [submit(sink, i * 100, 100) for i in range(5)]
    assert wait_for(lambda: all(a.finished for a in acks), 10)
    sink.close(5)
    # each record once (two batches may be in flight at once, "concurrency": their order is not kept)
    assert sorted(x["n"] for x in r.records()) == list(range(500))
    assert set(r.stats()["encodings"]) == {"identity" if compression == "none" else compression}
    assert all(a.status == AckStatus.DELIVERED for a in acks)


def test_a_wrong_key_is_retried_not_thrown_away(tmp_path: Path, receiver_factory: Any) -> None:
    r = receiver_factory("--api-key", "lh_right")
    sink = make_sink(tmp_path, r.url, api_key="lh_wrong", retry_max_secs=0.2)
    ack = submit(sink, 0, 10)
    assert wait_for(lambda: r.stats()["requests"] >= 3, 10)
    assert not ack.finished  # the checkpoint stays behind these records until the key is fixed
    sink.close(0.2)
    assert r.records() == []


def test_a_bad_request_is_permanent_and_goes_to_the_dead_letter_file(tmp_path: Path,
                                                                     receiver_factory: Any) -> None:
    r = receiver_factory("--fail-first", "1", "--fail-status", "400")
    sink = make_sink(tmp_path, r.url, dead_letter_path=str(tmp_path / "dead.ndjson"))
    ack = submit(sink, 0, 10)
    assert wait_for(lambda: ack.finished, 10)
    sink.close(5)
    assert ack.status == AckStatus.REJECTED
    assert r.stats()["requests"] == 1
    assert (tmp_path / "dead.ndjson").read_bytes() == payload(0, 10)


def test_429_with_retry_after_is_honoured_then_delivered(tmp_path: Path, receiver_factory: Any) -> None:
    r = receiver_factory("--fail-first", "2", "--fail-status", "429", "--retry-after", "1")
    sink = make_sink(tmp_path, r.url)
    start = time.monotonic()
    ack = submit(sink, 0, 50)
    assert wait_for(lambda: ack.finished, 15)
    waited = time.monotonic() - start
    sink.close(5)
    assert ack.status == AckStatus.DELIVERED
    assert r.stats()["failed"] == 2 and len(r.records()) == 50
    assert waited >= 2.0  # two Retry-After: 1 answers were each waited out (a lower bound only)


def test_5xx_is_retried_until_delivered(tmp_path: Path, receiver_factory: Any) -> None:
    r = receiver_factory("--fail-first", "3", "--fail-status", "503")
    sink = make_sink(tmp_path, r.url)
    ack = submit(sink, 0, 20)
    assert wait_for(lambda: ack.finished, 15)
    sink.close(5)
    assert ack.status == AckStatus.DELIVERED and len(r.records()) == 20


def test_per_line_rejections_are_permanent_for_those_lines_only(tmp_path: Path,
                                                                receiver_factory: Any) -> None:
    r = receiver_factory("--reject-match", '"m7"')
    sink = make_sink(tmp_path, r.url, dead_letter_path=str(tmp_path / "dead.ndjson"))
    ack = submit(sink, 0, 10)
    assert wait_for(lambda: ack.finished, 10)
    sink.close(5)
    assert ack.status == AckStatus.REJECTED
    assert sorted(x["n"] for x in r.records()) == [0, 1, 2, 3, 4, 5, 6, 8, 9]
    assert r.stats()["requests"] == 1  # not retried
    assert orjson.loads((tmp_path / "dead.ndjson").read_bytes())["n"] == 7


def test_413_splits_the_batch(tmp_path: Path, receiver_factory: Any) -> None:
    one = len(payload(0, 100))
    r = receiver_factory("--max-body", str(one * 2))
    sink = make_sink(tmp_path, r.url, batch={"timeout_secs": 1.0, "max_bytes": 10 * one})
    acks = [submit(sink, i * 100, 100) for i in range(6)]
    assert wait_for(lambda: all(a.finished for a in acks), 15)
    sink.close(5)
    assert sorted(x["n"] for x in r.records()) == list(range(600))
    assert r.stats()["too_large"] >= 1
    assert all(a.status == AckStatus.DELIVERED for a in acks)


def test_413_splits_one_chunk_into_its_records(tmp_path: Path, receiver_factory: Any) -> None:
    """One source chunk larger than the receiver takes (a file block of short lines, an ALB
    object's 5,000 lines) was refused whole; now it is halved down to records, and only a record
    too large on its own is refused."""
    big = orjson.dumps({"message": "x" * 2000, "n": 1000}) + b"\n"
    body = payload(0, 50) + big + payload(50, 50)
    r = receiver_factory("--max-body", str(len(body) // 5))
    sink = make_sink(tmp_path, r.url, dead_letter_path=str(tmp_path / "dead.ndjson"))
    done: list[Ack] = []
    ack = Ack(1, done.append)
    sink.submit(Encoded(body, 101, ack))
    assert wait_for(lambda: ack.finished, 15)
    sink.close(5)
    assert sorted(x["n"] for x in r.records()) == list(range(100))  # delivered: 100, lost: 0
    assert ack.status == AckStatus.REJECTED  # the one record no split can make small enough
    assert (tmp_path / "dead.ndjson").read_bytes() == big
    assert len(set(r.stats()["keys"])) == len(r.stats()["keys"])  # every half under a key of its own


def test_connections_a_receiver_closes_are_forgotten(tmp_path: Path, receiver_factory: Any) -> None:
    """A receiver (or proxy) answering ``Connection: close``: every closed connection stayed in the
    sink's list for good, so the agent's memory grew with each batch."""
    r = receiver_factory("--close-each")
    sink = make_sink(tmp_path, r.url)
    for i in range(40):
        ack = submit(sink, i * 5, 5)
        assert wait_for(lambda: ack.finished, 10)  # noqa: B023 - waited on before the next
    sink.close(5)
    assert sorted(x["n"] for x in r.records()) == list(range(200))
    assert r.stats()["requests"] == 40
    assert len(sink.http._all) <= sink.cfg.concurrency


def test_receiver_down_then_up_delivers_everything(tmp_path: Path, receiver_factory: Any) -> None:
    r = receiver_factory()
    r.kill()
    sink = make_sink(tmp_path, r.url, retry_max_secs=0.5)
    before = sink_retries("srv")
    acks = [submit(sink, i * 10, 10) for i in range(5)]
    assert wait_for(lambda: sink_retries("srv") >= before + 3, 30)  # tried and failed, several times
    assert not any(a.finished for a in acks)  # nothing acknowledged while nobody answers
    r2 = receiver_factory(port=r.port)
    assert wait_for(lambda: all(a.finished for a in acks), 15)
    sink.close(5)
    assert sorted(x["n"] for x in r2.records()) == list(range(50))


def test_tls_with_a_custom_ca(tmp_path: Path, receiver_factory: Any) -> None:
    ca_key, ca = tmp_path / "ca.key", tmp_path / "ca.pem"
    key, csr, cert = tmp_path / "srv.key", tmp_path / "srv.csr", tmp_path / "srv.pem"
    ext = tmp_path / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
        "-days", "2", "-subj", "/CN=test-ca")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "2", "-extfile", str(ext))
    r = receiver_factory("--tls-cert", str(cert), "--tls-key", str(key))
    untrusted = make_sink(tmp_path / "u", r.url)
    before = sink_retries("srv")
    ack_u = submit(untrusted, 0, 5)
    assert wait_for(lambda: sink_retries("srv") >= before + 2, 30)  # the handshake failed, twice
    assert not ack_u.finished  # an unknown CA is never trusted silently
    untrusted.close(0.5)
    sink = make_sink(tmp_path, r.url, tls={"ca_file": str(ca)})
    ack = submit(sink, 0, 5)
    assert wait_for(lambda: ack.finished, 10)
    sink.close(5)
    assert [x["n"] for x in r.records()] == [0, 1, 2, 3, 4]


def test_retry_after_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert 0.0 <= parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") <= 0.0  # type: ignore[operator]


def test_regression_concurrent_deliveries_never_share_a_compressor(tmp_path: Path,
                                                                    receiver_factory: Any) -> None:
    # a zstd compressor shared by two delivery threads produced corrupt frames (found by the bench)
    r = receiver_factory()
    sink = make_sink(tmp_path, r.url, concurrency=4, compression_level=9,
                     batch={"timeout_secs": 0.05, "max_bytes": 200_000})
    acks = [submit(sink, i * 5000, 5000) for i in range(40)]
    assert wait_for(lambda: all(a.finished for a in acks), 60)
    sink.close(5)
    assert sorted(x["n"] for x in r.records()) == list(range(200_000))
    assert all(a.status == AckStatus.DELIVERED for a in acks)


def test_drop_newest_acknowledges_dropped_chunks_and_counts_them(tmp_path: Path, receiver_factory: Any) -> None:
    from logharbor.agent.telemetry import METRICS

    r = receiver_factory()
    r.kill()  # nobody answers: the buffer fills up
    sink = make_sink(tmp_path, r.url, buffer={"max_bytes": 64 * 1024, "when_full": "drop_newest"})
    before = METRICS.dropped.labels("srv")._value.get()
    acks = [submit(sink, i * 1000, 1000) for i in range(20)]  # ~27 KB each
    dropped = [a for a in acks if a.finished]
    assert dropped and all(a.status == AckStatus.DROPPED for a in dropped)
    assert not all(a.finished for a in acks)  # what the buffer took waits for delivery
    assert METRICS.dropped.labels("srv")._value.get() - before == 1000 * len(dropped)
    sink.close(0.2)


def make_es_sink(tmp: Path, url: str, **options: Any) -> BufferedSink:
    from logharbor.agent.sinks.elasticsearch import Config as EsConfig
    from logharbor.agent.sinks.elasticsearch import ElasticsearchSink

    cfg = EsConfig.model_validate({"type": "elasticsearch", "url": url, "retry_initial_secs": 0.05,
                                   "batch": {"timeout_secs": 0.05}, **options})
    sink = ElasticsearchSink("es", cfg, tmp / "data")
    sink.start()
    return sink


def test_elasticsearch_bulk_resends_only_the_items_refused_with_429(tmp_path: Path,
                                                                      receiver_factory: Any) -> None:
    r = receiver_factory("--bulk-retry-first", "--reject-match", '"m7"')
    sink = make_es_sink(tmp_path, r.url, dead_letter_path=str(tmp_path / "dead.ndjson"))
    ack = submit(sink, 0, 20)
    assert wait_for(lambda: ack.finished, 10)
    sink.close(5)
    stored = [x["n"] for x in r.records()]
    assert sorted(stored) == [n for n in range(20) if n != 7]  # each once: accepted items not resent
    assert r.stats()["bulk_requests"] == 2
    assert ack.status == AckStatus.REJECTED
    assert orjson.loads((tmp_path / "dead.ndjson").read_bytes())["n"] == 7


@pytest.mark.slow
def test_elasticsearch_sink_into_the_real_servers_bulk_endpoint(tmp_path: Path, server_factory: Any) -> None:
    srv = server_factory("--batch-max-age", "0.2")
    key = srv.create_key("writer")
    sink = make_es_sink(tmp_path, srv.url, index="shipped", headers={"Authorization": f"Bearer {key}"})
    acks = [submit(sink, i * 100, 100) for i in range(5)]
    assert wait_for(lambda: all(a.finished for a in acks), 30)
    sink.close(5)
    assert all(a.status == AckStatus.DELIVERED for a in acks)
    assert srv.wait_rows(500) >= 500
    rows = srv.query("n:[0 TO 499] | stats count() as c", since="now-1d")["rows"]
    assert rows[0]["c"] == 500


def test_a_batch_whose_answer_was_lost_is_resent_under_the_same_key(tmp_path: Path,
                                                                    receiver_factory: Any) -> None:
    r = receiver_factory("--lose-answer-first", "2", "--dedup-keys")
    sink = make_sink(tmp_path, r.url, retry_max_secs=0.1, concurrency=1,
                     batch={"timeout_secs": 0.05, "max_events": 100})
    acks = [submit(sink, i * 100, 100) for i in range(3)]
    assert wait_for(lambda: all(a.finished for a in acks), 20)
    sink.close(5)
    stats = r.stats()
    keys = stats["keys"]
    assert stats["lost_answers"] == 2 and stats["repeats"] == 2
    assert len(keys) == len(set(keys)) + 2  # each lost answer: the same batch, the same key, once more
    assert all(k and len(k) <= 128 and k.isascii() and k.isprintable() for k in keys)
    assert sorted(x["n"] for x in r.records()) == list(range(300))  # stored once: no duplicate


def test_a_disk_buffered_batch_keeps_its_key_and_its_records_across_a_restart(
        tmp_path: Path, receiver_factory: Any) -> None:
    """The answer is lost, the agent stops before it retries; the restarted sink forms the very
    same batch from the disk buffer and sends it under the same key: the receiver stores it once."""
    r = receiver_factory("--lose-answer-first", "1", "--dedup-keys")
    options = {"buffer": {"type": "disk"}, "retry_initial_secs": 30, "concurrency": 1,
               "batch": {"timeout_secs": 0.3}}
    sink = make_sink(tmp_path, r.url, **options)
    for i in range(4):
        submit(sink, i * 10, 10)  # acknowledged at once: fsync'd in the disk buffer
    assert wait_for(lambda: r.stats()["lost_answers"] == 1, 10)
    sink.close(0.2)  # stopped while waiting to retry
    later = make_sink(tmp_path, r.url, **options)
    for i in range(4, 6):  # more records arrive after the restart: not part of the old batch
        submit(later, i * 10, 10)
    assert wait_for(lambda: len({x["n"] for x in r.records()}) == 60, 20)
    later.close(5)
    keys = r.stats()["keys"]
    assert keys[1] == keys[0]  # the replayed batch: same key
    assert r.stats()["repeats"] == 1
    assert sorted(x["n"] for x in r.records()) == list(range(60))  # nothing twice, nothing lost


def test_elasticsearch_ids_are_the_same_on_every_attempt_of_a_record(tmp_path: Path,
                                                                   receiver_factory: Any) -> None:
    r = receiver_factory("--bulk-retry-first")
    sink = make_es_sink(tmp_path, r.url)
    ack = submit(sink, 0, 10)
    assert wait_for(lambda: ack.finished, 10)
    second = submit(sink, 10, 10)
    assert wait_for(lambda: second.finished, 10)
    sink.close(5)
    first, retried, other = r.stats()["bulk_ids"]
    assert len(set(first)) == 10 and all(isinstance(x, str) and len(x) == 20 for x in first)
    assert retried == first[1::2]  # the items refused with 429 are resent alone, with their ids
    assert not set(other) & set(first)  # a new batch: new ids
    assert sorted(x["n"] for x in r.records()) == list(range(20))


def test_elasticsearch_document_ids_auto_sends_none(tmp_path: Path, receiver_factory: Any) -> None:
    r = receiver_factory()
    sink = make_es_sink(tmp_path, r.url, document_ids="auto")
    ack = submit(sink, 0, 5)
    assert wait_for(lambda: ack.finished, 10)
    sink.close(5)
    assert r.stats()["bulk_ids"] == [[None] * 5]


def test_a_body_whose_compression_was_refused_is_sent_again_uncompressed(tmp_path: Path,
                                                                        receiver_factory: Any) -> None:
    """A 400 bad_encoding says nothing against the records: they are sent, not dead-lettered."""
    r = receiver_factory("--refuse-encoding", "zstd")
    sink = make_sink(tmp_path, r.url, compression="zstd", dead_letter_path=str(tmp_path / "dead.ndjson"))
    acks = [submit(sink, i * 100, 100) for i in range(3)]
    assert wait_for(lambda: all(a.finished for a in acks), 10)
    sink.close(5)
    assert all(a.status == AckStatus.DELIVERED for a in acks)
    assert sorted(x["n"] for x in r.records()) == list(range(300))
    assert not (tmp_path / "dead.ndjson").exists()
    assert r.stats()["encodings"]["identity"] == r.stats()["encodings"]["zstd"]
