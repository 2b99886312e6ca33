"""Every file a newer release keeps between runs (``newer-release-files.tgz``, made by
``make_newer_release_files.py``), met by this release after a rollback: refused with a message
naming the file, the version found and the versions read here, and left byte for byte as it was.
Never taken for damage (cut, quarantined, moved aside, rewritten), whichever way it is met:

- by its reader (the component refuses), and by the whole process: ``logharbor server`` and
  ``logharbor agent`` exit non-zero with one line, no traceback, before they write anything;
- the opposite corner, a version under a checksum that fails, is damage and keeps the damage
  handling (``formatversion.py``: decided by what a checksum covers).

The fault test (a server's acknowledged records in a segment of a newer format, refused, then
read whole by "the newer release") is tests/faults/test_newer_wal.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.upgrade import tree, unpack

from logharbor.agent.buffer.disk import DiskBuffer
from logharbor.agent.checkpoint import CheckpointStore
from logharbor.agent.sources.alb import AlbSource
from logharbor.agent.sources.alb import Config as AlbConfig
from logharbor.agent.sources.file import Config as FileConfig
from logharbor.agent.sources.file import FileSource
from logharbor.formatversion import NewerFormat
from logharbor.sealing import Sealer, SealError, looks_sealed
from logharbor.server.engine.batcher_progress import load_progress, stored_seq
from logharbor.server.engine.mining import PatternMiner
from logharbor.server.engine.wal import WriteAheadLog
from logharbor.server.ingest.idempotency import KeyIndex
from logharbor.server.meta.db import SCHEMA_VERSION, MetaStore
from logharbor.server.meta.keys import KeyStore

FIXTURE = Path(__file__).parent / "newer-release-files.tgz"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack(tmp_path_factory, FIXTURE, "newer")


@pytest.fixture
def newer(unpacked: Path, tmp_path: Path) -> Path:
    """A fresh copy per test (a reader that wrote would change it: that is what is checked)."""
    return Path(shutil.copytree(unpacked, tmp_path / "newer"))


def refused(call: Any, root: Path, *names: str) -> str:
    """``call()`` raises NewerFormat naming each of ``names``, and nothing under ``root`` changed."""
    before = tree(root)
    with pytest.raises(NewerFormat) as exc:
        call()
    message = str(exc.value)
    for name in names:
        assert name in message, message
    assert "Nothing was changed" in message, message
    assert tree(root) == before
    return message


def sealer_of(root: Path) -> Sealer:
    return Sealer.from_file(root / "secrets.key")


# -- each reader refuses ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["wal", "wal-sealed"])
def test_a_newer_wal_segment_is_refused_not_read_as_damage(newer: Path, name: str) -> None:
    wal_dir = newer / name / "wal"
    (segment,) = wal_dir.glob("*.wal")
    sealer = sealer_of(newer) if name == "wal-sealed" else None
    message = refused(lambda: WriteAheadLog(wal_dir, fsync=False, sealer=sealer).open(), newer / name,
                      str(segment), "WAL segment", "LHWAL03", "LHWAL01, LHWAL02")
    assert not (wal_dir / "quarantine").exists(), message


def test_newer_batcher_progress_is_refused(newer: Path) -> None:
    path = newer / "batcher" / "batcher.json"
    refused(lambda: load_progress(path), newer, str(path), "version 2")
    refused(lambda: stored_seq(path), newer, str(path))


def test_a_newer_idempotency_record_is_refused_not_skipped(newer: Path) -> None:
    path = newer / "idempotency" / "idempotency.keys"
    index = KeyIndex(path, window_s=10**10, max_keys=1000)
    refused(lambda: index.load([]), newer, str(path), "version 2")  # compaction would have dropped it


@pytest.mark.parametrize(("name", "file"), [("patterns", "miner.json"), ("patterns-journal", "journal.ndjson")])
def test_newer_pattern_state_is_refused_not_moved_aside(newer: Path, name: str, file: str) -> None:
    directory = newer / name / "patterns"
    refused(lambda: PatternMiner(directory).check_version(), newer, str(directory / file))
    refused(lambda: PatternMiner(directory).load(), newer, str(directory / file))


def test_a_newer_metadata_schema_is_refused_before_any_ddl(newer: Path) -> None:
    meta = MetaStore.for_data_dir(newer / "meta")
    try:
        refused(meta.create, newer, str(newer / "meta" / "meta.db"), "readable from schema 2")
    finally:
        meta.close()


def test_a_newer_metadata_schema_this_release_can_use_is_used_and_not_altered(newer: Path) -> None:
    """readable_from at or below this release's schema: used, with nothing created, added or
    migrated down in it (its own table and column stay; no row of logharbor_schema changes)."""
    before = tree(newer)
    meta = MetaStore.for_data_dir(newer / "meta-readable")
    try:
        meta.create()
        assert meta.schema() == (2, 1) and SCHEMA_VERSION < 2
        assert KeyStore(meta).count_active_admins() == 0
    finally:
        meta.close()
    assert tree(newer) == before


@pytest.mark.parametrize("name", ["buffer", "buffer-sealed", "buffer-ack"])
def test_a_newer_agent_buffer_is_refused_not_read_as_damage(newer: Path, name: str) -> None:
    directory = newer / name / "buffer" / "main"
    sealer = sealer_of(newer) if name == "buffer-sealed" else None
    what = (str(directory / "ack.json"), "version 2") if name == "buffer-ack" else ("LHBUF03", "LHBUF02")
    refused(lambda: DiskBuffer(directory, 1 << 20, "block", sealer, sink="main"), newer / name, *what)


def test_a_newer_file_checkpoint_is_refused_not_replaced(newer: Path) -> None:
    path = newer / "checkpoints" / "checkpoints" / "app.json"
    refused(lambda: CheckpointStore(path).load(), newer, str(path), "version 3", "1, 2")
    config = FileConfig.model_validate({"type": "file", "include": [str(newer / "*.log")]})
    refused(lambda: FileSource("app", config, newer / "checkpoints", 1), newer, str(path))


def test_a_newer_alb_read_set_is_refused_not_replaced(newer: Path) -> None:
    path = newer / "alb" / "lb.alb.json"
    config = AlbConfig.model_validate({"type": "alb", "path": str(newer / "alb-logs")})
    refused(lambda: AlbSource("lb", config, newer / "alb", 1), newer, str(path), "version 3")


def test_a_newer_seal_is_neither_opened_nor_handed_on_as_records(newer: Path) -> None:
    """A payload sealed in a newer format (``LHS2``) is sealed bytes all the same: a reader without
    a key does not hand it on as records, and one with a key says which format it met."""
    sealed = sealer_of(newer).seal(b'{"message":"x"}\n')
    newer_seal = b"LHS2" + sealed[4:]
    assert looks_sealed(newer_seal)
    with pytest.raises(SealError, match="LHS2, written by a newer release"):
        sealer_of(newer).open(newer_seal)


# -- the opposite corner: a version under a checksum that fails is damage ------------------------------

def test_a_newer_version_under_a_failing_crc_is_damage(newer: Path) -> None:
    """The agent's CRC covers the version: one that fails is damage (the previous copy or none is
    used, as for any damaged copy), never a refusal."""
    path = newer / "checkpoints" / "checkpoints" / "app.json"
    doc = json.loads(path.read_text())
    doc["crc"] ^= 1
    path.write_text(json.dumps(doc))
    assert CheckpointStore(path).load() == []  # damaged, no other copy: read as on a first start


def test_an_idempotency_record_failing_its_crc_is_damage(newer: Path) -> None:
    path = newer / "idempotency" / "idempotency.keys"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01  # in the newer record's key: its CRC fails
    path.write_bytes(bytes(data))
    index = KeyIndex(path, window_s=10**10, max_keys=1000)
    index.load([])  # the damaged record is skipped; the sound one before it is kept
    assert len(index) == 1


def test_a_wal_magic_that_is_not_a_version_is_damage(newer: Path) -> None:
    """``LHWAL0?`` names no version: the magic is damaged and the segment is read as LHWAL02
    (its entries are sound): nothing is refused."""
    wal_dir = newer / "wal" / "wal"
    (segment,) = wal_dir.glob("*.wal")
    segment.write_bytes(b"LHWAL0?\n" + segment.read_bytes()[8:])
    wal = WriteAheadLog(wal_dir, fsync=False)
    wal.open()
    try:
        assert [e.seq for e in wal.read(wal.start_position(), 1 << 20)] == [1, 2]
    finally:
        wal.close()


# -- the processes: one line, exit non-zero, nothing written ------------------------------------------

def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "logharbor.cli.main", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=300, check=False)


@pytest.mark.parametrize(("name", "names"), [
    ("wal", ["wal/00000000000000000001.wal", "LHWAL03"]),
    ("wal-sealed", ["wal/00000000000000000001.wal", "LHWAL03"]),
    ("batcher", ["batcher.json", "version 2"]),
    ("idempotency", ["idempotency.keys", "version 2"]),
    ("patterns", ["miner.json", "version 3"]),
    ("patterns-journal", ["journal.ndjson", "'M'"]),
    ("meta", ["meta.db", "readable from schema 2"]),
])
def test_a_server_refuses_to_start_on_a_newer_file_and_changes_nothing(newer: Path, name: str,
                                                                       names: list[str]) -> None:
    data_dir = newer / name
    before = tree(newer)
    key = ["--encryption-key-file", str(newer / "secrets.key")] if name == "wal-sealed" else []
    result = run("server", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", "0", *key)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out[-3000:]
    assert "Traceback" not in out, out[-3000:]
    line = next((ln for ln in out.splitlines() if "cannot start" in ln), None)
    assert line is not None, out[-3000:]
    for part in names:
        assert part in line, line
    assert "newer" in line and "Nothing was changed" in line, line
    assert tree(newer) == before


@pytest.mark.parametrize("command", ["verify", "repair"])
def test_the_wal_tools_refuse_a_newer_segment(newer: Path, command: str) -> None:
    before = tree(newer)
    result = run("wal", command, str(newer / "wal"), *(["--yes"] if command == "repair" else []))
    assert result.returncode != 0 and "LHWAL03" in result.stderr, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert tree(newer) == before


def agent_config(newer: Path, name: str) -> Path:
    data_dir = newer / name
    sink: dict[str, Any] = {"type": "logharbor", "url": "http://127.0.0.1:9"}
    sources: dict[str, Any] = {"app": {"type": "file", "include": [str(newer / "logs" / "*.log")]}}
    if name.startswith("buffer"):
        sink["buffer"] = {"type": "disk"}
        if name == "buffer-sealed":
            sink["buffer"]["encryption_key_file"] = str(newer / "secrets.key")
    if name == "alb":
        sources = {"lb": {"type": "alb", "path": str(newer / "alb-logs")}}
    config = newer / f"agent-{name}.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(data_dir), "sources": sources, "sinks": {"main": sink}}))
    return config


@pytest.mark.parametrize(("name", "names"), [
    ("buffer", ["000000000001.lhb", "LHBUF03"]),
    ("buffer-sealed", ["000000000001.lhb", "LHBUF03"]),
    ("buffer-ack", ["ack.json", "version 2"]),
    ("checkpoints", ["app.json", "version 3"]),
    ("alb", ["lb.alb.json", "version 3"]),
])
def test_an_agent_refuses_to_start_on_newer_state_and_changes_nothing(newer: Path, name: str,
                                                                      names: list[str]) -> None:
    config = agent_config(newer, name)
    before = tree(newer)
    result = run("agent", "-c", str(config))
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    line = next((ln for ln in result.stderr.splitlines() if ln.startswith("logharbor agent: cannot start")), None)
    assert line is not None, result.stderr[-3000:]
    for part in names:
        assert part in line, line
    assert tree(newer) == before
