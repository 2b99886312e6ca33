"""A store made by the release before per-column codecs (tests/store/text_schema_v1.sql: the
numbers and LowCardinality columns without a codec, i.e. LZ4) opens with this release: each such
column of the hot and warm tables gets schema.sql's codec at start (``ALTER … MODIFY COLUMN … CODEC``,
metadata only), every row reads back exactly as stored, new rows and a merge keep every value, a
column whose codec was set another way keeps it, and the next start changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from tests.record.values import typed
from tests.retention.helpers import NOW
from tests.store.test_attrmigrate import corpus, expected, read_all

from logharbor.server.engine.store.attributes import with_settings
from logharbor.server.engine.store.batches import mark_rows
from logharbor.server.engine.store.coldstore import LocalCold
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.migrations import logs_migrations, missing, schema_codecs
from logharbor.server.engine.store.patterns import patterns_ddl
from logharbor.server.engine.store.rows import encode_record
from logharbor.server.engine.store.tiers import Tiers

V1_SCHEMA = (Path(__file__).parent / "text_schema_v1.sql").read_text()
#: columns the previous release made without a codec
BARE = ("level", "severity_number", "source", "host", "instance", "env", "version", "http_method",
        "http_status", "http_duration_ms", "http_user_agent", "http_bytes_sent", "pattern_id")


def v1_ddl(table: str, *, warm: bool = False) -> str:
    body = "\n".join(line for line in V1_SCHEMA.splitlines() if not line.lstrip().startswith("--"))
    body = body.replace("{table}", f"`{table}`").replace("{engine}", "MergeTree")
    return body.replace("ZSTD(1)", "ZSTD(9)").replace("ZSTD(3)", "ZSTD(9)") if warm else body


def make_v1_store(path: Path, hot: list[bytes], warm: list[bytes]) -> None:
    """A data directory as the previous release left it: ``logs`` holding ``hot``, ``logs_warm``
    holding ``warm`` (move id ``m-old``), an operator's own codec on ``logs.http_referer``."""
    from chdb import session

    path.mkdir(parents=True)
    s = session.Session(with_settings(str(path)))
    try:
        s.query(v1_ddl("logs"))
        s.query("ALTER TABLE logs MODIFY COLUMN http_referer CODEC(LZ4HC(9))")
        for statement in patterns_ddl("logs", "patterns"):
            s.query(statement)
        s.query(v1_ddl("logs_warm", warm=True))
        s.query("ALTER TABLE logs_warm ADD COLUMN move_id String CODEC(ZSTD(9))")
        with s.send_insert("INSERT INTO logs SETTINGS input_format_skip_unknown_fields = 0", "JSONEachRow") as ins:
            ins.append(mark_rows(b"\n".join(hot), "v1-1"))
            ins.finish()
        lines = [b'{"move_id":"m-old",' + line[1:] for line in mark_rows(b"\n".join(warm), "v1-2").split(b"\n")]
        with s.send_insert("INSERT INTO logs_warm SETTINGS input_format_skip_unknown_fields = 0",
                           "JSONEachRow") as ins:
            ins.append(b"\n".join(lines))
            ins.finish()
        bare = {r[0] for r in (line.split("\t") for line in s.query(
            "SELECT name, compression_codec FROM system.columns WHERE database = currentDatabase() "
            "AND table = 'logs'", "TSV").bytes().decode().splitlines()) if len(r) == 1 or not r[1]}
        assert set(BARE) <= bare  # the layout this test is about
    finally:
        s.close()


def codecs(store: EmbeddedStore, table: str) -> dict[str, str]:
    return {str(r["name"]): str(r["c"]) for r in store.query(
        "SELECT name, compression_codec AS c FROM system.columns WHERE database = currentDatabase() "
        "AND table = {t:String}", {"t": table})}


def test_a_store_of_the_previous_release_gets_the_codecs_and_keeps_every_value(tmp_path: Path) -> None:
    objs = corpus()
    hot, warm = objs[::2], objs[1::2]
    make_v1_store(tmp_path / "store", [encode_record(o, received_ns=NOW) for o in hot],
                  [encode_record(o, received_ns=NOW) for o in warm])
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    try:
        Tiers(store, LocalCold(tmp_path / "cold")).open()
        want = schema_codecs()
        hot_codecs, warm_codecs = codecs(store, "logs"), codecs(store, "logs_warm")
        for column in BARE:
            assert hot_codecs[column] == want[column], column
            assert warm_codecs[column] == want[column].replace("ZSTD(1)", "ZSTD(9)"), column
        assert hot_codecs["http_referer"] == "CODEC(LZ4HC(9))"  # set another way: kept
        assert hot_codecs["message"] == want["message"]
        # the rows of the old parts (LZ4) and of new parts (ZSTD), then one merged part of both
        more = [{**o, "message": "new-" + o["message"]} for o in objs]
        store.insert(b"\n".join(encode_record(o, received_ns=NOW) for o in more), dedup_token="new-1")
        for when in ("before the merge", "after it"):
            got = read_all(store, "logs")
            assert sorted(got) == sorted([o["message"] for o in hot] + [o["message"] for o in more]), when
            for obj in hot + more:
                assert typed(got[obj["message"]]) == typed(expected(obj)), (when, obj)
            store.optimize()
        got = read_all(store, "logs_warm")
        for obj in warm:
            wire = got[obj["message"]]
            wire.pop("move_id", None)
            assert typed(wire) == typed(expected(obj)), obj
        parts = store.query("SELECT count() AS n FROM system.parts WHERE active AND database = currentDatabase() "
                            "AND table = 'logs'", {})
        assert parts == [{"n": 1}]
    finally:
        store.close()
    # the next start has nothing left to change (a needless ALTER rewrites the table's metadata)
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    try:
        todo = missing(store.query, [*logs_migrations("logs"), *logs_migrations("logs_warm", heavier=True)])
        assert todo == []
    finally:
        store.close()
