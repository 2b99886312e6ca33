"""Before a start writes anything: every file it will read is of a format this release reads.

A start writes early (the metadata database's new tables, the store's migrations, the WAL's lock
and a new segment, the idempotency file's compaction), and each reader refuses a file of a newer
release only when it reaches it. A release rolled back onto a data directory a newer one used
would then have changed some files before refusing another. So every versioned file is looked at
here first, read-only, and the first of a newer format stops the start
(:class:`~logharbor.formatversion.NewerFormat`, naming the file, its version and the versions
read here) with every byte as it was. A batcher progress file that is damaged stops it here too,
before any write, as it would a moment later.
"""

from __future__ import annotations

from logharbor.sealing import Sealer
from logharbor.server.config import ServerConfig
from logharbor.server.engine.batcher_progress import stored_seq
from logharbor.server.engine.mining import PatternMiner
from logharbor.server.engine.wal.segments import check_versions
from logharbor.server.ingest.idempotency import KeyIndex
from logharbor.server.meta.db import MetaStore

__all__ = ["refuse_newer_files"]


def refuse_newer_files(config: ServerConfig, meta: MetaStore, sealer: Sealer | None) -> None:
    """Raise :class:`~logharbor.formatversion.NewerFormat` for the first file of a newer format."""
    check_versions(config.wal_dir)
    stored_seq(config.data_dir / "batcher.json")
    KeyIndex(config.data_dir / "idempotency.keys", window_s=1, max_keys=1).check_version()
    if config.patterns:
        PatternMiner(config.data_dir / "patterns", sealer=sealer).check_version()
    # last: opening SQLite may run its own recovery of a -wal file a kill left (the same rows)
    meta.check_schema()
