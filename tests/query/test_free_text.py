"""Free text as people type it (issue #25 item 3): words and phrases in any case, a bare word also
matching the short canonical fields and the level it names, through a real server (search and
live tail alike), and a table made before the lowercased text index still found after upgrade."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from tests.conftest import ROOT, ServerProcess

T0 = 1_793_534_400 * 10**9  # 2026-11-01T12:00:00Z
WINDOW = {"from": "2026-11-01T12:00:00Z", "to": "2026-11-01T13:00:00Z"}
TRACE = "5759e988bd862e3fe1be46a994272793"
RECORDS = [
    {"rid": "declined", "service": "checkout", "level": "ERROR", "message": "Payment Declined by provider"},
    {"rid": "reset", "service": "api", "level": "WARN", "message": "connection ERROR: reset by peer"},
    {"rid": "plural", "service": "api", "level": "INFO", "message": "no errors today"},
    {"rid": "lower", "service": "billing", "level": "INFO", "message": "payment declined twice"},
    {"rid": "unicode", "service": "billing", "level": "INFO", "message": "ÉCHEC du paiement"},
    {"rid": "traced", "service": "edge", "level": "INFO", "message": "GET /", "trace_id": TRACE},
    {"rid": "hosted", "service": "edge", "level": "DEBUG", "message": "tick", "host": "Web-3"},
]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("freetext") / "data", "--batch-max-age", "0.2").start()
    try:
        server.ingest([{**r, "timestamp": T0 + i * 10**9} for i, r in enumerate(RECORDS)])
        yield server
    finally:
        server.stop()


def rids(server: ServerProcess, q: str) -> set[str]:
    return {r["rid"] for r in server.query(q, **WINDOW)["rows"]}


@pytest.mark.parametrize(("q", "want"), [
    ("declined", {"declined", "lower"}),
    ("Declined", {"declined", "lower"}),
    ("DECLINED", {"declined", "lower"}),
    ("Payment", {"declined", "lower"}),
    ('"PAYMENT declined"', {"declined", "lower"}),
    ('"declined by"', {"declined"}),
    ("message:DECLINED", {"declined", "lower"}),
    ("échec", {"unicode"}),
    ("pay*", {"declined", "lower"}),
    ("PAY*", {"declined", "lower"}),
    ("/Declined/", {"declined"}),  # a regex is matched as written
    ("/(?i)declined/", {"declined", "lower"}),
    # a bare word: a word of the message, or a level it names, or a short field's whole value
    ("error", {"declined", "reset"}),  # level ERROR, and "ERROR:" in a message; not "errors"
    ("message:error", {"reset"}),
    ("warning", {"reset"}),
    ("checkout", {"declined"}),
    ("web-3", {"hosted"}),
    ("WEB-3", {"hosted"}),
    (TRACE, {"traced"}),
    (TRACE.upper(), {"traced"}),
    ("NOT error AND service:api", {"plural"}),
    ("-checkout AND level:ERROR", set()),
])
def test_words_match_as_people_type_them(loaded: ServerProcess, q: str, want: set[str]) -> None:
    assert rids(loaded, q) == want


def test_the_live_tail_matches_what_the_search_matches(loaded: ServerProcess) -> None:
    """The tail runs the same conditions over records as they arrive (no index there)."""
    queries = ["DECLINED", "error", '"PAYMENT declined"', "pay*", "web-3", "checkout", "échec"]
    # one record more than the search finds marks the end: the tail sends records in order
    end = {"rid": "end", "service": "zz-end", "message": "zz-end"}
    with httpx.Client(base_url=loaded.url, headers=loaded.headers, timeout=60) as client:
        for q in queries:
            tag = f"t{time.time_ns()}"
            want = {f"{tag}-{rid}" for rid in rids(loaded, q)}
            with client.stream("GET", "/api/v1/tail", params={"q": f"({q}) OR service:zz-end"},
                               headers={"accept": "application/x-ndjson"}) as stream:
                lines = (orjson.loads(line) for line in stream.iter_lines() if line)
                assert "subscribed" in next(lines)
                loaded.ingest([{**r, "rid": f"{tag}-{r['rid']}", "timestamp": time.time_ns()} for r in [*RECORDS, end]],
                              wait=False)
                got: set[str] = set()
                for row in lines:
                    if row.get("rid") == f"{tag}-end":
                        break
                    got.add(str(row.get("rid")))
            assert got == want, q


UPGRADE = r"""
import json, sys, time
from pathlib import Path
from chdb import session
from logharbor.record import normalize
from logharbor.server.engine.store.base import schema_sql
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
path = Path(sys.argv[1])
path.mkdir(parents=True)
old = session.Session(str(path))
ddl = schema_sql("logs")
new_index = [l for l in ddl.splitlines() if "idx_message_lower" in l][0]
old.query(ddl.replace(new_index, "    INDEX idx_message message TYPE text(tokenizer = splitByNonAlpha),"))
rows = b"\n".join(encode_row(normalize({"message": m, "timestamp": 1793534400 + i}, received_ns=time.time_ns()))
                  for i, m in enumerate(["Payment Declined by provider", "all good"]))
old.query("INSERT INTO logs FORMAT JSONEachRow " + rows.decode())
old.close()
store = EmbeddedStore(path)
store.open()
from logharbor.server.features.query import compile_query
found = store.query(*[(c.sql, c.params) for c in [compile_query(
    "DECLINED", table=store.table, time_from_ns=None, time_to_ns=None, limit=10, max_limit=10)]][0])
indexes = [r["name"] for r in store.query("SELECT name FROM system.data_skipping_indices WHERE table = 'logs'", {})]
store.close()
print(json.dumps({"found": [r["message"] for r in found], "indexes": indexes}))
"""


def test_a_table_made_before_the_lowercased_index_is_upgraded_and_still_found(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run([sys.executable, "-c", UPGRADE, str(tmp_path / "store")], capture_output=True,
                            text=True, timeout=300, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["found"] == ["Payment Declined by provider"]  # old parts: scanned, same meaning
    assert "idx_message_lower" in answer["indexes"]
