"""A batch replayed from the WAL after a crash is stored with the ids it had before the crash, and
its groups are the same: every stored id is assigned to its template's group exactly once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(data_dir: Path, step: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "tests.patterns.replay_worker", str(data_dir), step],
                          cwd=ROOT, capture_output=True, timeout=300)


@pytest.mark.parametrize("step, code", [("before-insert", 17), ("after-insert", 18)])
def test_replay_after_a_crash_gives_the_same_ids(tmp_path: Path, step: str, code: int) -> None:
    assert run(tmp_path, "fill").returncode == 0
    died = run(tmp_path, step)
    assert died.returncode == code, died.stderr.decode()[-2000:]
    before = orjson.loads((tmp_path / "ids.json").read_bytes())  # (id, message) of the batch that died
    assert len(before) == 330
    assert (tmp_path / "patterns" / "journal.ndjson").stat().st_size > 0  # its changes were durable
    replay = run(tmp_path, "replay")
    assert replay.returncode == 0, replay.stderr.decode()[-2000:]
    answer = orjson.loads(replay.stdout.splitlines()[-1])
    rows = answer["rows"]
    assert len(rows) == 330  # each record once: the replayed insert was not doubled
    stored = {r["message"]: r["pattern_id"] for r in rows}
    assert all(stored[message] == pid for pid, message in before)  # the very ids of the dead batch
    groups = answer["groups"]  # stored id → its group, from the patterns table
    assert set(groups) == set(stored.values())  # every stored id was assigned before its rows
    assert len(set(groups.values())) == 8  # the corpus' 8 templates, 8 groups
    # the patterns table agrees: every id has its assignment row, and counts add up to the records
    counts = {r["pattern_id"]: (int(r["n"]), int(r["t"])) for r in answer["counts"]}
    assert set(counts) == set(stored.values())
    assert sum(n for n, _ in counts.values()) == 330 and all(t >= 1 for _, t in counts.values())
    info = answer["info"]
    assert [r["count"] for r in info] == sorted((r["count"] for r in info), reverse=True)
    per_group: dict[str, int] = {}
    for stored_id, (n, _) in counts.items():
        per_group[groups[stored_id]] = per_group.get(groups[stored_id], 0) + n
    assert {r["pattern_id"]: r["count"] for r in info} == per_group
    assert {r["template"] for r in info} >= {"connection pool exhausted", "disk <path> is <num>% full"}
    assert answer["first"] == info[0]["first_seen_ns"] > 0 and answer["missing"] is None
