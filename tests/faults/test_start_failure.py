"""A start that fails names the file, the table and the repair; nothing stored is lost by it.

The damage a full disk left (issue #20): an empty table definition file of the embedded store
(the engine then refused to start and named nothing). Also the other files a start reads: the
batcher's progress file and the metadata database stop the start with a message naming them;
the pattern miner's snapshot (derived state) is set aside with a log line and the server runs.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from tests.conftest import ROOT, ServerProcess
from tests.faults.conftest import Tally

RECORDS = 600


def started_with_records(tmp_path: Path, tally: Tally | None = None) -> ServerProcess:
    server = ServerProcess(tmp_path / "data", "--batch-max-age", "0.2").start()
    ids = [f"r{i}" for i in range(RECORDS)]
    server.ingest([{"service": "start", "rid": rid, "message": f"before the damage {rid}"} for rid in ids])
    if tally is not None:
        tally.ack(ids)
    server.stop()
    return server


def start_fails(server: ServerProcess) -> str:
    """Start, expect the process to exit; its output."""
    with pytest.raises(RuntimeError) as failed:
        server.start(timeout=120)
    return str(failed.value)


def metadata_file(data_dir: Path, table: str) -> Path:
    return data_dir / "store" / "metadata" / "default" / f"{table}.sql"


def logharbor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "logharbor.cli.main", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, check=False)


def test_an_empty_table_definition_is_named_and_repaired(tmp_path: Path) -> None:
    tally = Tally("empty table definition files at start (logs and its read view)")
    server = started_with_records(tmp_path, tally)
    logs_sql = metadata_file(server.data_dir, "logs")
    logs_sql.write_bytes(b"")  # what the engine left after a definition write on a full disk
    metadata_file(server.data_dir, "logs_all").write_bytes(b"")

    output = start_fails(server)
    assert str(logs_sql) in output and "table default.logs" in output, output[-3000:]
    assert f"logharbor store repair {server.data_dir}" in output, output[-3000:]
    # the read view holds no data: set aside at that start, made again at the next
    aside = list((server.data_dir / "store-damaged").glob("*/default.logs_all.sql"))
    assert aside, list((server.data_dir / "store-damaged").rglob("*"))

    check = logharbor("store", "check", str(server.data_dir))
    assert check.returncode == 1 and str(logs_sql) in check.stdout, check.stdout + check.stderr
    repaired = logharbor("store", "repair", str(server.data_dir))
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "written back" in repaired.stdout
    assert logharbor("store", "check", str(server.data_dir)).returncode == 0

    server.start()
    with server.client() as client:
        response = client.post("/api/v1/query", json={"q": "service:start | fields rid", "limit": 10_000,
                                                      "from": "2000-01-01", "to": "2100-01-01"},
                               headers={"Accept": "application/x-ndjson"})
    server.stop()
    tally.saw(orjson.loads(line)["rid"] for line in response.content.splitlines() if line.strip())
    tally.report()


def test_a_damaged_progress_file_is_named(tmp_path: Path) -> None:
    server = started_with_records(tmp_path)
    (server.data_dir / "batcher.json").write_bytes(b'{"version": 1, "done_seq": 7, "done_p')
    output = start_fails(server)
    assert str(server.data_dir / "batcher.json") in output and "is damaged" in output, output[-3000:]


def test_a_damaged_metadata_database_is_named(tmp_path: Path) -> None:
    server = started_with_records(tmp_path)
    meta = server.data_dir / "meta.db"
    for suffix in ("-wal", "-shm"):
        Path(str(meta) + suffix).unlink(missing_ok=True)
    meta.write_bytes(b"this is not a database" * 100)
    output = start_fails(server)
    assert f"the metadata database {meta} cannot be read" in output and ".recover" in output, output[-3000:]


def test_a_damaged_pattern_snapshot_is_set_aside_and_named(tmp_path: Path) -> None:
    server = started_with_records(tmp_path)  # a clean stop leaves a snapshot
    snapshot = server.data_dir / "patterns" / "miner.json"
    assert snapshot.exists()
    snapshot.write_bytes(b"\x00" * 64)
    server.start()
    server.ingest([{"service": "start", "message": "after the damage"}])
    server.stop()
    log = server.log()
    assert f"the pattern snapshot {snapshot} is damaged" in log, log[-3000:]
    assert list((server.data_dir / "patterns").glob("damaged-*/miner.json"))
