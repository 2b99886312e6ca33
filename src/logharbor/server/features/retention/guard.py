"""The disk guard: keeps the data directory under its size, and ingest answering 429 before it fills.

Every few seconds it measures the data directory (everything under it but the cold folder, which
is object storage even when it is a local path) and the free space of its filesystem:

* over ``max_bytes``: the lowest-priority rule's oldest hot (then warm) day moves to cold when the
  rule has a cold tier, or is deleted when it has none; one day per check, until under the limit;
* over ``max_bytes`` by ``reject_margin`` (10 %), or less than ``min_free_bytes`` free: ingest
  answers 429 with Retry-After (the ingestor asks :meth:`DiskGuard.refusal` before each WAL
  entry), so the WAL never meets a full disk.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from logharbor.server.features.retention.mover import SYSTEM_ACTOR, Mover
from logharbor.server.periodic import Periodic

__all__ = ["DiskGuard", "directory_bytes"]

log = logging.getLogger("logharbor.retention")


def directory_bytes(root: Path, exclude: Path | None = None, *more: Path) -> int:
    """Bytes of the files under ``root`` (allocated blocks), skipping ``exclude`` and ``more``."""
    total = 0
    skips = tuple(str(p.resolve()) for p in (exclude, *more) if p is not None)
    for dirpath, dirnames, filenames in os.walk(root):
        if skips and dirpath.startswith(skips):
            dirnames[:] = []
            continue
        for name in filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except FileNotFoundError:
                continue
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total


def store_bytes(mover: Mover) -> int:
    """Bytes of the store's active parts: what is left once replaced parts are cleaned up.

    Parts a delete or merge replaced stay on disk a few minutes; counting them would make the
    guard free day after day while it waits. The filesystem's free space still guards the disk.
    """
    return mover.tiers.active_bytes()


class DiskGuard:
    """Measures the data directory and frees it by the rules' priorities."""

    def __init__(self, data_dir: Path, mover: Mover | None, *, max_bytes: int | None,
                 min_free_bytes: int = 0, reject_margin: float = 0.10, exclude: Path | None = None,
                 interval_s: float = 5.0, measure: Callable[[], int] | None = None,
                 free: Callable[[], int] | None = None, store_dir: Path | None = None) -> None:
        self.data_dir = data_dir
        self.mover = mover
        self.max_bytes = max_bytes
        self.min_free_bytes = min_free_bytes
        self.reject_margin = reject_margin
        self.interval_s = interval_s
        if measure is None and store_dir is not None and mover is not None:
            def measure() -> int:  # files outside the store + the store's active parts
                return directory_bytes(data_dir, exclude, store_dir) + store_bytes(mover)
        self._measure = measure or (lambda: directory_bytes(data_dir, exclude))
        self._free = free or (lambda: shutil.disk_usage(data_dir).free)
        self.used_bytes = 0
        self.free_bytes = 0
        self.rejecting = False
        self.freed_rows = 0
        self._worker = Periodic("disk-guard", self.check, lambda: self.interval_s,
                                "disk guard check")

    def check(self) -> bool:
        """Measure, free one step if over the limit, and set :attr:`rejecting`; True when it freed."""
        self.free_bytes = self._free()
        if self.free_bytes < self.min_free_bytes:
            self.rejecting = True  # at once: measuring the store below may itself fail on a full disk
        self.used_bytes = self._measure()
        freed = False
        if self.max_bytes is not None and self.used_bytes > self.max_bytes and self.mover is not None:
            freed = self._relieve()
        hard = None if self.max_bytes is None else self.max_bytes * (1 + self.reject_margin)
        self.rejecting = bool((hard is not None and self.used_bytes > hard)
                              or self.free_bytes < self.min_free_bytes)
        return freed

    def refusal(self) -> str | None:
        """Why ingest must take no new WAL entry now (the answer's detail), or None."""
        if not self.rejecting:
            return None
        return (f"the data directory is over its size limit or short of free space "
                f"({self.used_bytes} bytes used, {self.free_bytes} bytes free); retry later")

    def _relieve(self) -> bool:
        assert self.mover is not None
        conditions = self.mover.policy.conditions()
        for rule, cond, params in sorted(conditions, key=lambda item: item[0].priority):
            if cond == "(0)":
                continue
            n = self.mover.relieve(rule, cond, params)
            if n:
                self.freed_rows += n
                log.warning("disk guard: data directory at %d bytes (limit %s); freed %d records of rule %s",
                            self.used_bytes, self.max_bytes, n, rule.name)
                if self.mover.audit is not None:
                    self.mover.audit(SYSTEM_ACTOR, "retention.relieve", rule.name,
                                     detail=f"{n} records freed: data directory at {self.used_bytes} bytes "
                                            f"(limit {self.max_bytes})")
                return True
        return False

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()

