"""A damaged WAL costs only the damaged entries, which are set aside; everything else is stored.

Fault: records are acknowledged (fsync'd in the WAL) while the batcher is paused, the server is
killed with ``kill -9`` so they are still only in the WAL, and then one bit is flipped in the
middle of the last segment and one in the middle of an older, sealed segment (bit rot, a bad
sector). The server restarts on the same data directory. What must hold, read back through the
real query API: every acknowledged record outside the two damaged entries is stored, once; the
records of the damaged entries are exactly those set aside in ``wal/quarantine/``; ``/metrics``,
``/readyz`` and ``logharbor wal verify`` say so; and the server goes on taking data.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally

from logharbor.framing import detect_version, scan

SERVICE = "walfault"
ALL_TIME = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
ROOT = Path(__file__).resolve().parents[2]
PAD = "p" * 480  # records of about 600 bytes: a few MiB fill several 1 MiB segments


def send(server: ServerProcess, first: int, count: int, per_request: int = 100) -> set[str]:
    """POST records ``first..first+count`` in requests of ``per_request``; the acknowledged ids."""
    acked: set[str] = set()
    with server.client(headers={"content-type": "application/x-ndjson"}) as client:
        for low in range(first, first + count, per_request):
            ids = [f"r{i:06d}" for i in range(low, min(low + per_request, first + count))]
            body = b"\n".join(orjson.dumps({"message": f"{SERVICE} {rid}", "service": SERVICE, "pad": PAD})
                              for rid in ids)
            response = client.post("/api/v1/logs", content=body)
            if response.status_code == 200 and response.json()["accepted"] == len(ids):
                acked.update(ids)
    return acked


def entries_of(segment: Path) -> list[tuple[int, int, set[str]]]:
    """(start, end, record ids) of each entry of an undamaged segment."""
    data = segment.read_bytes()
    version = detect_version(data)
    assert version is not None
    result = scan(data, version=version, prev_seq=int(segment.name[:-4]) - 1)
    assert not result.bad
    return [(e.start, e.end, {i.decode() for i in re.findall(rb"walfault (r\d{6})", data[e.payload_start:e.end])})
            for e in result.entries]


def flip_in_middle(segment: Path) -> tuple[set[str], bytes]:
    """Flip one bit in the middle of ``segment``; the ids of the entry it lands in, and its new bytes."""
    entries = entries_of(segment)
    data = bytearray(segment.read_bytes())
    middle = len(data) // 2
    data[middle] ^= 0x10
    segment.write_bytes(bytes(data))
    (hit,) = [(ids, bytes(data[start:end])) for start, end, ids in entries if start <= middle < end]
    return hit


def stored_ids(server: ServerProcess, expected: int, timeout: float = 60.0) -> list[str]:
    """Record ids in the store, once there are ``expected`` rows (or time is up)."""
    assert server.wait_rows(expected, timeout=timeout) >= expected, server.log()[-3000:]
    rows = server.query(f"service:{SERVICE} | fields message", limit=10_000, **ALL_TIME)["rows"]
    return [r["message"].split()[1] for r in rows]


def metric(server: ServerProcess, name: str) -> float:
    text = httpx.get(server.url + "/metrics", headers=server.headers, timeout=10).text
    (value,) = [line.split()[1] for line in text.splitlines() if line.startswith(name + " ")]
    return float(value)


def test_bit_flips_in_the_wal_cost_only_the_damaged_entries(server_factory) -> None:  # type: ignore[no-untyped-def]
    tally = Tally("wal-damage/bit-flips")
    server = server_factory("--pause-batcher", "--wal-segment-mb", "1")
    acked = send(server, 0, 6000)
    assert len(acked) == 6000, server.log()[-2000:]
    server.kill9()  # every record is acknowledged and only in the WAL

    wal_dir = server.data_dir / "wal"
    segments = sorted(wal_dir.glob("*.wal"))
    assert len(segments) >= 3, segments
    (last_ids, last_bytes), (old_ids, old_bytes) = flip_in_middle(segments[-1]), flip_in_middle(segments[0])
    damaged = last_ids | old_ids
    assert len(damaged) == 200, "each flip lands in one entry of 100 records"

    again = server_factory("--batch-max-age", "0.2", data_dir=server.data_dir)
    tally.ack(acked)
    stored = stored_ids(again, len(acked) - len(damaged))

    # new ingest goes on and is stored too
    more = send(again, 6000, 300)
    tally.ack(more)
    stored = stored_ids(again, len(acked) - len(damaged) + len(more))
    tally.saw(stored)

    quarantine = wal_dir / "quarantine"
    sidecars = [orjson.loads(p.read_bytes()) for p in sorted(quarantine.glob("*.json"))]
    assert tally.lost == damaged, (len(tally.lost), len(damaged))  # exactly the damaged entries
    # and they are in quarantine: the damaged entries' bytes, as they were on disk
    assert sorted(bad.read_bytes() for bad in quarantine.glob("*.bad")) == sorted([old_bytes, last_bytes])
    assert [s["segment"] for s in sidecars] == [segments[0].name, segments[-1].name]

    assert metric(again, "logharbor_wal_corrupt_entries_total") == 2
    assert metric(again, "logharbor_wal_quarantine_files") == 2
    ready = httpx.get(again.url + "/readyz", timeout=10)
    assert ready.status_code == 200  # it still takes and keeps data
    assert ready.json()["wal_damage"]["quarantine_files"] == 2
    assert "WAL damage" in again.log() and "offset" in again.log()

    verify = subprocess.run([sys.executable, "-m", "logharbor.cli.main", "wal", "verify", str(again.data_dir),
                             "--json"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    report = orjson.loads(verify.stdout)
    assert verify.returncode == 3 and report["in_use"] and len(report["quarantine"]) == 2

    tally.extra.update(acknowledged_total=len(tally.acknowledged), damaged_entries=2,
                       quarantined_records=len(damaged))
    tally.acknowledged -= damaged  # the promise: every acknowledged record outside a damaged entry
    tally.report()
