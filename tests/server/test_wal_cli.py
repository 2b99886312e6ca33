"""``logharbor wal verify|repair`` as an operator runs them: real processes on real WAL directories."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from tests.server.wal_damage import build, entry_id, flip, quarantined, read_everything, segments, spans

import logharbor.server.engine.wal.tools as tools
from logharbor.sealing import Sealer, generate_key_file
from logharbor.server.engine.wal import WalLocked, WriteAheadLog
from logharbor.server.engine.wal.segments import JOURNAL

ROOT = Path(__file__).resolve().parents[2]


def wal_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "logharbor.cli.main", "wal", *args], input=stdin,
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def verify_json(data_dir: Path) -> tuple[int, dict]:  # type: ignore[type-arg]
    done = wal_cli("verify", str(data_dir), "--json")
    return done.returncode, orjson.loads(done.stdout)


def damaged_data_dir(tmp_path: Path) -> tuple[Path, set[int]]:
    """A data dir whose WAL has damage in a sealed segment and in the last one, and a torn tail."""
    data = tmp_path / "data"
    build(data / "wal", 30, segment_bytes=600, keys=True)
    segs = segments(data / "wal")
    first, last = spans(segs[0]), spans(segs[-1])
    flip(segs[0], first[1][2] - 3)  # a payload in the oldest segment
    flip(segs[-1], last[0][1] + 9)  # a header in the last one
    os.truncate(segs[-1], segs[-1].stat().st_size - 4)  # and its last entry torn
    return data, {first[1][0], last[0][0], last[-1][0]}


def test_verify_reports_a_clean_wal_and_exits_0(tmp_path: Path) -> None:
    build(tmp_path / "data" / "wal", 5)
    code, report = verify_json(tmp_path / "data")
    assert code == 0 and report["entries"] == 5 and report["damaged_spans"] == 0 and not report["in_use"]
    text = wal_cli("verify", str(tmp_path / "data"))
    assert text.returncode == 0 and "result: clean" in text.stdout


def test_verify_names_every_damaged_span_and_exits_1(tmp_path: Path) -> None:
    data, _ = damaged_data_dir(tmp_path)
    before = {p.name: p.read_bytes() for p in segments(data / "wal")}
    code, report = verify_json(data)
    assert code == 1
    damage = [(s["segment"], d["offset"], d["reason"]) for s in report["segments"] for d in s["damage"]]
    assert len(damage) == 2 and "payload fails its CRC" in damage[0][2] and "header" in damage[1][2]
    assert report["segments"][-1]["torn_tail"]["size"] > 0
    assert {p.name: p.read_bytes() for p in segments(data / "wal")} == before  # read-only
    assert not (data / "wal" / "quarantine").exists()
    text = wal_cli("verify", str(data))
    assert text.returncode == 1 and "DAMAGED at offset" in text.stdout and "torn tail" in text.stdout


def test_verify_reads_a_sealed_wal_without_its_key(tmp_path: Path) -> None:
    key_file = tmp_path / "keys"
    generate_key_file(key_file)
    wal = WriteAheadLog(tmp_path / "data" / "wal", sealer=Sealer.from_file(key_file))
    wal.open()
    for i in range(4):
        wal.submit(b'{"id":"e%05d"}' % i).result(timeout=10)
    wal.close()
    (seg,) = segments(tmp_path / "data" / "wal")
    flip(seg, seg.stat().st_size - 10)  # inside the last sealed payload: its CRC covers the sealed bytes
    code, report = verify_json(tmp_path / "data")
    assert code == 1 and report["entries"] == 3 and report["damaged_spans"] == 1


def test_repair_refuses_while_a_server_owns_the_wal(tmp_path: Path) -> None:
    data, _ = damaged_data_dir(tmp_path)
    owner = WriteAheadLog(data / "wal")
    owner.open()
    try:
        done = wal_cli("repair", str(data), "--yes")
        assert done.returncode == 1 and "in use by process" in done.stderr
        _, report = verify_json(data)  # verify still works, and says the WAL is in use
        assert report["in_use"]
    finally:
        owner.close()


def test_repair_asks_then_sets_damage_aside_and_rewrites(tmp_path: Path) -> None:
    data, lost = damaged_data_dir(tmp_path)
    progress = {"version": 1, "done_seq": 0, "done_pos": [1, 8], "intent": [1, 6, [1, 8], [1, 698]]}
    (data / "batcher.json").write_bytes(orjson.dumps(progress))
    answer_no = wal_cli("repair", str(data), stdin="n\n")
    assert answer_no.returncode == 1 and "YOU LOSE THE DAMAGED ENTRIES" in answer_no.stdout
    assert verify_json(data)[0] == 1  # nothing was changed
    done = wal_cli("repair", str(data), stdin="y\n")
    assert done.returncode == 0, done.stderr
    assert "rewrote 00000000000000000001.wal" in done.stdout and "torn tail" in done.stdout
    code, report = verify_json(data)
    assert code == 3 and report["damaged_spans"] == 0 and len(report["quarantine"]) == 2
    assert all(q["found_by"] == "repair" and q["complete"] for q in quarantined(data / "wal"))
    # the batcher's positions follow the rewrite: its intent still ends after its last entry
    moved = orjson.loads((data / "batcher.json").read_bytes())
    first_seg = segments(data / "wal")[0]
    assert moved["intent"][3] == [1, first_seg.stat().st_size] and moved["done_pos"] == [1, 8]
    wal = WriteAheadLog(data / "wal")
    wal.open()
    assert [entry_id(e) for e in read_everything(wal)] == [i for i in range(30) if i not in lost]
    assert wal.quarantine.corrupt_entries == 0  # nothing left to find
    wal.close()
    assert wal_cli("repair", str(data), "--yes").stdout.strip() == "nothing to repair"


def test_a_repair_cut_short_is_finished_by_running_it_again(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    data, lost = damaged_data_dir(tmp_path)
    with monkeypatch.context() as patch:  # the process "dies" right after writing its journal
        patch.setattr(tools, "finish_interrupted", lambda wal_dir: False)
        tools.repair(data / "wal", data / "batcher.json", tools.plan_repair(data / "wal"))
    assert (data / "wal" / JOURNAL).exists()
    with pytest.raises(WalLocked, match="cut short"):
        WriteAheadLog(data / "wal").open()
    assert verify_json(data)[1]["interrupted_repair"]
    done = wal_cli("repair", str(data), "--yes")
    assert done.returncode == 0 and "finished a repair that was cut short" in done.stdout
    wal = WriteAheadLog(data / "wal")
    wal.open()
    assert [entry_id(e) for e in read_everything(wal)] == [i for i in range(30) if i not in lost]
    wal.close()


@pytest.mark.slow
def test_the_commands_explain_themselves() -> None:
    for command in ("verify", "repair"):
        done = wal_cli(command, "--help")
        assert done.returncode == 0 and "DATA_DIR" in done.stdout
    assert "--yes" in wal_cli("repair", "--help").stdout
    missing = wal_cli("verify", "/nonexistent/data")
    assert missing.returncode == 1 and "no write-ahead log here" in missing.stderr


def test_the_documented_commands_run(tmp_path: Path) -> None:
    """docs/server.md's `wal` examples, run as written (on a damaged data dir; repair with --yes)."""
    text = (ROOT / "docs" / "server.md").read_text()
    section = text[text.index("### `logharbor wal verify`"):]
    (block,) = re.findall(r"```bash\n(.*?)```", section, flags=re.S)[:1]
    data, _ = damaged_data_dir(tmp_path)
    codes = []
    for line in block.splitlines():
        words = shlex.split(line.split("#")[0])
        assert words[:2] == ["logharbor", "wal"], line
        args = [str(data) if w == "./data" else w for w in words[2:]]
        done = wal_cli(*args, *(["--yes"] if args[0] == "repair" else []))
        codes.append(done.returncode)
        if "--json" in args:
            assert orjson.loads(done.stdout)["damaged_spans"] == 2
    assert codes == [1, 1, 0]
    assert verify_json(data)[0] == 3  # repaired: only the quarantine is left to look at
