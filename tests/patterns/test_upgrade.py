"""Upgrading a store (issue 27): records stored before patterns existed are backfilled in the
background, with progress in /metrics; ids the first release stored are adopted into the groups of
this one, so ``| patterns`` shows one group per template and nothing looks new after the upgrade."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.conftest import ServerProcess

from .test_server import HOUR, NS, post

USERS = ["ann", "bo", "cy", "di", "ed", "flo"]


def _metrics(server: ServerProcess) -> dict[str, float]:
    text = httpx.get(server.url + "/metrics", headers=server.headers, timeout=10).text
    out = {}
    for line in text.splitlines():
        if line.startswith("logharbor_pattern_"):
            name, _, value = line.partition(" ")
            out[name] = float(value)
    return out


def _wait(check, timeout: float = 120.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


_NO_PATTERNS = """
import sys
from chdb import session
from logharbor.server.engine.store.base import schema_sql
sql = schema_sql("logs")
sql = "\\n".join(l for l in sql.splitlines() if "pattern_id" not in l).replace(
    "GRANULARITY 1,\\n)", "GRANULARITY 1\\n)")
s = session.Session(sys.argv[1])
s.query(sql)
users = ["ann", "bo", "cy", "di", "ed", "flo"]
values = []
for i in range(int(sys.argv[2])):
    if i % 3 == 0:
        message = f"user {users[(i // 6) % 6]} logged in from 10.0.{i % 250}.{i % 200}"
    elif i % 3 == 1:
        message = f"disk /var/data{i % 4} is {50 + i % 50}% full"
    else:
        message = f"cache miss for key k-{i}"
    service = "legacy" if i % 2 else "older"
    values.append(f"(now64(9) - {i % 5000}, now64(9), 'WARN', '{service}', '{message}')")
for start in range(0, len(values), 5000):
    s.query("INSERT INTO logs (timestamp, observed_timestamp, level, service, message) VALUES "
            + ", ".join(values[start:start + 5000]))
s.query("INSERT INTO logs (timestamp, observed_timestamp, level, service) VALUES (now64(9), now64(9), 'INFO', 'quiet')")
s.close()
"""


def test_records_from_before_patterns_are_backfilled(tmp_path: Path, server_factory) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "old"
    (data / "store").mkdir(parents=True)
    records = 6000
    subprocess.run([sys.executable, "-c", _NO_PATTERNS, str(data / "store"), str(records)], check=True,
                   timeout=300)
    server = server_factory("--batch-max-age", "0.2", "--patterns-backfill-rate", "5000", data_dir=data)
    done = _wait(lambda: _metrics(server).get("logharbor_pattern_backfill_rows_left") == 0.0
                 and _metrics(server).get("logharbor_pattern_backfill_rows_done") == records, 300)
    assert done, _metrics(server)
    rows = server.query("* | patterns", since="1d", limit=100)["rows"]
    assert sum(r["count"] for r in rows) == records  # every record with a message, once
    assert {(r["service"], r["template"]) for r in rows} == {
        (s, t) for s in ("legacy", "older")
        for t in ("user <*> logged in from <ip>", "disk <path> is <num>% full", "cache miss for key <*>")}
    by = {(r["service"], r["template"]): r for r in rows}
    pid = by[("legacy", "disk <path> is <num>% full")]["pattern_id"]
    found = server.query(f"pattern_id:{pid}", since="1d", limit=5000)["rows"]
    assert len(found) == by[("legacy", "disk <path> is <num>% full")]["count"]
    assert {r["pattern_id"] for r in found} == {pid}  # records show their group's id
    # what was stored after the upgrade joins the same groups
    post(server, [{"service": "legacy", "message": "disk /var/data9 is 91% full", "level": "warn"}])
    server.wait_rows(records + 2)
    assert _wait(lambda: any(r["count"] == by[("legacy", "disk <path> is <num>% full")]["count"] + 1
                             for r in server.query("service:legacy | patterns", since="1d")["rows"]), 60)


_FIRST_RELEASE = """
import sys
from chdb import session
from logharbor.server.engine.store.base import schema_sql
from logharbor.server.engine.store.patterns import patterns_ddl
s = session.Session(sys.argv[1])
s.query(schema_sql("logs"))
for statement in patterns_ddl("logs", "patterns", settings="non_replicated_deduplication_window = 10000"):
    s.query(statement)
s.query("ALTER TABLE patterns DROP COLUMN group_id")  # as the first release made it
old = int(sys.argv[2])  # ns: when these records were stored
users = ["ann", "bo", "cy", "di", "ed", "flo"]
rows = []
for i in range(60):
    # the first release gave a cluster the id of its first message's masked template (any 16 hex)
    if i % 2:
        message, cluster, template = f"user {users[i % 6]} logged in from 10.0.0.{i}", "00000000000a11ce", \\
            "user <*> logged in from <ip>"
    else:
        message, cluster, template = f"payment {1000 + i} declined by the bank", "00000000000decf1", \\
            "payment <num> declined by the bank"
    rows.append(f"(fromUnixTimestamp64Nano({old + i}), now64(9), 'WARN', 'shop', '{message}', '{cluster}')")
s.query("INSERT INTO logs (timestamp, observed_timestamp, level, service, message, pattern_id) VALUES "
        + ", ".join(rows))
for cluster, template, sample in (("00000000000a11ce", "user <*> logged in from <ip>", "user ann logged in from 10.0.0.1"),
                                  ("00000000000decf1", "payment <num> declined by the bank", "payment 1000 declined by the bank")):
    s.query("INSERT INTO patterns (tenant, service, pattern_id, template, updated, first_seen, last_seen, count, sample) "
            f"VALUES ('', 'shop', '{cluster}', '{template}', now64(3), fromUnixTimestamp64Nano({old}), "
            f"fromUnixTimestamp64Nano({old}), 0, '{sample}')")
s.close()
"""


def test_ids_of_the_first_release_are_adopted(tmp_path: Path, server_factory) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "v1"
    (data / "store").mkdir(parents=True)
    (data / "patterns").mkdir()
    (data / "patterns" / "miner.json").write_bytes(b'{"version":1,"generation":1,"ops":[]}')
    old = time.time_ns() - 5 * HOUR
    subprocess.run([sys.executable, "-c", _FIRST_RELEASE, str(data / "store"), str(old)], check=True,
                   timeout=300)
    server = server_factory("--batch-max-age", "0.2", data_dir=data)
    assert _wait(lambda: _metrics(server).get("logharbor_pattern_upgrade_ids_left") == 0.0, 120), _metrics(server)
    assert _metrics(server)["logharbor_pattern_upgrade_ids_adopted"] == 2
    now = time.time_ns()
    post(server, [{"timestamp": (now - 60 * NS) / NS, "service": "shop", "level": "warn",
                   "message": f"user {u} logged in from 10.9.9.{i}"} for i, u in enumerate(USERS)]
         + [{"timestamp": (now - 60 * NS) / NS, "service": "shop", "level": "warn",
             "message": f"payment {7000 + i} declined by the bank"} for i in range(4)])
    server.wait_rows(70)
    rows = _wait(lambda: [r for r in server.query("* | patterns", since="1d")["rows"]
                          if sum(x["count"] for x in server.query("* | patterns", since="1d")["rows"]) == 70])
    assert {(r["template"], r["count"]) for r in rows} == {("user <*> logged in from <ip>", 36),
                                                          ("payment <num> declined by the bank", 34)}
    for r in rows:  # first seen is the first release's: nothing is new after the upgrade
        assert r["first_seen"] < time.strftime("%Y-%m-%dT%H", time.gmtime((now - 4 * HOUR) / NS)), r
    # an old id still names its group: pattern_id:<old id> finds old and new records alike
    group = next(r["pattern_id"] for r in rows if r["template"].startswith("user"))
    found = server.query("pattern_id:00000000000a11ce", since="1d", limit=100)["rows"]
    assert len(found) == 36 and {r["pattern_id"] for r in found} == {group}
    compare = server.query("level:>=WARN | patterns compare 1h")["rows"]
    assert compare and all(r["status"] != "new" for r in compare), compare
    assert (data / "patterns" / "v1" / "miner.json").exists()  # the old state, set aside


def test_a_damaged_journal_line_is_skipped_by_a_real_server(tmp_path: Path, server_factory) -> None:  # type: ignore[no-untyped-def]
    """The journal of a server's data dir with a damaged line in the middle (issue #27): the server
    starts, says so in its log and in /metrics, and keeps the groups of the lines after it."""
    from logharbor.record import normalize
    from logharbor.server.engine.mining import PatternMiner
    from logharbor.server.engine.store.rows import encode_row

    data = tmp_path / "data"
    pm = PatternMiner(data / "patterns")
    pm.load()
    for service in ("first", "middle", "last"):
        pm.process(encode_row(normalize({"service": service, "message": f"user ann logged in to {service}"},
                                        received_ns=1_800_000_000_000_000_000)))
        pm.commit()
    pm.close()
    lines = pm.journal_path.read_bytes().split(b"\n")
    lines[1] = lines[1][:12] + b"\x00\x00 damaged block \x00\x00" + lines[1][30:]
    pm.journal_path.write_bytes(b"\n".join(lines))
    server = server_factory(data_dir=data)
    assert _metrics(server)["logharbor_pattern_journal_damaged_lines"] == 1.0
    assert "is damaged at line 2" in server.log()
    assert _metrics(server)["logharbor_pattern_templates"] == 2.0  # the first and the last line's
    copies = list((data / "patterns").glob("damaged-*/journal-lines.ndjson"))
    assert [c.read_bytes() for c in copies] == [lines[1] + b"\n"]
    # the state read was folded into a snapshot: a restart reads no damage
    server.stop()
    again = server_factory(data_dir=data)
    assert _metrics(again)["logharbor_pattern_journal_damaged_lines"] == 0.0
    assert _metrics(again)["logharbor_pattern_templates"] == 2.0
