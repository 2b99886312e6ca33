"""A row the store refuses forever (a poison record) must not block ingest (issue #28 item 1).

The engine refuses a whole insert for one value it cannot parse, every time. The batcher, after a
few attempts refused for their *data*, stores the batch in halves until the refused rows stand
alone, sets those aside in ``<wal>/quarantine/refused/`` and goes on: acknowledged = stored +
refused, nothing lost, nothing stored twice, later records stored. An outage (an error that is not
about the data) never sets anything aside, and an isolation cut short (an outage half-way, a
restart) stores each half once.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from tests.faults.conftest import Tally, wait_for

from logharbor.record import normalize
from logharbor.server.engine.batcher import Batcher
from logharbor.server.engine.mining import PatternMiner
from logharbor.server.engine.refused import read_refused, refused_files
from logharbor.server.engine.store.base import StoreError
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.engine.wal import WriteAheadLog


def row(rid: str) -> bytes:
    return encode_row(normalize({"service": "shop", "rid": rid, "message": f"order {rid} paid"}))


def poison(rid: str) -> bytes:
    """A row the engine refuses: its timestamp column cannot parse (an entry of another version,
    a decoder bug); the rest of it is an ordinary row."""
    good = row(rid)
    assert b'"timestamp":"' in good
    return good.replace(b'"timestamp":"', b'"timestamp":"not a time ', 1)


class FlakyStore:
    """The real store, with an error injected on the inserts ``fail`` names (by token)."""

    def __init__(self, store: EmbeddedStore, fail) -> None:  # type: ignore[no-untyped-def]
        self.store = store
        self.fail = fail
        self.tokens: list[str] = []

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.store, name)

    def insert(self, rows: bytes, *, dedup_token: str, retry: bool = False) -> int:
        self.tokens.append(dedup_token)
        error = self.fail(dedup_token)
        if error:
            raise StoreError(error)
        return self.store.insert(rows, dedup_token=dedup_token, retry=retry)


def read_back(tally: Tally, store: EmbeddedStore, wal_dir: Path) -> list[bytes]:
    rows = store.query("SELECT JSONExtractString(attributes, 'rid') AS rid FROM logs", {})
    tally.saw(r["rid"] for r in rows)
    refused: list[bytes] = []
    for info in refused_files(wal_dir / "quarantine" / "refused"):
        refused += read_refused(wal_dir / "quarantine" / "refused" / info["file"])
    tally.kept_aside(orjson.loads(r)["attributes"]["rid"] for r in refused)
    return refused


@contextlib.contextmanager
def running(tmp_path: Path, store, miner: PatternMiner | None = None, *,  # type: ignore[no-untyped-def]
            drain: bool = True) -> Iterator[tuple[WriteAheadLog, Batcher]]:
    """A WAL and a running batcher over ``store``; stopped (drained, or cut short as a crash
    would) and closed at the end of the block."""
    wal = WriteAheadLog(tmp_path / "wal", fsync=False)
    wal.open()
    batcher = Batcher(wal, store, tmp_path / "batcher.json", max_age_s=0.05, miner=miner,
                      retry_max_s=0.2, free_space=lambda: None)
    batcher.start()
    try:
        yield wal, batcher
    finally:
        if drain:
            batcher.stop()
        else:
            batcher.stop(drain=False, timeout=5)
        wal.close()


@pytest.mark.parametrize("patterns", [False, True])
def test_a_refused_row_is_set_aside_and_ingest_goes_on(tmp_path: Path, patterns: bool) -> None:
    tally = Tally(f"poison row in a batch (patterns {'on' if patterns else 'off'})")
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    miner = PatternMiner(tmp_path / "patterns") if patterns else None
    with running(tmp_path, store, miner) as (wal, batcher):
        def send(ids: list[str], *, bad: set[str] = frozenset()) -> None:  # type: ignore[assignment]
            wal.submit(b"\n".join(poison(i) if i in bad else row(i) for i in ids)).result()
            tally.ack(ids)

        for n in range(4):
            send([f"a{n}-{k}" for k in range(50)])
        send([f"p-{k}" for k in range(9)], bad={"p-3", "p-7"})
        for n in range(4):
            send([f"b{n}-{k}" for k in range(50)])
        wait_for("the batcher past the refused rows", batcher.caught_up)
        send([f"c-{k}" for k in range(20)])  # ingest goes on
        wait_for("later records", batcher.caught_up)
        assert batcher.last_error is None
        summary = batcher.refused.summary()
    refused = read_back(tally, store, tmp_path / "wal")
    store.close()
    tally.report()
    assert sorted(orjson.loads(r)["attributes"]["rid"] for r in refused) == ["p-3", "p-7"]
    assert summary is not None and summary["rows"] == 2 and summary["files"] >= 1
    info = refused_files(tmp_path / "wal" / "quarantine" / "refused")
    assert all(i["complete"] and "CANNOT_PARSE" in i["errors"][0] for i in info)


def test_an_outage_sets_nothing_aside(tmp_path: Path) -> None:
    """Errors that are not about the data (a lost connection) only ever make the batch wait."""
    tally = Tally("store outage: nothing may be set aside as refused")
    real = EmbeddedStore(tmp_path / "store")
    real.open()
    down = {"on": True}
    store = FlakyStore(real, lambda token: "Code: 210. DB::NetException: Connection refused"
                       if down["on"] else None)
    with running(tmp_path, store) as (wal, batcher):
        ids = [f"o-{k}" for k in range(30)]
        wal.submit(b"\n".join(row(i) for i in ids)).result()
        tally.ack(ids)
        wait_for("several failed attempts", lambda: batcher.failures >= 2 * batcher.refuse_after)
        assert not batcher.caught_up()
        down["on"] = False
        wait_for("the store back", batcher.caught_up)
    refused = read_back(tally, real, tmp_path / "wal")
    real.close()
    tally.report()
    assert refused == [] and batcher.refused.rows == 0
    assert all("-r" not in t for t in store.tokens)  # never split


def test_an_isolation_cut_short_stores_each_half_once(tmp_path: Path) -> None:
    """An outage in the middle of the isolation, then a restart: the halves stored before are
    counted under their tokens, not stored again."""
    tally = Tally("poison row, outage and restart during its isolation")
    real = EmbeddedStore(tmp_path / "store")
    real.open()
    # the second half of the first split fails as an outage until the batcher is replaced
    store = FlakyStore(real, lambda token: "Code: 209. DB::NetException: Timeout exceeded"
                       if token.endswith("-r1") else None)
    ids = [f"h-{k}" for k in range(40)]
    with running(tmp_path, store, drain=False) as (wal, batcher):
        wal.submit(b"\n".join(poison(i) if i in {"h-2", "h-30"} else row(i) for i in ids)).result()
        tally.ack(ids)
        wait_for("the isolation to reach the outage", lambda: any(t.endswith("-r1") for t in store.tokens))
        assert not batcher.caught_up()
    assert batcher.refused.rows == 0  # the refused rows are kept once the whole batch is through
    with running(tmp_path, real) as (wal, batcher):  # a restart, the store reachable again
        wait_for("the batch stored after the restart", batcher.caught_up)
    refused = read_back(tally, real, tmp_path / "wal")
    real.close()
    tally.report()
    assert sorted(orjson.loads(r)["attributes"]["rid"] for r in refused) == ["h-2", "h-30"]


def wal_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "logharbor.cli.main", "wal", *args],
                          capture_output=True, text=True, timeout=120)


def test_refused_rows_are_listed_and_requeued(tmp_path: Path) -> None:
    """``logharbor wal refused`` lists them; ``--requeue`` puts them back in the WAL (here they are
    refused again and set aside again: still nothing lost or doubled)."""
    tally = Tally("refused rows requeued with `logharbor wal refused --requeue`")
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    ids = [f"q-{k}" for k in range(12)]
    with running(tmp_path, store) as (wal, batcher):
        wal.submit(b"\n".join(poison(i) if i == "q-5" else row(i) for i in ids)).result()
        tally.ack(ids)
        wait_for("the refused row set aside", batcher.caught_up)
    listed = wal_cli("refused", str(tmp_path), "--json")
    assert listed.returncode == 0, listed.stderr
    files = orjson.loads(listed.stdout)["files"]
    assert [(f["rows"], f["complete"]) for f in files] == [(1, True)]
    text = wal_cli("refused", str(tmp_path)).stdout
    assert "1 rows of WAL sequence numbers 1 " in text and "Cannot read DateTime" in text, text
    done = wal_cli("refused", str(tmp_path), "--requeue", files[0]["file"])
    assert done.returncode == 0 and "requeued 1 rows" in done.stdout, done.stderr
    assert wal_cli("refused", str(tmp_path), "--requeue", files[0]["file"]).returncode != 0  # once
    with running(tmp_path, store) as (wal, batcher):  # the next start inserts them
        wait_for("the requeued row inserted (refused again)", lambda: batcher.refused.rows == 1)
        wait_for("caught up", batcher.caught_up)
    refused = read_back(tally, store, tmp_path / "wal")
    store.close()
    tally.report()
    assert [orjson.loads(r)["attributes"]["rid"] for r in refused] == ["q-5"]
    assert (tmp_path / "wal" / "quarantine" / "refused" / files[0]["file"].replace("refused-", "requeued-")).exists()


REFUSED = "Code: 27. DB::Exception: Cannot parse input: expected '\"' before: 'x'. (CANNOT_PARSE_INPUT_ASSERTION_FAILED)"


def test_a_cut_short_isolation_never_stores_a_half_twice(tmp_path: Path) -> None:
    """Halves stored under their tokens, then a restart where the store takes the whole batch (the
    cause was fixed, or the refusal passed): the batch goes on in halves, never whole under its
    own token beside the halves stored before."""
    tally = Tally("isolation cut short, then the store takes the whole batch after a restart")
    real = EmbeddedStore(tmp_path / "store")
    real.open()
    store = FlakyStore(real, lambda token: "Code: 209. DB::NetException: Timeout exceeded"
                       if token.endswith("-r1") else None if "-r" in token else REFUSED)
    ids = [f"w-{k}" for k in range(40)]
    with running(tmp_path, store, drain=False) as (wal, batcher):
        wal.submit(b"\n".join(row(i) for i in ids)).result()
        tally.ack(ids)
        wait_for("the first half stored", lambda: any(t.endswith("-r0") for t in store.tokens[:-1]))
        wait_for("the isolation to reach the outage", lambda: any(t.endswith("-r1") for t in store.tokens))
    store = FlakyStore(real, lambda token: None)  # the store takes everything now
    with running(tmp_path, store) as (wal, batcher):
        wait_for("the batch stored after the restart", batcher.caught_up)
    refused = read_back(tally, real, tmp_path / "wal")
    real.close()
    tally.report()
    assert refused == []
    assert "wal-1-1" not in store.tokens, store.tokens


def test_refusals_after_an_outage_are_counted_on_their_own(tmp_path: Path) -> None:
    """Attempts failed by an outage are not refusals: the first data-coded errors after a long
    outage (a store coming back, its schema not yet in place) set nothing aside."""
    tally = Tally("outage, then a passing refusal: nothing may be set aside")
    real = EmbeddedStore(tmp_path / "store")
    real.open()
    calls = {"n": 0}

    def fail(token: str) -> str | None:
        calls["n"] += 1
        if calls["n"] <= 4:
            return "Code: 210. DB::NetException: Connection refused"
        return REFUSED if calls["n"] <= 6 else None

    store = FlakyStore(real, fail)
    ids = [f"t-{k}" for k in range(2)]
    with running(tmp_path, store) as (wal, batcher):
        wal.submit(b"\n".join(row(i) for i in ids)).result()
        tally.ack(ids)
        wait_for("the store back", batcher.caught_up)
    refused = read_back(tally, real, tmp_path / "wal")
    real.close()
    tally.report()
    assert refused == [] and batcher.refused.rows == 0
    assert all("-r" not in t for t in store.tokens), store.tokens


class DamagedReads(EmbeddedStore):
    """The real store whose reads fail as a damaged disk makes them fail (CANNOT_READ_ALL_DATA on
    a part the check cannot name) while ``damaged`` is set: the inserts themselves work."""

    damaged = True
    failed_reads = 0

    def _on_session(self, sql: str, params):  # type: ignore[no-untyped-def, override]
        if self.damaged and "count()" in sql and "_batch" in sql:
            self.failed_reads += 1
            raise StoreError("Code: 33. DB::Exception: Cannot read all data. Bytes read: 0. Bytes "
                             "expected: 8.: (while reading column _batch): While executing "
                             "MergeTreeSelect. (CANNOT_READ_ALL_DATA)")
        return super()._on_session(sql, params)


def test_a_damaged_read_is_never_taken_for_refused_rows(tmp_path: Path) -> None:
    """The count an insert reads back fails with a code that also names bad input (33, 32, 117):
    that is the store's disk, not the rows; the batch waits, nothing is set aside or stored twice."""
    tally = Tally("the insert's count-back read fails (damaged disk): nothing may be set aside")
    store = DamagedReads(tmp_path / "store")
    store.open()
    ids = [f"d-{k}" for k in range(6)]
    with running(tmp_path, store) as (wal, batcher):
        wal.submit(b"\n".join(row(i) for i in ids)).result()
        tally.ack(ids)
        wait_for("several failed reads", lambda: store.failed_reads >= 4 * batcher.refuse_after)
        store.damaged = False
        wait_for("the store readable again", batcher.caught_up)
    refused = read_back(tally, store, tmp_path / "wal")
    store.close()
    tally.report()
    assert refused == [] and batcher.refused.rows == 0


class RefusesRid(FlakyStore):
    """The real store, refusing (as the engine refuses a value it cannot parse) every insert that
    holds the record ``rid`` while ``broken``: a cause the operator can fix."""

    def __init__(self, store: EmbeddedStore, rid: str) -> None:
        super().__init__(store, lambda token: None)
        self.marker = f'"rid":"{rid}"'.encode()
        self.broken = True

    def insert(self, rows: bytes, *, dedup_token: str, retry: bool = False) -> int:
        if self.broken and self.marker in rows:
            self.tokens.append(dedup_token)
            raise StoreError(REFUSED)
        return super().insert(rows, dedup_token=dedup_token, retry=retry)


@pytest.mark.parametrize("patterns", [False, True])
def test_a_requeued_row_is_stored_once_when_the_cause_is_fixed(tmp_path: Path, patterns: bool) -> None:
    """Set aside, requeued with ``logharbor wal refused --requeue`` after the cause is fixed: the
    row is in the store exactly once, with the message it was sent with (patterns off and on: the
    rows set aside were already through the miner)."""
    tally = Tally(f"refused row requeued once its cause is fixed (patterns {'on' if patterns else 'off'})")
    real = EmbeddedStore(tmp_path / "store")
    real.open()
    store = RefusesRid(real, "f-3")
    ids = [f"f-{k}" for k in range(8)]
    with running(tmp_path, store, PatternMiner(tmp_path / "patterns") if patterns else None) as (wal, batcher):
        wal.submit(b"\n".join(row(i) for i in ids)).result()
        tally.ack(ids)
        wait_for("the refused row set aside", lambda: batcher.refused.rows == 1 and batcher.caught_up())
    files = refused_files(tmp_path / "wal" / "quarantine" / "refused")
    assert [f["rows"] for f in files] == [1]
    done = wal_cli("refused", str(tmp_path), "--requeue", files[0]["file"])
    assert done.returncode == 0, done.stderr
    store.broken = False  # the cause is fixed
    with running(tmp_path, store, PatternMiner(tmp_path / "patterns") if patterns else None) as (wal, batcher):
        wait_for("the requeued row stored", batcher.caught_up)
    rows = real.query("SELECT JSONExtractString(attributes, 'rid') AS rid, message FROM logs", {})
    tally.saw(r["rid"] for r in rows)
    real.close()
    tally.report()
    assert refused_files(tmp_path / "wal" / "quarantine" / "refused") == []
    assert {r["rid"]: r["message"] for r in rows}["f-3"] == "order f-3 paid"


def test_a_sealed_file_is_requeued_only_with_its_key(tmp_path: Path) -> None:
    """Without ``--key-file`` a sealed file is refused (it was split into 'rows' at its newline
    bytes and whitespace-only pieces dropped: a blob with two newlines in a row came back damaged),
    and nothing is renamed; with the key the row reaches the WAL exactly as it was set aside."""
    from logharbor.sealing import Sealer, generate_key_file
    from logharbor.server.engine.refused import RefusedRows

    generate_key_file(tmp_path / "key")
    sealer = Sealer.from_file(tmp_path / "key")
    wal = WriteAheadLog(tmp_path / "wal", fsync=False, sealer=sealer)
    wal.open()
    wal.submit(row("s-0")).result()
    wal.close()
    (tmp_path / "batcher.json").write_text('{"version": 1, "done_seq": 1, "done_pos": [1, 0]}')
    refused_row = poison("s-1")
    RefusedRows(tmp_path / "wal" / "quarantine" / "refused", sealer).keep(
        "wal-1-1", 1, 1, [(1, refused_row, REFUSED)])
    denied = wal_cli("refused", str(tmp_path), "--requeue", "refused-1-1.ndjson")
    assert denied.returncode != 0 and "--key-file" in denied.stderr, denied.stderr
    assert (tmp_path / "wal" / "quarantine" / "refused" / "refused-1-1.ndjson").exists()
    done = wal_cli("refused", str(tmp_path), "--requeue", "refused-1-1.ndjson", "--key-file", str(tmp_path / "key"))
    assert done.returncode == 0, done.stderr
    wal = WriteAheadLog(tmp_path / "wal", fsync=False, sealer=sealer)
    wal.open()
    try:
        payloads = [e.payload for e in wal.read(wal.start_position(), 1 << 20)]
    finally:
        wal.close()
    assert payloads[-1] == refused_row


def test_readyz_and_metrics_name_refused_rows_kept_from_an_earlier_run(tmp_path: Path) -> None:
    """What an operator sees of refused rows a server set aside before (no row that passes the
    normaliser is refused by the store today, so a real server is started on a data directory
    that already holds one file): /readyz stays 200 and names them, /metrics counts the file."""
    from tests.conftest import ServerProcess

    from logharbor.server.engine.refused import RefusedRows

    data = tmp_path / "data"
    RefusedRows(data / "wal" / "quarantine" / "refused").keep(
        "wal-7-9", 7, 9, [(8, poison("x-1"), "Code: 41. DB::Exception: Cannot read DateTime")])
    server = ServerProcess(data).start()
    try:
        ready = httpx.get(server.url + "/readyz", timeout=10)
        assert ready.status_code == 200, ready.text
        refused = ready.json()["refused_rows"]
        assert refused["files"] == 1 and "logharbor wal refused" in refused["what_to_do"]
        metrics = httpx.get(server.url + "/metrics", headers=server.headers, timeout=10).text
        assert "logharbor_store_refused_files 1.0" in metrics
    finally:
        server.stop()


def test_a_passing_refusal_during_an_isolation_sets_no_good_row_aside(tmp_path: Path) -> None:
    """A row alone is set aside only after as many refused attempts as the whole batch needed: one
    refusal that passes (a store restarting, a schema being changed) on a good row's own insert
    does not put it in the quarantine."""
    tally = Tally("a passing refusal on a good row's own insert during an isolation")
    real = EmbeddedStore(tmp_path / "store")
    real.open()
    once = {"left": 1}

    def fail(token: str) -> str | None:
        if token.endswith("-r00") and once["left"]:
            once["left"] -= 1
            return REFUSED
        return None

    store = FlakyStore(real, fail)
    ids = [f"g-{k}" for k in range(4)]
    with running(tmp_path, store) as (wal, batcher):
        wal.submit(b"\n".join(poison(i) if i == "g-1" else row(i) for i in ids)).result()
        tally.ack(ids)
        wait_for("the refused row set aside", lambda: batcher.refused.rows >= 1 and batcher.caught_up())
    refused = read_back(tally, real, tmp_path / "wal")
    real.close()
    tally.report()
    assert [orjson.loads(r)["attributes"]["rid"] for r in refused] == ["g-1"]
