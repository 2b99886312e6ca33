"""Deleted means gone: after a delete-by-query the erased value is nowhere in the data directory.

Fault: a GDPR erasure whose rows vanish from queries while the value stays on disk (masked rows in
old partitions, the engine's mutation text, a pattern's sample, the miner's journal, the WAL, a
quarantined copy, a cold Parquet file, alert state in the metadata database). Here a real server
gets records carrying one unique value in a message, in an attribute and in a field, spread over
the hot tier (two days), the warm and the cold tier, an alert and a recording rule grouped by the
attribute, a quarantined copy of damaged WAL bytes, and records still in the WAL (batches wait 10 s) when the
delete is issued. Before the delete a raw scan must find the value in each of those places (the
scan sees through the engine's ZSTD/LZ4 blocks and Parquet's zstd pages: tests/faults/rawscan.py);
after it, nowhere, no query or API answer shows it, a restart brings nothing back, and every other
record is stored exactly once (``Tally``).
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally
from tests.faults.rawscan import NUMERIC, scan

from logharbor.record import normalize
from logharbor.server.engine.refused import RefusedRows
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.features.retention.delete import STEPS

VALUE = "zq8x-erase-4711@example.org"
FILTER = f'"{VALUE}" OR user_id:"{VALUE}" OR request_id:"{VALUE}"'
SERVICE = "gdpr-app"
DAY_S = 86_400
ALL_TIME = {"from": "now-400d"}
RULES = {"rules": [{"name": "all", "hot": "7d", "warm": "30d", "cold": "365d"}]}
#: ages in days: today and two days ago stay hot (two partitions), 10 d goes warm, 40 d cold
AGES = (0.0, 2.0, 10.0, 40.0)


def _records(tag: str, age_days: float, now: float, keep: int) -> tuple[list[dict], list[str], int]:  # type: ignore[type-arg]
    """``keep`` ordinary records (their ids returned) and six carrying the value: two in the
    message, two in an attribute (one an ERROR, for the alert), two in the request id."""
    ts = now - age_days * DAY_S
    out, ids = [], []
    for i in range(keep):
        rid = f"{tag}-{i}"
        ids.append(rid)
        out.append({"timestamp": ts - i, "service": SERVICE, "level": "ERROR" if i % 10 == 0 else "INFO",
                    "message": f"payment {i} accepted", "user_id": f"u-{i % 7}", "rid": rid,
                    "request_id": f"req-{rid}"})
    for j in range(2):
        out.append({"timestamp": ts - 100 - j, "service": SERVICE, "message": f"signup confirmed for {VALUE}",
                    "user_id": f"u-{j}", "rid": f"{tag}-m{j}"})
        out.append({"timestamp": ts - 200 - j, "service": SERVICE, "level": "ERROR" if j == 0 else "INFO",
                    "message": f"payment {j} accepted", "user_id": VALUE, "rid": f"{tag}-a{j}"})
        out.append({"timestamp": ts - 300 - j, "service": SERVICE, "message": "checkout page served",
                    "request_id": VALUE, "rid": f"{tag}-f{j}"})
    return out, ids, 6


def _post(client: httpx.Client, records: list[dict]) -> None:  # type: ignore[type-arg]
    response = client.post("/api/v1/logs", content=b"\n".join(orjson.dumps(r) for r in records),
                           headers={"content-type": "application/x-ndjson"})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == len(records)


def _wait(condition, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def _quarantine_copy(data_dir: Path, now: float) -> None:
    """Damaged WAL bytes as the WAL sets them aside: a torn header, then rows, one with the value."""
    directory = data_dir / "wal" / "quarantine"
    directory.mkdir(parents=True, exist_ok=True)
    rows = [encode_row(normalize({"timestamp": now, "service": SERVICE, "message": f"reset for {VALUE}"})),
            encode_row(normalize({"timestamp": now, "service": SERVICE, "message": "unrelated damaged row"})),
            encode_row(normalize({"timestamp": now, "service": SERVICE, "user_id": VALUE, "message": "x"}))]
    (directory / "00000000000000000001-000000000008.bad").write_bytes(b"\x13\x37LHW" + b"\n".join(rows))
    (directory / "00000000000000000001-000000000008.json").write_bytes(orjson.dumps(
        {"segment": "00000000000000000001.wal", "offset": 8, "size": 999, "reason": "test copy"}))
    # rows the store refused (engine/refused.py), as the batcher sets them aside: the engine cannot
    # read them, so a delete matches them by the filter's values as text
    refused = [row.replace(b'"timestamp":"', b'"timestamp":"not a time ', 1) for row in (
        encode_row(normalize({"timestamp": now, "service": SERVICE, "user_id": VALUE, "message": "refused"})),
        encode_row(normalize({"timestamp": now, "service": SERVICE, "message": "unrelated refused row"})))]
    RefusedRows(directory / "refused").keep("wal-3-4", 3, 4, [(3, refused[0], "Code: 41."),
                                                              (4, refused[1], "Code: 41.")])


def _found_in(data_dir: Path) -> list[str]:
    result = scan(data_dir, [VALUE.encode()])
    odd = [(p, chain) for p, chain in result.undecoded if not NUMERIC.intersection(chain)]
    assert not odd, f"blocks the scan could not read and that may hold text: {odd[:5]}"
    return sorted({hit.split(" (")[0] for hit in result.found.get(VALUE, [])})


def _api_texts(client: httpx.Client, job_id: str) -> dict[str, str]:
    """Every API answer that could echo the value back."""
    return {path: client.get(path).text for path in (
        "/api/v1/alerts", "/api/v1/alerts/history", "/api/v1/alerts/notifications", "/api/v1/audit",
        "/metrics/recorded",
        f"/api/v1/delete/{job_id}")} | {
        "patterns": client.post("/api/v1/query", json={"q": f"service:{SERVICE} | patterns", **ALL_TIME}).text,
        "search": client.post("/api/v1/query", json={"q": FILTER, **ALL_TIME}).text}


RECORDING = f"""rules:
  - record: gdpr:records:by_user
    query: service:{SERVICE}
    window: 1h
    interval: 10s
    group_by: [user_id]
"""


def test_delete_leaves_the_value_nowhere(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "recording-rules.yaml").write_text(RECORDING)  # a recording rule grouped by the value's field
    server: ServerProcess = server_factory("--batch-max-age", "10", data_dir=data_dir)
    tally = Tally("delete-by-query: value gone from every tier, the WAL, quarantine, patterns, metadata")
    now = time.time()
    erased = 0
    with server.client(timeout=60) as client:
        stored_before = server.store_rows()
        for k, age in enumerate(AGES):
            records, ids, n = _records(f"t{k}", age, now, keep=30)
            _post(client, records)
            tally.ack(ids)
            erased += n
        assert server.wait_rows(stored_before + len(AGES) * 36, timeout=60) >= stored_before + len(AGES) * 36
        # the value's owner also has an alert group, with a notification waiting in the outbox
        client.post("/api/v1/channels", json={"name": "dead", "kind": "webhook",
                                              "config": {"url": "http://127.0.0.1:9/"}}).raise_for_status()
        client.post("/api/v1/alerts/rules", json={
            "name": "errors by user", "query": f"service:{SERVICE} AND level:ERROR", "condition": "count > 0",
            "window": "1h", "interval": "10s", "group_by": ["user_id"], "channels": ["dead"]}).raise_for_status()
        _wait(lambda: VALUE in client.get("/api/v1/alerts").text, 120, "the alert group of the value")
        _wait(lambda: VALUE in client.get("/metrics/recorded").text, 120, "the recorded group of the value")
        assert client.put("/api/v1/retention", json=RULES).status_code == 200
        moved = client.post("/api/v1/retention/run").json()["moved"]
        assert moved == 2 * 36, moved  # 10 d → warm, 40 d → cold
        _quarantine_copy(data_dir, now)
        assert len(client.post("/api/v1/query", json={"q": FILTER, **ALL_TIME}).json()["rows"]) == erased

        # records still in the WAL when the delete comes: batches wait 10 s before the store
        fresh, ids, n = _records("fresh", 0.0, now, keep=20)
        _post(client, fresh)
        tally.ack(ids)
        erased += n
        in_flight = len(client.post("/api/v1/query", json={"q": "rid:fresh-*", **ALL_TIME}).json()["rows"])
        places = _found_in(data_dir)
        job = client.post("/api/v1/delete", json={"q": FILTER})
        assert job.status_code == 202, job.text
        job_id = job.json()["id"]
        started = time.monotonic()
        _wait(lambda: client.get(f"/api/v1/delete/{job_id}").json()["state"] in ("done", "failed"), 300,
              "the delete job")
        took = time.monotonic() - started
        state = client.get(f"/api/v1/delete/{job_id}").json()
        assert state["state"] == "done", state
        assert state["deleted"] == erased, state
        assert state["progress"]["steps"] == list(STEPS), state

        # before: the scan saw the value in every place it lives (the scan is not blind)
        for where in ("/wal/", "/quarantine/", "/patterns/", ".parquet", "meta.db"):
            assert any(where in p for p in places), f"the scan did not find the value in {where}: {places}"
        tables = {Path(p).relative_to(data_dir / "store").parts[2] for p in places if "/store/store/" in p}
        assert len(tables) >= 3, places  # hot, warm, patterns
        # after: nowhere on disk, in no answer
        assert _found_in(data_dir) == []
        for path, text in _api_texts(client, job_id).items():
            assert VALUE not in text, f"{path} still shows the value"
        tally.saw(r["rid"] for r in client.post("/api/v1/query", json={
            "q": f"service:{SERVICE} | fields rid", "limit": 10_000, **ALL_TIME}).json()["rows"])
        assert state["q"] == 'user_id:… OR … OR request_id:…' or VALUE not in state["q"]
        quarantined = (data_dir / "wal" / "quarantine" / "00000000000000000001-000000000008.bad").read_bytes()
        assert b"unrelated damaged row" in quarantined  # only the matching lines went
        refused = (data_dir / "wal" / "quarantine" / "refused" / "refused-3-4.ndjson").read_bytes()
        assert b"unrelated refused row" in refused and b'"refused"' not in refused

    # a restart replays nothing that brings the value back
    server.stop()
    assert _found_in(data_dir) == []
    assert VALUE not in server.log()
    server.start()
    assert server.query(FILTER, **ALL_TIME)["rows"] == []
    tally.extra.update({"erased": erased, "in_store_before_delete_of_fresh": in_flight,
                        "job_seconds": round(took, 1), "places_before": len(places)})
    tally.report()


def test_a_delete_cut_by_kill9_finishes_after_the_restart(server_factory) -> None:  # type: ignore[no-untyped-def]
    """kill -9 once the delete has flushed the WAL (the rewrite of the tiers under way): the restarted
    server resumes the job, which ends ``done`` with the value nowhere and nothing else lost."""
    server: ServerProcess = server_factory("--batch-max-age", "10")
    tally = Tally("delete-by-query cut by kill -9 and resumed")
    now = time.time()
    erased = 0
    with server.client(timeout=60) as client:
        before = server.store_rows()
        for k, age in enumerate((0.0, 2.0)):
            records, ids, n = _records(f"k{k}", age, now, keep=40)
            _post(client, records)
            tally.ack(ids)
            erased += n
        assert server.wait_rows(before + 2 * 46, timeout=60) >= before + 2 * 46
        fresh, ids, n = _records("kfresh", 0.0, now, keep=10)
        _post(client, fresh)  # still in the WAL
        tally.ack(ids)
        erased += n
        job_id = client.post("/api/v1/delete", json={"q": FILTER}).json()["id"]
        _wait(lambda: "flush" in client.get(f"/api/v1/delete/{job_id}").json()["progress"].get("steps", []),
              120, "the delete's flush")
    server.kill9()
    server.start()
    with server.client(timeout=60) as client:
        _wait(lambda: client.get(f"/api/v1/delete/{job_id}").json()["state"] in ("done", "failed"), 300,
              "the resumed delete")
        state = client.get(f"/api/v1/delete/{job_id}").json()
        assert state["state"] == "done", state
        assert client.post("/api/v1/query", json={"q": FILTER, **ALL_TIME}).json()["rows"] == []
        tally.saw(r["rid"] for r in client.post("/api/v1/query", json={
            "q": f"service:{SERVICE} | fields rid", "limit": 10_000, **ALL_TIME}).json()["rows"])
    assert _found_in(server.data_dir) == []
    tally.extra.update({"erased_expected": erased, "erased_reported": state["deleted"]})
    tally.report()
