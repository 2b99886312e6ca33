"""The free-text values table (store/freetext.py): a bare word's field terms (service, source, host,
instance, env) are asked of the values those fields have held, so a term no value can satisfy is
dropped before the logs are read. It only prunes, never changes an answer: every search returns
exactly the rows it returns with every term read, on a new store and on a data directory of an
older release (rows in hot, warm and cold stored before the table existed), and a word that is a
service's or a host's name in another case still finds that service's or host's records."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

from logharbor.server.engine.store.freetext import free_text_ddl
from logharbor.server.features.query import compile_query

SCRIPT = r"""
import json, sys, time
from pathlib import Path
from logharbor.record import normalize
from logharbor.server.engine.store.coldstore import LocalCold
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.freetext import free_text_ddl, is_complete, view_definition
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.engine.store.tiers import Tiers
from logharbor.server.features.query import compile_query

path, step = Path(sys.argv[1]), sys.argv[2]
now = time.time_ns()

def rows(service, host, n, start, every):
    return b"\n".join(encode_row(normalize({
        "message": f"unhandled exception {i}" if i % every == 0 else f"request {i} ok",
        "service": service, "host": host, "env": "Prod", "source": "app", "instance": f"{service}-9092",
        "timestamp": 1793534400 + start + i * 7}, received_ns=now)) for i in range(n))

store = EmbeddedStore(path)
store.open()
cold = LocalCold(path.parent / "cold")
out = {}
if step == "old":
    # a data directory of the release before the values table: rows in hot, in warm and in a cold
    # file (moved there before the upgrade, so the view never saw them); no table, view or marker
    tiers = Tiers(store, cold)
    tiers.open()
    store.execute("DROP TABLE free_text_mv")
    store.execute("DROP TABLE free_text")
    store.insert(rows("Checkout", "Web-3", 20000, 0, 101), dedup_token="hot")
    store.insert(rows("Archive", "Old-Host", 3000, 5, 37), dedup_token="warm")
    store.insert(rows("Frozen", "Cold-Host", 2000, 2, 41), dedup_token="cold")
    tiers.copy_to_warm("m1", "hot", "service = {s:String}", {"s": "Archive"})
    tiers.copy_to_cold("2026-11-01/c1.parquet", "hot", "service = {s:String}", {"s": "Frozen"})
    store.execute("DELETE FROM logs WHERE service IN ('Archive', 'Frozen')")
else:
    if step == "new":
        store.insert(rows("Checkout", "Web-3", 20000, 0, 101), dedup_token="hot")
    out["complete_before_tiers"] = is_complete(store.query, store.free_text_name)
    Tiers(store, cold).open()  # reads the older rows' values in, then writes the marker
    out["complete"] = is_complete(store.query, store.free_text_name)
    # the next start finds the view as this release makes it: nothing to replace
    out["next_start_ddl"] = len(free_text_ddl("logs", "free_text", view_definition(store.query, "free_text")))
    parts = "SELECT count() AS n FROM system.parts WHERE active AND table = 'free_text'"
    before = store.query(parts, {})[0]["n"]
    store.insert(rows("Checkout", "Web-3", 10, 140003, 101), dedup_token="no-new-value")
    out["parts_added_by_known_values"] = store.query(parts, {})[0]["n"] - before
    store.insert(rows("Billing", "Web-7", 5000, 3, 53), dedup_token="new")  # through the view
    out["parts_added_by_new_values"] = store.query(parts, {})[0]["n"] - before
    values = quote_identifier(store.free_text_name)
    answers = {}
    for q in json.loads(sys.argv[3]):
        plain = compile_query(q, table=store.table, time_from_ns=None, time_to_ns=None, limit=1000,
                              max_limit=1000)
        gated = compile_query(q, table=store.table, time_from_ns=None, time_to_ns=None, limit=1000,
                              max_limit=1000, free_text_table=values)
        want = store.query(plain.sql, plain.params)
        got = store.query(gated.sql, gated.params)
        answers[q] = {"n": len(got), "same": got == want, "gated": gated.sql != plain.sql}
    out["answers"] = answers
store.close()
print(json.dumps(out))
"""

QUERIES = [
    "unhandled",  # in messages only: every field term dropped
    "checkout",  # a service's name in another case, and in no message
    "CHECKOUT AND unhandled",
    "web-3",  # a host's name (a word with a separator: also a substring of message)
    "old-host",  # a host only the warm rows (stored before the upgrade) have
    "cold-host",  # a host only the cold file (written before the upgrade) has
    "archive OR billing",  # a service from before the upgrade, and one inserted after
    "prod",  # env: every row
    "NOT checkout AND exception",
    "checkout-9092",  # an instance
    "app | stats count() by service",  # source
    "nothing-has-this",
]


def run(path: str, step: str) -> dict:  # type: ignore[type-arg]
    result = subprocess.run([sys.executable, "-c", SCRIPT, path, step, json.dumps(QUERIES)], capture_output=True,
                            text=True, timeout=300, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def counts(answers: dict) -> dict:  # type: ignore[type-arg]
    """Rows per query, after checking each is the same with and without the gate."""
    for q, a in answers.items():
        assert a["same"] and a["gated"], (q, a)
    return {q: a["n"] for q, a in answers.items()}


def test_a_new_store_prunes_field_terms_and_answers_the_same(tmp_path) -> None:  # type: ignore[no-untyped-def]
    out = run(str(tmp_path / "store"), "new")
    # a store the tiers have not opened yet has no marker: every term is read (same answers)
    assert (out["complete_before_tiers"], out["complete"]) == (False, True)
    n = counts(out["answers"])
    assert n["unhandled"] == 199 + 1 + 95 and n["CHECKOUT AND unhandled"] == 199 + 1
    assert n["checkout"] == n["web-3"] == n["checkout-9092"] == 1000  # 20000 rows, cut at the limit
    assert n["old-host"] == n["cold-host"] == n["nothing-has-this"] == 0
    assert n["archive OR billing"] == 1000
    assert out["next_start_ddl"] == 1  # only the CREATE TABLE IF NOT EXISTS
    # the view passes on new values only: an insert of known ones writes no part there
    assert (out["parts_added_by_known_values"], out["parts_added_by_new_values"]) == (0, 1)


def test_an_older_data_directory_gets_the_values_of_every_tier(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = str(tmp_path / "store")
    run(path, "old")
    out = run(path, "upgraded")
    assert (out["complete_before_tiers"], out["complete"]) == (False, True)
    n = counts(out["answers"])
    # the warm and cold rows' hosts, stored before the view existed, are found by name
    assert n["old-host"] == 1000 and n["cold-host"] == 1000
    assert n["unhandled"] == 199 + 1 + 82 + 49 + 95 and n["checkout"] == 1000
    assert n["nothing-has-this"] == 0


def test_the_gate_is_compiled_only_where_a_store_keeps_the_table() -> None:
    plain = compile_query("web-3", table="`logs`", time_from_ns=None, time_to_ns=None, limit=10, max_limit=10)
    gated = compile_query("web-3", table="`logs`", time_from_ns=None, time_to_ns=None, limit=10, max_limit=10,
                          free_text_table="`free_text`")
    assert "free_text" not in plain.sql
    assert gated.sql.count("lowerUTF8(`host`)") == 1 and gated.sql.count("FROM `free_text`") == 1
    # a field match is not free text: no gate
    field = compile_query("host:web-3", table="`logs`", time_from_ns=None, time_to_ns=None, limit=10,
                          max_limit=10, free_text_table="`free_text`")
    assert "free_text" not in field.sql
    # after a projection the rows are not the logs' own: no gate there either
    piped = compile_query("* | fields service, source, host, instance, env, message | where web-3", table="`logs`", time_from_ns=None,
                          time_to_ns=None, limit=10, max_limit=10, free_text_table="`free_text`")
    assert "free_text" not in piped.sql
    # the view on inserts reads the same fields the compiler asks about
    table, view = free_text_ddl("logs", "free_text")
    assert all(f"lowerUTF8(`{f}`)" in view for f in ("service", "source", "host", "instance", "env"))
    # the first version's view (every pair of every insert, a part each time) is replaced once
    first = view.partition(" WHERE (pair.1")[0]
    assert free_text_ddl("logs", "free_text", first) == [table, "DROP VIEW `free_text_mv`", view]
    assert free_text_ddl("logs", "free_text", view) == [table]
