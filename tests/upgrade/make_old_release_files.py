"""How ``old-release-files.tgz`` was made: every file format a server or an agent keeps between
runs, written by the writers of the release before text attributes (commit cd1aa9a), so that this
release's readers are tested on real old files (tests/upgrade/test_old_release_files.py)::

    git worktree add --detach /tmp/lh-old cd1aa9a
    PYTHONPATH=/tmp/lh-old/src:/tmp/lh-old python tests/upgrade/make_old_release_files.py OUT
    tar czf tests/upgrade/old-release-files.tgz -C OUT old

``manifest.json`` beside the files says what each holds. It cannot run with this release's code
(its row encoder is the old layout's: ``attributes`` as the JSON column's object and the
``attributes_exact`` patch).
"""

import json
import sys
from pathlib import Path

import yaml

from logharbor.agent.buffer.disk import DiskBuffer
from logharbor.agent.checkpoint import CheckpointStore, Entry
from logharbor.agent.types import Encoded
from logharbor.sealing import Sealer, generate_key_file
from logharbor.server.config import ServerConfig
from logharbor.server.engine.batcher_progress import BatcherProgress, save_progress
from logharbor.server.engine.mining import PatternMiner
from logharbor.server.engine.refused import RefusedRows
from logharbor.server.engine.store.rows import encode_record
from logharbor.server.engine.wal.catalog import WalPosition
from logharbor.server.engine.wal.log import WriteAheadLog
from logharbor.server.ingest.idempotency import EntryKey, KeyIndex, request_digest, request_fingerprint
from logharbor.server.meta.db import MetaStore
from logharbor.server.meta.keys import KeyStore

WRITTEN_S = 1_780_272_000  # the keys' write time (2026-06-01): the test's clock is set near it
out = Path(sys.argv[1]) / "old"
out.mkdir(parents=True)
manifest: dict = {"release": "cd1aa9a"}

# -- the server's WAL: old-layout store rows (patched values), entry keys; plain and sealed
records = [{"timestamp": WRITTEN_S * 10**9, "service": "old", "message": f"wal {i}", "v": value}
           for i, value in enumerate([13.0, -0.0, 1e20, None, 2**70, "plain"])]
batches = [b"\n".join(encode_record(r, received_ns=WRITTEN_S * 10**9) for r in records[:3]),
           b"\n".join(encode_record(r, received_ns=WRITTEN_S * 10**9) for r in records[3:])]
body = b"\n".join(json.dumps(r).encode() for r in records[:3])
key = EntryKey(WRITTEN_S, (request_digest("scope-a", "retry-1"), request_fingerprint("/api/v1/logs", body)))
generate_key_file(out / "secrets.key")
for name, sealer in (("wal", None), ("wal-sealed", Sealer.from_file(out / "secrets.key"))):
    wal = WriteAheadLog(out / name, fsync=False, sealer=sealer)
    wal.open()
    seqs = [wal.submit(batches[0], key=key.encode()).result(10), wal.submit(batches[1]).result(10)]
    wal.close()
manifest["wal"] = {"records": records, "seqs": seqs, "keyed_seq": seqs[0],
                   "request": {"scope": "scope-a", "key": "retry-1", "path": "/api/v1/logs", "body": body.decode()}}

# -- the batcher's progress (an insert under way, stored in halves), the refused rows it set aside
# (old-layout rows) and the pattern miner's journal and snapshot
save_progress(out / "batcher.json", BatcherProgress(2, WalPosition(1, 8), (3, 4, WalPosition(1, 8),
                                                                         WalPosition(1, 900)), True))
manifest["batcher"] = {"done_seq": 2, "done_pos": [1, 8], "intent": [3, 4, [1, 8], [1, 900]], "isolating": True}
kept = RefusedRows(out / "quarantine" / "refused").keep(
    "w-3-4", 3, 4, [(3, batches[1].split(b"\n")[0], "Code: 117."), (4, batches[1].split(b"\n")[1], "Code: 117.")])
manifest["refused"] = {"file": str(kept.relative_to(out)), "messages": ["wal 3", "wal 4"]}
miner = PatternMiner(out / "patterns", compact_ops=3)  # a snapshot and a journal after it
miner.load()
words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"]
others = [b"\n".join(encode_record({"timestamp": WRITTEN_S * 10**9, "service": "old",
                                     "message": f"{w} started job {i} on host h{i}"}, received_ns=WRITTEN_S * 10**9)
                       for i in range(3)) for w in words]
for batch in (*batches, *others, *batches):
    miner.process(batch)
    miner.commit()
manifest["patterns"] = json.loads(json.dumps(miner.miner.snapshot(), default=str))
miner.close()

# -- the idempotency keys kept after their WAL segments are released
index = KeyIndex(out / "idempotency.keys", window_s=86_400, max_keys=1000, clock=lambda: float(WRITTEN_S))
index.persist([(7, key.encode())])
manifest["idempotency"] = {"seq": 7}

# -- the agent's disk buffer (plain and sealed) and its file checkpoints
payloads = [b'{"message":"buffered 1","n":1}\n{"message":"buffered 2","n":2.50}\n', b'{"message":"buffered 3"}\n']
for name, sealer in (("buffer", None), ("buffer-sealed", Sealer.from_file(out / "secrets.key"))):
    buffer = DiskBuffer(out / name, 1 << 20, "block", sealer, sink="main")
    for payload in [b'{"message":"delivered before the upgrade"}\n', *payloads]:
        assert buffer.put(Encoded(payload, payload.count(b"\n"), None))
    first = buffer.get(1.0)
    assert first is not None and b"delivered before" in first.payload
    buffer.commit([first])  # delivered: its position is saved, it must not come again
    buffer.close()
manifest["buffer"] = {"payloads": [p.decode() for p in payloads]}
entries = [Entry(dev=2049, ino=1234, fp_len=64, fp_hash="ab" * 16, offset=4096, path="/var/log/app.log",
                 updated=float(WRITTEN_S), mark="cd" * 8),
           Entry(dev=2049, ino=99, fp_len=64, fp_hash="ef" * 16, offset=10, path="/var/log/old.log.gz",
                 updated=float(WRITTEN_S), ghost=True, gzip=True)]
assert CheckpointStore(out / "checkpoints.json").write(entries, looked_at=float(WRITTEN_S))
manifest["checkpoints"] = [e.__dict__ if hasattr(e, "__dict__") else {f: getattr(e, f) for f in e.__slots__}
                           for e in entries]

# -- the metadata database: an API key (its secret kept here to verify it)
meta = MetaStore.for_data_dir(out)
meta.create()
new = KeyStore(meta).create(role="writer", name="old key", tenant="t1", services=["old"])
meta.close()
manifest["key"] = {"secret": new.secret, "role": "writer", "tenant": "t1", "services": ["old"]}

# -- a server config file naming every option of that release (each at its default)
config = ServerConfig.load({}).model_dump(mode="json", exclude_none=True)
(out / "server.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
manifest["config_options"] = sorted(config)

(out / "manifest.json").write_text(json.dumps(manifest, indent=1, default=str))
print("written", sorted(p.name for p in out.iterdir()))
