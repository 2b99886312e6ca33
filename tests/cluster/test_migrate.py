"""``logharbor migrate``: a stopped server's embedded store moves into ClickHouse (the double),
day partition by day partition; killed half way, the same command carries on, and nothing is
stored twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from tests.conftest import ROOT, ServerProcess

from logharbor.server.engine.store.clickhouse import ClickHouseStore

from .conftest import Double

pytestmark = pytest.mark.slow

DAY0 = 1_795_000_000 - 1_795_000_000 % 86400  # a midnight, UTC (seconds)


def source_records() -> list[dict]:
    """3 days × 40 minutes × 10 records, spread so that chunks of 10 rows are single minutes."""
    return [{"timestamp": (DAY0 + day * 86400 + minute * 60 + i) * 10**9, "service": f"svc{i % 3}",
             "message": f"day {day} minute {minute} record {i}", "trace_id": f"{day:08x}{minute:08x}{i:016x}"}
            for day in range(3) for minute in range(40) for i in range(10)]


def migrate_cmd(data: Path, url: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "logharbor.cli.main", "migrate", "--from", str(data), "--to", url, *extra]


def test_migrate_is_resumable_and_exact(tmp_path: Path, chdouble: Double) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, "--batch-max-age", "0.2").start()
    records = source_records()
    with server.client() as c:
        c.post("/api/v1/logs", content=b"\n".join(orjson.dumps(r) for r in records)).raise_for_status()
    assert server.wait_rows(len(records)) == len(records)
    server.stop()  # the store drains and the data directory is free for the migration

    url = chdouble.url("migrated")
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="120")
    first = subprocess.Popen(migrate_cmd(data, url, "--chunk-rows", "10"), cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    progress = data / "migrate.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.poll() is None:
        if progress.exists() and len(orjson.loads(progress.read_bytes())["chunks"]) >= 5:
            break
        time.sleep(0.05)
    assert first.poll() is None, f"the first run ended before it could be interrupted:\n{first.communicate()[0]!r}"
    first.send_signal(signal.SIGKILL)
    first.wait()
    state = orjson.loads(progress.read_bytes())
    assert state["chunks"] and len(state["days"].get("logs", {})) < 3, state  # stopped part way

    second = subprocess.run(migrate_cmd(data, url, "--chunk-rows", "10"), cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "migrated" in second.stderr
    state = orjson.loads(progress.read_bytes())
    assert sorted(state["days"]["logs"].values()) == [400, 400, 400] and state["chunks"] == []

    target = ClickHouseStore(url)
    target.open()
    try:
        per_day = target.query("SELECT toString(toDate(timestamp)) AS d, count() AS n, uniqExact(message) AS u "
                               "FROM logs GROUP BY d ORDER BY d", {})
        assert [(int(r["n"]), int(r["u"])) for r in per_day] == [(400, 400)] * 3  # all there, none twice
        row = target.query("SELECT service, message, trace_id FROM logs WHERE message = {m:String}",
                           {"m": "day 1 minute 7 record 4"})
        assert row == [{"service": "svc1", "message": "day 1 minute 7 record 4",
                        "trace_id": f"{1:08x}{7:08x}{4:016x}"}]
        # a day marked unfinished is copied again, and its chunks are deduplicated by the target
        day = sorted(state["days"]["logs"])[1]
        del state["days"]["logs"][day]
        progress.write_bytes(orjson.dumps(state))
        third = subprocess.run(migrate_cmd(data, url, "--chunk-rows", "10"), cwd=ROOT, env=env,
                               capture_output=True, text=True, timeout=120)
        assert third.returncode == 0, third.stderr
        assert "migrated 400 rows in 1 day partitions" in " ".join(third.stderr.split())
        assert int(target.query("SELECT count() AS n FROM logs", {})[0]["n"]) == 1200
    finally:
        target.close()

    # a different target with the same progress file is refused rather than skipped
    other = subprocess.run(migrate_cmd(data, chdouble.url("elsewhere")), cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 2 and "migrate.json records a migration to" in " ".join(other.stderr.split())


def test_migrate_copies_the_metadata_to_postgresql(tmp_path: Path, chdouble: Double, pg_url: str) -> None:
    import sqlalchemy

    from logharbor.server.meta.db import MetaStore
    from logharbor.server.meta.keys import KeyStore

    engine = sqlalchemy.create_engine(pg_url)
    with engine.begin() as conn:  # a fresh metadata database
        conn.execute(sqlalchemy.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()
    data = tmp_path / "data"
    server = ServerProcess(data, "--batch-max-age", "0.2").start()
    reader = server.create_key("reader", name="dash")
    with server.client() as c:
        c.post("/api/v1/channels", json={"name": "hook", "kind": "webhook",
                                         "config": {"url": "http://127.0.0.1:9/hook"}}).raise_for_status()
        c.post("/api/v1/alerts/rules", json={"name": "errors", "query": "level:ERROR", "condition": "count > 5",
                                             "window": "5m", "interval": "1m", "channels": ["hook"]}
               ).raise_for_status()
        c.post("/api/v1/logs", content=b'{"message":"one"}').raise_for_status()
    server.wait_rows(1)
    server.stop()

    meta_url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    cmd = migrate_cmd(data, chdouble.url("with_meta"), "--meta-to", meta_url)
    env = dict(os.environ, COLUMNS="120")
    first = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "migrated 0 rows" in " ".join(again.stderr.split())

    meta = MetaStore(pg_url)
    try:
        with meta.engine.connect() as conn:
            names = {r[0] for r in conn.execute(sqlalchemy.text("SELECT name FROM api_keys"))}
            rules = [r[0] for r in conn.execute(sqlalchemy.text("SELECT name FROM alert_rules"))]
        assert {"bootstrap admin", "dash"} <= names and rules == ["errors"]
        keys = KeyStore(meta)
        assert keys.verify(reader) is not None and keys.verify(server.api_key).role == "admin"
        assert keys.create(role="writer", name="after the move").secret  # ids continue past the copied ones
    finally:
        meta.close()
