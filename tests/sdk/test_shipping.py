"""Direct shipping against a real HTTP receiver on loopback: batches, compression, retries, bounds."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sdk_helpers import Receiver, free_port

from logharbor import sdk
from logharbor.sdk.shipping import HttpShipper


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def test_configure_ships_batched_zstd_with_the_key(capture, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="shipper", env="test", output=None, ship_to=receiver.url, api_key="lh_secret")
    log = sdk.get_logger("ship")
    for i in range(2500):
        with sdk.context(trace_id="5759e988bd862e3fe1be46a994272793"):
            log.info("event %d", i, extra={"i": i})
    assert cap.handler.flush(30)
    lines = receiver.delivered()
    assert [line["i"] for line in lines] == list(range(2500))
    assert len(receiver.requests) >= 3  # batches of at most 1000 lines
    for req in receiver.requests:
        assert req["path"] == "/api/v1/logs"
        assert req["headers"]["Authorization"] == "Bearer lh_secret"
        assert req["headers"]["Content-Encoding"] == "zstd"
        assert req["headers"]["Content-Type"] == "application/x-ndjson"
        assert len(req["lines"]) <= 1000
    assert lines[0]["service"] == "shipper" and lines[0]["trace_id"] == "5759e988bd862e3fe1be46a994272793"
    shipper = cap.handler.outputs[0]
    assert shipper.stats()["accepted"] == 2500 and shipper.stats()["dropped"] == 0


def _lines(n: int, start: int = 0) -> list[bytes]:
    return [orjson.dumps({"message": f"m{i}", "i": i}) + b"\n" for i in range(start, start + n)]


def test_gzip_and_rejected_lines_are_counted(receiver: Receiver) -> None:
    receiver.reject_lines = {2, 5}
    shipper = HttpShipper(receiver.url, compression="gzip", flush_interval=0.05)
    try:
        shipper.write(_lines(10))
        assert shipper.flush(10)
        assert receiver.requests[0]["headers"]["Content-Encoding"] == "gzip"
        assert "Authorization" not in receiver.requests[0]["headers"]
        assert shipper.stats()["accepted"] == 8 and shipper.stats()["rejected"] == 2
    finally:
        shipper.close()


def test_retries_honour_retry_after(receiver: Receiver) -> None:
    receiver.script = [(503, {}, b"busy"), (429, {"Retry-After": "1"}, b"slow down")]
    shipper = HttpShipper(receiver.url, flush_interval=0.05, max_backoff=0.05)
    try:
        shipper.write(_lines(5))
        assert shipper.flush(20)
        assert len(receiver.requests) == 3
        assert [line["i"] for line in receiver.delivered()] == list(range(5))  # once, in order
        stats = shipper.stats()
        assert stats["retries"] == 2 and stats["accepted"] == 5
        # the backoff alone would be ≤ 0.05 s; the server asked for 1 s and got it
        assert stats["last_retry_delay"] >= 1.0
    finally:
        shipper.close()


def test_permanent_errors_drop_the_batch_and_413_splits_it(receiver: Receiver) -> None:
    receiver.script = [(400, {}, b'{"error":{"code":"bad"}}')]
    shipper = HttpShipper(receiver.url, flush_interval=0.05)
    try:
        shipper.write(_lines(4))
        assert shipper.flush(10)
        assert shipper.stats()["dropped"] == 4
        receiver.script = [(413, {}, b"too big")]
        shipper.write(_lines(8, start=100))
        assert shipper.flush(10)
        sizes = [len(req["lines"]) for req in receiver.requests]
        assert sizes == [4, 8, 4, 4]
        assert [line["i"] for line in receiver.delivered()] == list(range(100, 108))
    finally:
        shipper.close()


def test_server_away_buffer_is_bounded_then_delivered() -> None:
    port = free_port()  # nothing listens yet: connection refused
    shipper = HttpShipper(f"http://127.0.0.1:{port}", buffer_lines=100, batch_lines=50,
                          flush_interval=0.05, max_backoff=0.1)
    receiver = None
    try:
        shipper.write(_lines(250))
        assert not shipper.flush(0.5)
        deadline = time.monotonic() + 30  # a loaded machine may not have run the thread's retry yet
        while shipper.stats()["retries"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = shipper.stats()
        assert stats["retries"] >= 1 and "ConnectError" in stats["last_error"]
        assert stats["dropped"] >= 150  # the oldest lines went first
        receiver = Receiver(port)
        assert shipper.flush(20)
        got = [line["i"] for line in receiver.delivered()]
        # what survived is the newest lines, in order (the batch in flight may be older)
        assert got == sorted(got) and got[-1] == 249
        assert len(got) + shipper.stats()["dropped"] == 250
    finally:
        shipper.close()
        if receiver is not None:
            receiver.stop()


def test_lines_are_shipped_at_exit(tmp_path: Path, receiver: Receiver) -> None:
    script = tmp_path / "short.py"
    script.write_text(f"""
from logharbor import sdk
sdk.configure(service="short-lived", output=None, ship_to={receiver.url!r}, api_key="k")
log = sdk.get_logger("job")
for i in range(300):
    log.info("job step", extra={{"i": i}})
""")
    subprocess.run([sys.executable, str(script)], check=True, timeout=30)
    assert [line["i"] for line in receiver.delivered()] == list(range(300))
    assert {line["service"] for line in receiver.delivered()} == {"short-lived"}


def test_bad_compression_is_refused() -> None:
    with pytest.raises(ValueError, match="zstd, gzip or none"):
        HttpShipper("http://127.0.0.1:9", compression="brotli")


def test_close_with_the_server_away_stops_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    shipper = HttpShipper(f"http://127.0.0.1:{free_port()}", flush_interval=0.05, max_backoff=0.05)
    shipper.write(_lines(30))
    shipper.close(timeout=1.0)
    assert not shipper._thread.is_alive()  # no retry loop left spinning
    stats = shipper.stats()
    assert stats["buffered"] == 30 and stats["accepted"] == 0 and stats["dropped"] == 0
    assert "30 log lines not shipped" in capsys.readouterr().err


def test_each_batch_has_its_own_idempotency_key_kept_across_retries(receiver: Receiver) -> None:
    receiver.script = [(503, {}, b"busy"), (503, {}, b"busy")]
    shipper = HttpShipper(receiver.url, flush_interval=0.05, max_backoff=0.05, batch_lines=5)
    try:
        shipper.write(_lines(5))
        assert shipper.flush(20)
        receiver.script = [(413, {}, b"too big")]
        shipper.write(_lines(4, start=5))
        assert shipper.flush(20)
        keys = [req["headers"]["Idempotency-Key"] for req in receiver.requests]
        assert len(keys) == 6  # three attempts of batch 1; batch 2 refused as too large, then its halves
        assert keys[0] == keys[1] == keys[2]  # one batch, one key, however often it is sent
        assert len(set(keys[2:])) == 4  # a new batch, and each half of a split batch, is a new one
        for key in keys:
            assert len(key) <= 128 and key.isascii() and key.isprintable()
        assert [line["i"] for line in receiver.delivered()] == list(range(9))
    finally:
        shipper.close()


def test_a_refused_compression_is_answered_by_the_same_batch_uncompressed(receiver: Receiver) -> None:
    receiver.script = [(400, {}, b'{"error":{"code":"bad_encoding","message":"body is not valid zstd"}}')]
    shipper = HttpShipper(receiver.url, flush_interval=0.05)
    try:
        shipper.write(_lines(6))
        assert shipper.flush(10)
        first, second = receiver.requests
        assert first["headers"]["Content-Encoding"] == "zstd" and "Content-Encoding" not in second["headers"]
        assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"]
        assert [line["i"] for line in receiver.delivered()] == list(range(6))
        assert shipper.stats()["dropped"] == 0
    finally:
        shipper.close()
