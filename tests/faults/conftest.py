"""Shared pieces of the fault-injection suite (tests/faults/).

Every test here injects one fault (a full disk, a damaged file, a kill -9, a rotation at the worst
moment, a late object, an odd encoding) while clients send records with unique ids, then counts:
how many were *acknowledged*, how many are *stored* (read back through a real query), how many
acknowledged ones are *lost* and how many are stored more than once (*duplicated*). A test fails on
any loss; duplicates are allowed only where the promise is at-least-once, and the test says so.

Each tally is printed as one JSON line (``FAULT {...}``) and appended to
``test-artifacts/faults.ndjson``, so a CI log and the closing note can quote the figures.
"""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"


@dataclass
class Tally:
    """Acknowledged vs stored ids of one fault run."""

    fault: str
    acknowledged: set[str] = field(default_factory=set)
    stored: Counter[str] = field(default_factory=Counter)
    extra: dict[str, object] = field(default_factory=dict)
    #: ids acknowledged and kept aside rather than stored (rows the store refused, in the WAL's
    #: quarantine): not lost, yet not stored either, so counted apart from ``stored``
    set_aside: Counter[str] = field(default_factory=Counter)

    def ack(self, ids: Iterable[str]) -> None:
        self.acknowledged.update(ids)

    def saw(self, ids: Iterable[str]) -> None:
        """Ids read back from the store (a repeated id is a duplicate)."""
        self.stored.update(ids)

    def kept_aside(self, ids: Iterable[str]) -> None:
        """Ids found set aside instead of stored (a refused row in the quarantine)."""
        self.set_aside.update(ids)

    @property
    def lost(self) -> set[str]:
        return {i for i in self.acknowledged if i not in self.stored and i not in self.set_aside}

    @property
    def duplicated(self) -> int:
        """Ids stored more than once, or both stored and set aside (a requeue would store it again)."""
        both = self.stored + self.set_aside
        return sum(n - 1 for n in both.values() if n > 1)

    def figures(self) -> dict[str, object]:
        aside = {"set_aside": sum(self.set_aside.values())} if self.set_aside else {}
        return {"fault": self.fault, "acknowledged": len(self.acknowledged),
                "stored": sum(self.stored.values()), "distinct_stored": len(self.stored), **aside,
                "lost": len(self.lost), "duplicated": self.duplicated, **self.extra}

    def report(self, *, allow_duplicates: bool = False) -> dict[str, object]:
        """Print and record the figures, then fail on any loss (and on duplicates unless allowed)."""
        figures = self.figures()
        line = orjson.dumps(figures).decode()
        print("FAULT " + line)
        ARTIFACTS.mkdir(exist_ok=True)
        # one write(2) on an O_APPEND file: lines of tests running at once (pytest -n) never interleave
        fd = os.open(ARTIFACTS / "faults.ndjson", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
        lost = sorted(self.lost)
        assert not lost, f"{self.fault}: {len(lost)} acknowledged records lost, e.g. {lost[:5]}"
        if not allow_duplicates:
            assert self.duplicated == 0, f"{self.fault}: {self.duplicated} records stored twice"
        return figures


def fault_seed() -> tuple[int, random.Random]:
    """The seed of a randomized fault schedule (``LOGHARBOR_FAULT_SEED=n`` replays one), printed,
    and a generator drawn from it."""
    seed = int(os.environ.get("LOGHARBOR_FAULT_SEED", random.randrange(1 << 30)))
    print(f"\nseed {seed} (LOGHARBOR_FAULT_SEED={seed} replays this schedule)")
    return seed, random.Random(seed)


@pytest.fixture
def small_fs(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A real small filesystem (tmpfs, 64 MiB unless parametrized indirectly with a size such as
    ``"160m"``) mounted for the test; skipped when not root.

    Tests fill it with a ballast file (``fill_to``) and free it again to make ENOSPC happen where
    the code under test writes, not in the test's own set-up.
    """
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    size = getattr(request, "param", "64m")
    mount = tmp_path / "small-fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_to(mount: Path, free_bytes: int, name: str = "ballast") -> Path:
    """Grow a ballast file on ``mount`` until only about ``free_bytes`` are left; returns it."""
    ballast = mount / name
    st = os.statvfs(mount)
    free = st.f_bavail * st.f_frsize
    grow = max(0, free - free_bytes)
    with ballast.open("ab") as fh:
        chunk = b"\0" * (1 << 20)
        while grow > 0:
            try:
                fh.write(chunk[: min(len(chunk), grow)])
                fh.flush()
            except OSError:
                break
            grow -= min(len(chunk), grow)
    return ballast


def wait_for(what: str, check: Callable[[], bool], timeout: float = 120.0, interval: float = 0.05) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` after ``timeout`` seconds (the fault
    tests wait on conditions, never on sleeps, and must pass on a loaded machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
