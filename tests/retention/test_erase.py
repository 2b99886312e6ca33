"""Delete-by-query on the store alone: values with quotes and backslashes, a versioned S3 bucket, a
job resumed after a crash, the metadata scrub and the redacted filter (the server-level run with
the WAL, miner and quarantine is tests/faults/test_delete_gone.py)."""

from __future__ import annotations

import time
from pathlib import Path

import boto3
import orjson
import pytest
from sqlalchemy import insert as sql_insert
from sqlalchemy import select
from tests.faults.rawscan import scan
from tests.retention.helpers import counts, insert, open_tiers, record, set_policy
from tests.retention.test_s3 import moto_s3  # noqa: F401  (the fixture)

from logharbor.server.engine.store.coldstore import S3Cold
from logharbor.server.features.alerts.tables import alert_history, alert_notifications, alert_states
from logharbor.server.features.retention.delete import DeleteJobs
from logharbor.server.features.retention.redact import Redactor, filter_literals, redacted_filter
from logharbor.server.features.retention.scrub import compact_metadata, scrub_metadata
from logharbor.server.features.retention.tables import retention_deletes
from logharbor.server.meta.db import MetaStore, audit_log

ODD = "C:\\temp\\o'brien \"x\"\tend"  # a backslash, quotes and a tab: escaping must hold everywhere
POLICY = {"rules": [{"name": "all", "hot": "7d", "warm": "30d", "cold": "365d"}]}


def _dataset(value: str) -> list[dict]:  # type: ignore[type-arg]
    out = []
    for age in (0.5, 10, 40):
        for i in range(40):
            extra = {"user_id": value} if i % 20 == 3 else {"user_id": f"u-{i % 5}"}
            out.append(record(age, source="app", n=i, **extra))
    return out


def _run(jobs: DeleteJobs, q: str) -> dict:  # type: ignore[type-arg]
    job = jobs.submit(q, "test")
    jobs.wait(300)
    done = jobs.get(job["id"])
    assert done is not None and done["state"] == "done", done
    return done


@pytest.mark.e2e
def test_values_that_need_escaping_are_erased_everywhere(tmp_path: Path) -> None:
    store, tiers, mover = open_tiers(tmp_path)
    try:
        insert(store, _dataset(ODD))
        set_policy(mover, POLICY)
        mover.tick()
        assert counts(tiers) == {"hot": 40, "warm": 40, "cold": 40}
        phrase = ODD.replace("\\", "\\\\").replace('"', '\\"')
        done = _run(DeleteJobs(mover, mover.meta, purge_timeout_s=120), f'user_id:"{phrase}"')
        assert done["deleted"] == 6 and done["q"] == "user_id:…"
        assert counts(tiers) == {"hot": 38, "warm": 38, "cold": 38}
        found = scan(tmp_path, [ODD.encode(), b"o'brien"]).found
        assert not found, found
    finally:
        store.close()


@pytest.mark.e2e
def test_a_versioned_bucket_keeps_no_old_version(tmp_path: Path, moto_s3: str) -> None:  # noqa: F811
    s3 = boto3.client("s3", endpoint_url=moto_s3, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    s3.create_bucket(Bucket="cold-logs")
    s3.put_bucket_versioning(Bucket="cold-logs", VersioningConfiguration={"Status": "Enabled"})
    cold = S3Cold(bucket="cold-logs", prefix="lh", endpoint=moto_s3, access_key="testing", secret_key="testing")
    value = "erase-me-on-s3-9917"
    store, tiers, mover = open_tiers(tmp_path, cold)
    try:
        insert(store, _dataset(value))
        set_policy(mover, POLICY)
        mover.tick()
        s3.put_object(Bucket="cold-logs", Key="lh/.staging/left-by-a-crash.part", Body=value.encode())
        _run(DeleteJobs(mover, mover.meta, purge_timeout_s=120), f"user_id:{value}")
        assert counts(tiers) == {"hot": 38, "warm": 38, "cold": 38}
        versions = s3.list_object_versions(Bucket="cold-logs")
        kept = tmp_path / "bucket"
        kept.mkdir()
        for i, v in enumerate(versions.get("Versions", [])):
            body = s3.get_object(Bucket="cold-logs", Key=v["Key"], VersionId=v["VersionId"])["Body"].read()
            (kept / f"{i}.bin").write_bytes(body)
        assert [v["Key"] for v in versions.get("Versions", [])] == [f"lh/{k}" for k in cold.keys()]
        assert not versions.get("DeleteMarkers")
        assert scan(kept, [value.encode()]).found == {}
        assert scan(tmp_path / "store", [value.encode()]).found == {}
    finally:
        store.close()


@pytest.mark.e2e
def test_a_job_a_crash_interrupted_is_finished_on_restart(tmp_path: Path) -> None:
    store, tiers, mover = open_tiers(tmp_path)
    value = "resume-me-5521"
    try:
        insert(store, _dataset(value))
        set_policy(mover, POLICY)
        mover.tick()
        jobs = DeleteJobs(mover, mover.meta, purge_timeout_s=120)
        # as a kill -9 leaves it: running, hot already rewritten, the rest not
        jobs.mover.tiers.store.query("SELECT 1", {})
        from logharbor.server.engine.store.erase import Eraser

        eraser = Eraser(tiers, "0123456789abcdef")
        eraser.prepare()
        cond, params = "JSONExtractString(attributes, 'user_id') = {v:String}", {"v": value}
        hot = eraser.erase("hot", cond, params)
        assert hot.rows == 2
        with mover.meta.engine.begin() as conn:
            conn.execute(sql_insert(retention_deletes).values(
                id="0123456789abcdef", q=f"user_id:{value}", actor="test", state="running",
                progress={"tiers_done": ["hot"], "steps": ["select"], "hot": 2, "now_ns": time.time_ns(),
                          "pattern_ids": [], "replaced": hot.replaced},
                created_ns=time.time_ns()))
        assert jobs.resume() == 1
        jobs.wait(300)
        done = jobs.get("0123456789abcdef")
        assert done is not None and done["state"] == "done", done
        assert done["deleted"] == 6 and counts(tiers) == {"hot": 38, "warm": 38, "cold": 38}
        assert scan(tmp_path, [value.encode()]).found == {}
        tables = {r["name"] for r in store.query("SELECT name FROM system.tables "
                                                 "WHERE database = currentDatabase()", {})}
        assert not [t for t in tables if "_erase_" in t], tables  # the job's helper tables are gone
    finally:
        store.close()


def test_metadata_keeps_deleted_instead_of_the_values(tmp_path: Path) -> None:
    meta = MetaStore.for_data_dir(tmp_path)
    meta.create()
    value, message = "mail-me@example.net", "password reset sent to mail-me@example.net"
    now = time.time_ns()
    with meta.engine.begin() as conn:
        conn.execute(sql_insert(alert_states).values(
            rule_id=1, group_key=f'{{"user_id":"{value}"}}', group_labels={"user_id": value}, state="firing",
            updated_ns=now, details={"sample": message, "template": "password reset sent to <email>"}))
        conn.execute(sql_insert(alert_states).values(
            rule_id=1, group_key='{"user_id":"someone-else"}', group_labels={"user_id": "someone-else"},
            state="firing", updated_ns=now))
        conn.execute(sql_insert(alert_history).values(
            rule_id=1, rule_name="r", group_key=f'{{"user_id":"{value}"}}', from_state="inactive",
            to_state="firing", time_ns=now))
        conn.execute(sql_insert(alert_notifications).values(
            dedup_key=f"1:{value}:firing", channel="c", rule_id=1, rule_name="r", batch=now, kind="firing",
            alert={"labels": {"user_id": value}, "annotations": {"summary": f"new: {message}!"}},
            status="failed", next_attempt_ns=now, created_ns=now))
        conn.execute(sql_insert(audit_log).values(time_ns=now, actor="x", action="delete.submit",
                                                  detail=f"user_id:{value}"))
        conn.execute(sql_insert(retention_deletes).values(
            id="old", q=f'"{value}"', actor="x", state="done", progress={}, created_ns=now))
    changed = scrub_metadata(meta, Redactor(filter_literals(f"user_id:{value}"), [message]))
    assert changed == {"alert_states": 1, "alert_history": 1, "alert_notifications": 1, "audit_log": 1,
                       "retention_deletes.q": 1}
    with meta.engine.connect() as conn:
        states = {r.group_key: r for r in conn.execute(select(alert_states))}
        assert set(states) == {'{"user_id":"[deleted]"}', '{"user_id":"someone-else"}'}
        gone = states['{"user_id":"[deleted]"}']
        assert gone.group_labels == {"user_id": "[deleted]"} and gone.details["sample"] == "[deleted]"
        note = conn.execute(select(alert_notifications.c.alert)).scalar_one()
        assert note["annotations"]["summary"] == "new: [deleted]!"
        assert conn.execute(select(retention_deletes.c.q)).scalar_one() == "…"
    assert compact_metadata(meta).startswith("vacuumed")
    meta.close()
    assert scan(tmp_path, [value.encode()]).found == {}


@pytest.mark.parametrize(("q", "shape", "literals"), [
    ("user_id:u-123", "user_id:…", ["u-123"]),
    ('"alice@example.com" AND level:ERROR', "… AND level:…", ["alice@example.com"]),
    ("status:>=500 NOT host:web-3", 'status:>="…" AND NOT host:…', ["web-3"]),
    ("user_id:u-12345* | where duration_ms:[1 TO 5]", 'user_id:… | where duration_ms:["…" TO "…"]',
     ["u-12345"]),
])
def test_a_filter_is_kept_as_its_shape(q: str, shape: str, literals: list[str]) -> None:
    assert redacted_filter(q) == shape
    assert filter_literals(q) == literals


@pytest.mark.e2e
def test_moved_and_expired_rows_leave_the_disk(tmp_path: Path) -> None:
    """Moves and expiry delete with a lightweight DELETE (rows masked); the mover then applies the
    masks, so an old day's partition, which no merge may ever touch, does not keep them."""
    store, tiers, mover = open_tiers(tmp_path)
    try:
        insert(store, [record(age, level=level, n=i, message=f"marker-{level}-{age}-{i}")
                       for age in (0.5, 10, 40) for level in ("INFO", "DEBUG") for i in range(50)])
        set_policy(mover, {"rules": [{"name": "debug", "match": {"level": "DEBUG"}, "hot": "7d", "delete": "7d"},
                                     {"name": "all", "hot": "7d", "warm": "30d", "cold": "365d"}]})
        assert mover.tick()["moved"] == 100
        assert counts(tiers) == {"hot": 100, "warm": 50, "cold": 50}
        hot_dir = Path(store.query("SELECT data_paths[1] AS p FROM system.tables WHERE database = "
                                   "currentDatabase() AND name = {t:String}", {"t": store.table_name})[0]["p"])

        def physical_rows() -> int:
            rows = store.query("SELECT sum(rows) AS n FROM system.parts WHERE active AND database = "
                               "currentDatabase() AND table = {t:String}", {"t": store.table_name})
            return int(rows[0]["n"] or 0)

        deadline = time.monotonic() + 120
        while physical_rows() != 100 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert physical_rows() == 100  # only what is still hot
        deadline = time.monotonic() + 120
        while scan(hot_dir, [b"marker-DEBUG-10-7", b"marker-INFO-40-7"]).found and time.monotonic() < deadline:
            time.sleep(1)
        assert scan(hot_dir, [b"marker-DEBUG-10-7", b"marker-INFO-40-7"]).found == {}
        assert scan(hot_dir, [b"marker-INFO-0.5-7"]).found  # the scan sees what is still there
    finally:
        store.close()


def test_the_miner_forgets_erased_samples_even_of_evicted_clusters(tmp_path: Path) -> None:
    from logharbor.record import normalize
    from logharbor.server.engine.mining import PatternMiner
    from logharbor.server.engine.store.rows import encode_row

    secret = "forget-me-7781@example.com"

    def rows(messages: list[str]) -> bytes:
        return b"\n".join(encode_row(normalize({"service": "svc", "message": m})) for m in messages)

    miner = PatternMiner(tmp_path / "p", max_sids=2)
    miner.load()
    out, _ = miner.process(rows([f"welcome {secret}", "payment accepted", "cache warmed"]))
    miner.commit()
    ids = {orjson.loads(line)["message"]: orjson.loads(line)["pattern_id"] for line in out.split(b"\n")}
    miner.process(rows(["disk almost full", "user logged out"]))  # evicts the oldest clusters
    miner.commit()
    assert secret.encode() in (tmp_path / "p" / "journal.ndjson").read_bytes()
    welcome = ids[f"welcome {secret}"]
    assert welcome not in {m.sid for _, _, m in miner.miner.members()}  # evicted: only the journal has it
    assert miner.scrub({welcome: None}) == 0  # no live template to change, and yet …
    assert scan(tmp_path / "p", [secret.encode()]).found == {}
    miner.close()
    again = PatternMiner(tmp_path / "p", max_sids=2)
    again.load()
    assert {m.sid for _, _, m in again.miner.members()} == {m.sid for _, _, m in miner.miner.members()}
    again.close()


@pytest.mark.e2e
def test_a_job_stopped_with_the_server_resumes_at_the_next_start(tmp_path: Path) -> None:
    store, _tiers, mover = open_tiers(tmp_path)
    value = "stopped-mid-way-6102"
    try:
        insert(store, _dataset(value))
        set_policy(mover, POLICY)
        mover.tick()
        first = DeleteJobs(mover, mover.meta, purge_timeout_s=120)
        first.stop()  # the server is stopping: a job ends its current step and stops there
        job = first.submit(f"user_id:{value}", "test")
        first.wait(60)
        stopped = first.get(job["id"])
        assert stopped is not None and stopped["state"] == "running" and stopped["error"] is None, stopped
        assert stopped["progress"]["steps"] == ["select"]
        second = DeleteJobs(mover, mover.meta, purge_timeout_s=120)  # the next start
        assert second.resume() == 1
        second.wait(300)
        done = second.get(job["id"])
        assert done is not None and done["state"] == "done" and done["deleted"] == 6, done
        assert scan(tmp_path, [value.encode()]).found == {}
    finally:
        store.close()
