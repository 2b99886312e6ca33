"""Every file a server or an agent of the release before text attributes kept between runs, written
by that release's own writers (``old-release-files.tgz``, made by ``make_old_release_files.py``
with the code of commit cd1aa9a), opened by this release with nothing lost:

- the WAL, plain and sealed: every entry and its idempotency key, and its rows (the old layout:
  the JSON column's object plus the ``attributes_exact`` patch) stored with every value exact;
- ``idempotency.keys``: a retried request is still known;
- the agent's disk buffer, plain and sealed: what was not delivered comes out once, in order, and
  what was delivered does not come again; its file checkpoints;
- ``meta.db``: an API key still verifies, with its role, tenant and services;
- the batcher's progress (an insert under way, stored in halves), the refused rows it set aside
  (old layout: stored exactly when requeued) and the pattern miner's journal;
- a server config file naming every option of that release: it loads, each value kept.

The data directory's store (tables of the old layout, old cold files, the old mover's copies) is
tests/store/test_attrmigrate.py, tests/store/test_mover_duplicates.py and the fault tests.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.record.values import typed
from tests.server.wal_damage import read_everything
from tests.upgrade import unpack

from logharbor import exactjson
from logharbor.agent.buffer.disk import DiskBuffer
from logharbor.agent.checkpoint import CheckpointStore
from logharbor.record import normalize, to_wire
from logharbor.sealing import Sealer
from logharbor.server.config import ServerConfig
from logharbor.server.engine.batcher_progress import load_progress
from logharbor.server.engine.mining import PatternMiner
from logharbor.server.engine.refused import read_refused
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import row_to_wire
from logharbor.server.engine.wal import WalSealed, WriteAheadLog
from logharbor.server.ingest.idempotency import EntryKey, KeyIndex, request_digest, request_fingerprint
from logharbor.server.meta.db import MetaStore
from logharbor.server.meta.keys import KeyStore

FIXTURE = Path(__file__).parent / "old-release-files.tgz"


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack(tmp_path_factory, FIXTURE, "old")


@pytest.fixture
def old(unpacked: Path, tmp_path: Path) -> Path:
    """A fresh copy per test (readers may write: positions, compactions)."""
    return Path(shutil.copytree(unpacked, tmp_path / "old"))


@pytest.fixture
def manifest(unpacked: Path) -> dict[str, Any]:
    return json.loads((unpacked / "manifest.json").read_text())


def wal_entries(path: Path, sealer: Sealer | None) -> Iterator[Any]:
    wal = WriteAheadLog(path, fsync=False, sealer=sealer)
    wal.open()
    try:
        yield from read_everything(wal)
        keys = list(wal.iter_keys())
        yield keys
    finally:
        wal.close()


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
def test_an_old_wal_is_read_whole_and_its_rows_are_stored_exactly(old: Path, manifest: dict[str, Any],
                                                                   sealed: bool, tmp_path: Path) -> None:
    sealer = Sealer.from_file(old / "secrets.key") if sealed else None
    *entries, keys = list(wal_entries(old / ("wal-sealed" if sealed else "wal"), sealer))
    info = manifest["wal"]
    assert [e.seq for e in entries] == info["seqs"]
    assert [seq for seq, _ in keys] == [info["keyed_seq"]]
    request = info["request"]
    key = EntryKey.decode(keys[0][1])
    assert key.request == (request_digest(request["scope"], request["key"]),
                           request_fingerprint(request["path"], request["body"].encode()))
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    try:
        for entry in entries:
            store.insert(entry.payload, dedup_token=f"old-wal-{entry.seq}")
        got = {}
        for row in store.query(f"SELECT * FROM {store.hot_table}", {}):  # noqa: S608 - a quoted name
            wire = row_to_wire(row)
            got[wire["message"]] = wire
    finally:
        store.close()
    records = [exactjson.loads(json.dumps(r)) for r in info["records"]]
    assert sorted(got) == sorted(r["message"] for r in records)
    for record in records:
        want = to_wire(normalize(record, received_ns=record["timestamp"]))
        assert typed(got[record["message"]]) == typed(want), record["message"]


def test_old_idempotency_keys_still_answer_a_retry(old: Path, manifest: dict[str, Any]) -> None:
    request = manifest["wal"]["request"]
    index = KeyIndex(old / "idempotency.keys", window_s=86_400, max_keys=1000,
                     clock=lambda: 1_780_272_000.0 + 60)
    index.load([])
    assert index.request(request_digest(request["scope"], request["key"])) == request_fingerprint(
        request["path"], request["body"].encode())
    assert index.request(request_digest(request["scope"], "another key")) is None


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
def test_an_old_agent_buffer_hands_out_what_was_not_delivered_once(old: Path, manifest: dict[str, Any],
                                                                    sealed: bool) -> None:
    sealer = Sealer.from_file(old / "secrets.key") if sealed else None
    buffer = DiskBuffer(old / ("buffer-sealed" if sealed else "buffer"), 1 << 20, "block", sealer, sink="main")
    try:
        got = []
        while (item := buffer.get(0.2)) is not None:
            got.append(item.payload.decode())
            buffer.commit([item])
    finally:
        buffer.close()
    assert got == manifest["buffer"]["payloads"]
    again = DiskBuffer(old / ("buffer-sealed" if sealed else "buffer"), 1 << 20, "block", sealer, sink="main")
    try:
        assert again.get(0.2) is None  # delivered now: not again after a restart
    finally:
        again.close()


def test_old_agent_checkpoints_are_read(old: Path, manifest: dict[str, Any]) -> None:
    entries = CheckpointStore(old / "checkpoints.json").load()
    fields = ("dev", "ino", "fp_len", "fp_hash", "offset", "path", "updated", "ghost", "gzip", "mark")
    assert [{f: getattr(e, f) for f in fields} for e in entries] == [
        {f: e[f] for f in fields} for e in manifest["checkpoints"]]


def test_an_old_api_key_still_verifies(old: Path, manifest: dict[str, Any]) -> None:
    meta = MetaStore.for_data_dir(old)
    meta.create()  # as a start does: what this release adds to an existing database
    try:
        principal = KeyStore(meta).verify(manifest["key"]["secret"])
        assert principal is not None
        assert (principal.role, principal.tenant, list(principal.services or [])) == (
            manifest["key"]["role"], manifest["key"]["tenant"], manifest["key"]["services"])
        assert KeyStore(meta).verify(manifest["key"]["secret"][:-1] + "x") is None
    finally:
        meta.close()


def test_an_old_server_config_file_loads_with_every_value(old: Path) -> None:
    config = ServerConfig.load({}, config_file=old / "server.yaml")
    written = yaml.safe_load((old / "server.yaml").read_text())
    now = config.model_dump(mode="json")
    assert {k: now[k] for k in written} == written


def test_a_sealed_wal_opened_without_its_key_hands_out_nothing(old: Path, manifest: dict[str, Any]) -> None:
    """Without the key its entries are not handed on as rows (they would be refused, or worse);
    the read says what to do, and with the key everything is there."""
    wal = WriteAheadLog(old / "wal-sealed", fsync=False)
    wal.open()
    try:
        with pytest.raises(WalSealed, match="--encryption-key-file"):
            read_everything(wal)
    finally:
        wal.close()
    *entries, _ = list(wal_entries(old / "wal-sealed", Sealer.from_file(old / "secrets.key")))
    assert [e.seq for e in entries] == manifest["wal"]["seqs"]


def test_a_sealed_agent_buffer_opened_without_its_key_sends_nothing(old: Path, manifest: dict[str, Any]) -> None:
    """Sent as records, sealed bytes would be refused by the server and the chunk dropped as
    rejected: delivery waits instead, and with the key every record comes out."""
    buffer = DiskBuffer(old / "buffer-sealed", 1 << 20, "block", None, sink="main")
    try:
        assert buffer.get(0.2) is None
    finally:
        buffer.close()
    buffer = DiskBuffer(old / "buffer-sealed", 1 << 20, "block", Sealer.from_file(old / "secrets.key"), sink="main")
    try:
        got = []
        while (item := buffer.get(0.2)) is not None:
            got.append(item.payload.decode())
            buffer.commit([item])
    finally:
        buffer.close()
    assert got == manifest["buffer"]["payloads"]


def test_old_batcher_progress_is_read_with_its_unfinished_insert(old: Path, manifest: dict[str, Any]) -> None:
    progress = load_progress(old / "batcher.json")
    want = manifest["batcher"]
    assert progress is not None
    assert (progress.done_seq, progress.done_pos.as_list(), progress.isolating) == (
        want["done_seq"], want["done_pos"], want["isolating"])
    assert progress.intent is not None
    first, last, start, end = progress.intent
    assert [first, last, start.as_list(), end.as_list()] == want["intent"]


def test_old_refused_rows_are_read_and_stored_exactly_on_requeue(old: Path, manifest: dict[str, Any],
                                                                  tmp_path: Path) -> None:
    rows = read_refused(old / manifest["refused"]["file"], None)
    assert [exactjson.loads(r)["message"] for r in rows] == manifest["refused"]["messages"]
    records = {r["message"]: exactjson.loads(json.dumps(r)) for r in manifest["wal"]["records"]}
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    try:
        assert store.insert(b"\n".join(rows), dedup_token="requeue-1") == len(rows)
        for row in store.query(f"SELECT * FROM {store.hot_table}", {}):  # noqa: S608 - a quoted name
            wire = row_to_wire(row)
            record = records[wire["message"]]
            assert typed(wire) == typed(to_wire(normalize(record, received_ns=record["timestamp"])))
    finally:
        store.close()


def test_an_old_pattern_journal_is_replayed(old: Path, manifest: dict[str, Any]) -> None:
    miner = PatternMiner(old / "patterns")
    miner.load()
    try:
        assert miner.damaged_lines == 0
        state = json.loads(json.dumps(miner.miner.snapshot(), default=str))
        assert sorted(state) == sorted(manifest["patterns"])  # every template, with its id and sample
    finally:
        miner.close()
