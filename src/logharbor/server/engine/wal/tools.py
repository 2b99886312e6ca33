"""``logharbor wal verify|repair``: see a WAL directory the way the server reads it, and mend it.

*verify* is read-only: it scans every segment with the server's own scanner (framing alone: no
key is needed when entries are sealed, because the payload CRC covers the sealed bytes) and lists
entries, damaged spans, a torn tail and what is in quarantine.

*repair* takes the directory's lock (so never while a server runs), copies every damaged span to
quarantine, rewrites each damaged segment without them, and truncates a torn tail. Rewriting
moves offsets that ``batcher.json`` points at, so the new segments and the updated progress are
first described in ``wal/repair-journal.json``; the renames and the progress write follow, then the
journal goes. A repair cut short is finished by running it again (and a server refuses to start
while the journal exists).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import orjson

from logharbor.durable import fsync_dir, write_atomic
from logharbor.framing import MAGIC_SIZE, MAGIC_V1, MAGIC_V2, SegmentScan
from logharbor.server.engine.wal.quarantine import Quarantine, quarantine_contents, segment_name
from logharbor.server.engine.wal.segments import JOURNAL, is_locked, list_segments, scan_segment
from logharbor.types import JsonObject

__all__ = ["JOURNAL", "RepairError", "SegmentCheck", "check", "finish_interrupted", "plan_repair", "repair",
           "verify_report"]

_FORMAT = {1: "LHWAL01", 2: "LHWAL02"}


class RepairError(RuntimeError):
    """The repair cannot go on (nothing was changed when this is raised before the journal)."""


@dataclass
class SegmentCheck:
    """One segment as the server would read it."""

    first_seq: int
    path: Path
    magic_ok: bool
    size: int
    scan: SegmentScan
    last: bool

    def as_dict(self) -> JsonObject:
        entries = self.scan.entries
        torn = self.scan.torn
        return {
            "segment": self.path.name, "format": _FORMAT[self.scan.version] if self.magic_ok
            else f"magic damaged (read as {_FORMAT[self.scan.version]})", "bytes": self.size,
            "entries": len(entries), "seq_first": entries[0].seq if entries else None,
            "seq_last": entries[-1].seq if entries else None,
            "keyed_entries": sum(1 for e in entries if e.key),
            "damage": [{"offset": b.start, "size": b.size, "seq_first": b.seq_first, "seq_last": b.seq_last,
                        "reason": b.reason} for b in self.scan.damage],
            "torn_tail": None if torn is None
            else {"offset": torn.start, "size": torn.size, "reason": torn.reason},
        }


def check(wal_dir: Path) -> list[SegmentCheck]:
    """Scan every segment (the last one may end in a torn tail; the others were sealed)."""
    segs = list_segments(wal_dir)
    out = []
    for k, seg in enumerate(segs):
        last = k == len(segs) - 1
        path = wal_dir / segment_name(seg)
        result, data = scan_segment(path, seg, seq_hi=None if last else segs[k + 1] - 1, torn_ok=last)
        magic_ok = data[:MAGIC_SIZE] in (MAGIC_V1, MAGIC_V2) or len(data) < MAGIC_SIZE
        out.append(SegmentCheck(seg, path, magic_ok, len(data), result, last))
    return out


def verify_report(wal_dir: Path) -> JsonObject:
    """Everything ``verify`` prints; ``exit_code`` 0 clean, 1 damage (or a repair cut short),
    3 only a torn tail or entries set aside earlier in quarantine."""
    checks = check(wal_dir)
    damage = [b for c in checks for b in c.scan.damage]
    torn = [c.scan.torn for c in checks if c.scan.torn is not None]
    quarantine = quarantine_contents(wal_dir / "quarantine")
    interrupted = (wal_dir / JOURNAL).exists()
    code = 1 if damage or interrupted else 3 if torn or quarantine else 0
    return {
        "wal_dir": str(wal_dir), "in_use": is_locked(wal_dir), "interrupted_repair": interrupted,
        "segments": [c.as_dict() for c in checks],
        "entries": sum(len(c.scan.entries) for c in checks),
        "damaged_spans": len(damage), "damaged_bytes": sum(b.size for b in damage),
        "torn_tail_bytes": sum(t.size for t in torn),
        "quarantine": quarantine, "exit_code": code,
    }


@dataclass
class RepairPlan:
    rewrites: list[SegmentCheck]  # segments with damage: rewritten without it
    truncations: list[SegmentCheck]  # the last segment, when a torn tail is all that is wrong with it

    @property
    def empty(self) -> bool:
        return not self.rewrites and not self.truncations

    def describe(self) -> list[str]:
        lines = []
        for c in self.rewrites:
            for b in c.scan.damage:
                lines.append(f"quarantine {c.path.name} offset {b.start}: {b.size} bytes "
                             f"(sequence numbers {_seqs(b.seq_first, b.seq_last)}): {b.reason}")
            lines.append(f"rewrite {c.path.name} with its {len(c.scan.entries)} valid entries")
        for c in self.truncations:
            t = c.scan.torn
            assert t is not None
            lines.append(f"truncate the torn tail of {c.path.name}: {t.size} bytes at offset {t.start} "
                         f"({t.reason})")
        return lines


def _seqs(first: int | None, last: int | None) -> str:
    if first is None:
        return "unknown"
    return str(first) if first == last else f"{first}-{'?' if last is None else last}"


def plan_repair(wal_dir: Path) -> RepairPlan:
    checks = check(wal_dir)
    rewrites = [c for c in checks if c.scan.damage or (not c.magic_ok and c.scan.entries)]
    truncations = [c for c in checks if c.scan.torn is not None and c not in rewrites]
    return RepairPlan(rewrites, truncations)


def repair(wal_dir: Path, progress_path: Path, plan: RepairPlan) -> list[str]:
    """Carry out ``plan`` (the caller holds the directory's lock); returns what was done."""
    done: list[str] = []
    quarantine = Quarantine(wal_dir / "quarantine")
    journal: JsonObject = {"segments": {}, "progress": None}
    maps: dict[int, tuple[list[tuple[int, int]], int]] = {}
    for c in plan.rewrites:
        data = c.path.read_bytes()
        for b in c.scan.damage:
            if b.start == 0 and b.size <= MAGIC_SIZE:
                continue  # a damaged magic is rewritten, not data
            if not quarantine.keep(c.first_seq, b, data[b.start:b.end], version=c.scan.version,
                                   found_by="repair"):
                raise RepairError(f"could not copy damaged bytes of {c.path.name} to {quarantine.directory}; "
                                  "nothing was changed")
            done.append(f"quarantined {c.path.name} offset {b.start} ({b.size} bytes, sequence numbers "
                        f"{_seqs(b.seq_first, b.seq_last)}): {b.reason}")
        parts = [MAGIC_V2 if c.scan.version == 2 else MAGIC_V1]
        pairs: list[tuple[int, int]] = []
        at = MAGIC_SIZE
        for e in c.scan.entries:
            pairs.append((e.start, at))
            parts.append(data[e.start:e.end])
            at += e.end - e.start
        maps[c.first_seq] = (pairs, at)
        tmp = c.path.with_name(c.path.name + ".repair")
        with open(tmp, "wb") as fh:
            fh.write(b"".join(parts))
            fh.flush()
            os.fsync(fh.fileno())
        journal["segments"][c.path.name] = {"old_bytes": c.size, "new_bytes": at}
        done.append(f"rewrote {c.path.name}: {len(c.scan.entries)} entries kept, {c.size - at} bytes removed")
        if c.scan.torn is not None:
            done.append(f"dropped a torn tail of {c.scan.torn.size} bytes from {c.path.name} "
                        "(never acknowledged)")
    if maps and progress_path.exists():
        journal["progress"] = _remapped(orjson.loads(progress_path.read_bytes()), maps)
        journal["progress_path"] = str(progress_path)
        done.append(f"moved the positions in {progress_path.name} to the rewritten segments")
    if maps:
        write_atomic(wal_dir / JOURNAL, orjson.dumps(journal))
        finish_interrupted(wal_dir)
    for c in plan.truncations:
        t = c.scan.torn
        assert t is not None
        os.truncate(c.path, t.start)
        done.append(f"truncated a torn tail of {t.size} bytes from {c.path.name} (never acknowledged)")
    return done


def finish_interrupted(wal_dir: Path) -> bool:
    """Complete a repair whose journal is still there (idempotent); True when there was one."""
    path = wal_dir / JOURNAL
    if not path.exists():
        for stray in wal_dir.glob("*.wal.repair"):  # a rewrite that died before its journal
            stray.unlink()
        return False
    journal = orjson.loads(path.read_bytes())
    for name in journal["segments"]:
        tmp = wal_dir / f"{name}.repair"
        if tmp.exists():
            os.replace(tmp, wal_dir / name)
    fsync_dir(wal_dir)
    if journal.get("progress") is not None:
        write_atomic(Path(journal["progress_path"]), orjson.dumps(journal["progress"]))
    path.unlink()
    fsync_dir(wal_dir)
    return True


def _remapped(progress: JsonObject, maps: dict[int, tuple[list[tuple[int, int]], int]]) -> JsonObject:
    """``batcher.json`` with its positions moved to where their entries are in the rewritten segments."""
    def move(pos: list[int]) -> list[int]:
        seg, off = pos
        if seg not in maps:
            return pos
        pairs, end = maps[seg]
        return [seg, next((new for old, new in pairs if old >= off), end)]

    out = dict(progress)
    if "done_pos" in out:
        out["done_pos"] = move(out["done_pos"])
    if out.get("intent"):
        first, last, start, end = out["intent"]
        out["intent"] = [first, last, move(start), move(end)]
    return out
