"""The time index (``idx_timestamp``, schema.sql): a search's ``ORDER BY timestamp … LIMIT n``
skips granules that cannot hold one of its rows. It only skips, never changes an answer: a
table made before it gets it at start (and for the parts already stored), and every search
returns exactly the rows it returns without the index."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

from logharbor.server.engine.store.migrations import TIME_INDEX, logs_migrations


def test_the_index_is_in_the_schema_and_added_to_older_tables() -> None:
    schema = (ROOT / "src/logharbor/server/engine/store/schema.sql").read_text()
    assert f"INDEX {TIME_INDEX}," in schema
    single = [m.sql for m in logs_migrations("logs") if m.name == "idx_timestamp"]
    assert [s.split()[3] for s in single] == ["ADD", "MATERIALIZE"]
    # a cluster runs its ON CLUSTER statements at every start: only the ADD (IF NOT EXISTS) there
    cluster = [m.sql for m in logs_migrations("logs", " ON CLUSTER `c`") if m.name == "idx_timestamp"]
    assert len(cluster) == 1 and "ADD INDEX IF NOT EXISTS" in cluster[0]


UPGRADE = r"""
import json, sys, time
from pathlib import Path
from chdb import session
from logharbor.record import normalize
from logharbor.server.engine.store.base import schema_sql
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.features.query import compile_query

path = Path(sys.argv[1])
path.mkdir(parents=True)
old = session.Session(str(path))
# the table as the release before idx_timestamp made it
old.query("\n".join(line for line in schema_sql("logs").splitlines() if "idx_timestamp" not in line))
now = time.time_ns()

def rows(service, n, start, every):
    return "\n".join(encode_row(normalize({
        "message": f"unhandled exception {i}" if i % every == 0 else f"request {i} ok",
        "service": service, "timestamp": 1793534400 + start + i * 7}, received_ns=now)).decode()
        for i in range(n))

# services interleaved in time, as traffic is: each granule of one service spans all of the time
old.query("INSERT INTO logs FORMAT JSONEachRow " + rows("checkout", 30000, 0, 101))
old.query("INSERT INTO logs FORMAT JSONEachRow " + rows("billing", 30000, 3, 89))
old.close()

store = EmbeddedStore(path)
store.open()
indexes = [r["name"] for r in store.query("SELECT name FROM system.data_skipping_indices WHERE table = 'logs'", {})]
deadline = time.monotonic() + 120  # the index of the old parts is built in the background
while store.query("SELECT count() AS n FROM system.mutations WHERE table = 'logs' AND NOT is_done", {})[0]["n"]:
    assert time.monotonic() < deadline, "the index was not built for the old parts"
    time.sleep(0.05)
store.insert(rows("api", 5000, 1, 53).encode(), dedup_token="new-rows")
built = store.query("SELECT command, is_done, parts_to_do FROM system.mutations WHERE table = 'logs'", {})
queries = ["unhandled", "unhandled | sort timestamp asc", "service:billing", "exception AND service:api",
           "* | limit 7", "unhandled | fields timestamp, service, message"]
answers = {}
for q in queries:
    c = compile_query(q, table=store.table, time_from_ns=None, time_to_ns=None, limit=250, max_limit=1000)
    got = store.query(c.sql, c.params)
    without = store.query(c.sql + " SETTINGS ignore_data_skipping_indices = 'idx_timestamp'", c.params)
    answers[q] = {"n": len(got), "same": got == without}
store.close()
print(json.dumps({"indexes": indexes, "parts": built, "answers": answers}))
"""


def test_an_older_table_gets_the_index_and_every_search_answers_the_same(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run([sys.executable, "-c", UPGRADE, str(tmp_path / "store")], capture_output=True,
                            text=True, timeout=300, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert "idx_timestamp" in answer["indexes"]
    # the parts stored before it got the index too (their mutation is done; new parts have it)
    assert [(m["command"], m["is_done"], m["parts_to_do"]) for m in answer["parts"]] == [
        ("(MATERIALIZE INDEX idx_timestamp)", 1, 0)], answer["parts"]
    for q, a in answer["answers"].items():
        assert a["same"], q
    assert answer["answers"]["unhandled"]["n"] == 250  # 297 + 338 + 95 match: cut at the limit
    assert answer["answers"]["service:billing"]["n"] == 250
    assert answer["answers"]["* | limit 7"]["n"] == 7
