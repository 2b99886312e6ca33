"""How ``newer-release-files.tgz`` was made: every versioned file a server or an agent keeps
between runs, as a *newer* release would leave it for this one after a rollback. Each is written
by this release's own writer and then given a format version beyond what this release reads, the
way a newer writer would write it: a segment's magic (``LHWAL03``, ``LHBUF03``), a ``version``
member (with the agent's CRC made again over it), an idempotency record's version byte (with its
CRC made again), the metadata database's ``logharbor_schema`` row (the table this release adds).
tests/upgrade/test_newer_release_files.py checks that each is refused, named, and left byte for
byte as it was::

    PYTHONPATH=src python tests/upgrade/make_newer_release_files.py OUT
    tar czf tests/upgrade/newer-release-files.tgz -C OUT newer

``manifest.json`` beside the files says what each is and the version it carries.
"""

import json
import sys
import zlib
from pathlib import Path

import orjson
from sqlalchemy import text

from logharbor.agent import statefile
from logharbor.agent.buffer.disk import DiskBuffer
from logharbor.agent.checkpoint import CheckpointStore, Entry
from logharbor.agent.types import Encoded
from logharbor.sealing import Sealer, generate_key_file
from logharbor.server.engine.batcher_progress import BatcherProgress, save_progress
from logharbor.server.engine.mining import PatternMiner
from logharbor.server.engine.store.rows import encode_record
from logharbor.server.engine.wal.catalog import WalPosition
from logharbor.server.engine.wal.log import WriteAheadLog
from logharbor.server.ingest.idempotency import EntryKey, request_digest, request_fingerprint
from logharbor.server.meta.db import MetaStore
from logharbor.server.meta.keys import KeyStore

WRITTEN_S = 1_780_272_000
out = Path(sys.argv[1]) / "newer"
out.mkdir(parents=True)
manifest: dict = {}


def bump_magic(path: Path, magic: bytes) -> None:
    data = path.read_bytes()
    path.write_bytes(magic + data[len(magic):])


# -- the server's WAL, plain and sealed: segments of a format after LHWAL02
records = [{"timestamp": WRITTEN_S * 10**9, "service": "newer", "message": f"wal {i}"} for i in range(4)]
batches = [b"\n".join(encode_record(r, received_ns=WRITTEN_S * 10**9) for r in records[:2]),
           b"\n".join(encode_record(r, received_ns=WRITTEN_S * 10**9) for r in records[2:])]
key = EntryKey(WRITTEN_S, (request_digest("scope-a", "retry-1"), request_fingerprint("/api/v1/logs", b"{}")))
generate_key_file(out / "secrets.key")
for name, sealer in (("wal", None), ("wal-sealed", Sealer.from_file(out / "secrets.key"))):
    wal = WriteAheadLog(out / name / "wal", fsync=False, sealer=sealer)
    wal.open()
    wal.submit(batches[0], key=key.encode()).result(10)
    wal.submit(batches[1]).result(10)
    wal.close()
    (segment,) = (out / name / "wal").glob("*.wal")
    bump_magic(segment, b"LHWAL03\n")
manifest["wal"] = {"version": "LHWAL03", "data_dirs": ["wal", "wal-sealed"]}

# -- the batcher's progress: version 2
(out / "batcher").mkdir()
save_progress(out / "batcher" / "batcher.json", BatcherProgress(2, WalPosition(1, 8)))
body = orjson.loads((out / "batcher" / "batcher.json").read_bytes())
(out / "batcher" / "batcher.json").write_bytes(orjson.dumps({**body, "version": 2}))
manifest["batcher"] = {"version": 2, "file": "batcher/batcher.json"}

# -- the idempotency keys: a record of this release, then one whose key is version 2 (CRC holds)
current = key.encode()
newer = bytes([2]) + current[1:]
(out / "idempotency").mkdir()
(out / "idempotency" / "idempotency.keys").write_bytes(b"".join(
    len(raw).to_bytes(1, "big") + zlib.crc32(raw).to_bytes(4, "big") + raw for raw in (current, newer)))
manifest["idempotency"] = {"version": 2, "file": "idempotency/idempotency.keys"}

# -- the pattern miner: a snapshot of version 3; a journal with a change of a kind not known here
miner = PatternMiner(out / "patterns" / "patterns", compact_ops=1)
miner.load()
for batch in batches:
    miner.process(batch)
    miner.commit()
miner.compact()
miner.close()
snapshot = out / "patterns" / "patterns" / "miner.json"
snapshot.write_bytes(orjson.dumps({**orjson.loads(snapshot.read_bytes()), "version": 3}))
miner = PatternMiner(out / "patterns-journal" / "patterns")  # no snapshot: the journal alone
miner.load()
for batch in batches:
    miner.process(batch)
    miner.commit()
miner.close()
with open(out / "patterns-journal" / "patterns" / "journal.ndjson", "ab") as fh:
    fh.write(orjson.dumps({"g": miner.generation + 1, "ops": [["M", "default", "newer", {"merged": True}]]}) + b"\n")
manifest["patterns"] = {"snapshot_version": 3, "journal_op": "M",
                        "data_dirs": ["patterns", "patterns-journal"]}

# -- the metadata database: schema 2, readable from 2 (refused); and schema 2 readable from 1
# with a table and a column of its own (used as it is, never altered)
for name, readable_from in (("meta", 2), ("meta-readable", 1)):
    meta = MetaStore.for_data_dir(out / name)
    meta.create()
    KeyStore(meta).create(role="writer", name="newer key")
    with meta.engine.begin() as conn:
        conn.execute(text("UPDATE logharbor_schema SET version = 2, readable_from = :r"), {"r": readable_from})
        conn.execute(text("CREATE TABLE newer_things (id INTEGER PRIMARY KEY, what TEXT)"))
        conn.execute(text("ALTER TABLE api_keys ADD COLUMN newer_column TEXT"))
    meta.scrub()  # everything in meta.db itself, no -wal file beside it
    meta.close()
manifest["meta"] = {"refused": {"version": 2, "readable_from": 2, "file": "meta/meta.db"},
                    "readable": {"version": 2, "readable_from": 1, "file": "meta-readable/meta.db"}}

# -- the agent's disk buffer, plain and sealed: segments of a format after LHBUF02; and one whose
# segments are of this format but whose ack.json is version 2
payloads = [b'{"message":"buffered 1"}\n', b'{"message":"buffered 2"}\n']
for name, sealer in (("buffer", None), ("buffer-sealed", Sealer.from_file(out / "secrets.key")),
                     ("buffer-ack", None)):
    buffer = DiskBuffer(out / name / "buffer" / "main", 1 << 20, "block", sealer, sink="main")
    for payload in payloads:
        assert buffer.put(Encoded(payload, 1, None))
    first = buffer.get(1.0)
    assert first is not None
    buffer.commit([first])
    buffer.close()
    if name == "buffer-ack":
        ack = out / name / "buffer" / "main" / "ack.json"
        statefile.write(ack, {**statefile.parse(ack.read_bytes()), "version": 2})
        ack.with_name("ack.json.prev").unlink(missing_ok=True)
    else:
        for segment in (out / name / "buffer" / "main").glob("*.lhb"):
            bump_magic(segment, b"LHBUF03\n")
manifest["buffer"] = {"segment_version": "LHBUF03", "ack_version": 2,
                      "data_dirs": ["buffer", "buffer-sealed", "buffer-ack"], "sink": "main"}

# -- the file source's checkpoint (version 3) and the ALB read-set (version 3), CRCs made again
store = CheckpointStore(out / "checkpoints" / "checkpoints" / "app.json")
store.path.parent.mkdir(parents=True)
assert store.write([Entry(dev=2049, ino=1234, fp_len=64, fp_hash="ab" * 16, offset=4096, path="/var/log/app.log",
                          updated=float(WRITTEN_S), mark="cd" * 8)], looked_at=float(WRITTEN_S))
statefile.write(store.path, {**statefile.parse(store.path.read_bytes()), "version": 3})
store.path.with_name("app.json.prev").unlink(missing_ok=True)
(out / "alb").mkdir()
statefile.write(out / "alb" / "lb.alb.json", {"version": 3, "objects": {"k": ["etag", "2026-06-01"]},
                                              "partial": {}})
manifest["checkpoints"] = {"version": 3, "file": "checkpoints/checkpoints/app.json", "source": "app"}
manifest["alb"] = {"version": 3, "file": "alb/lb.alb.json", "source": "lb"}

(out / "manifest.json").write_text(json.dumps(manifest, indent=1))
print("written", sorted(p.name for p in out.iterdir()))
