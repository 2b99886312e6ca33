"""An in-process file source with a controllable acknowledger, for fast deterministic tests.

``crash()`` stops the reading thread *without* the final checkpoint write, which is what a
``kill -9`` leaves behind: only the periodic checkpoints exist.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from logharbor.agent.sources.file import Config, FileSource
from logharbor.agent.types import Chunk


class Harness:
    """Runs a FileSource on ``include`` globs; collects emitted lines; acks now or on demand."""

    def __init__(self, data_dir: Path, include: list[str], auto_ack: bool = True, **options: Any) -> None:
        base: dict[str, Any] = {
            "type": "file", "include": include, "poll_interval_secs": 0.02, "glob_interval_secs": 0.05,
            "rotated_idle_secs": 0.3, "checkpoint_interval_secs": 0.05,
        }
        base.update(options)
        self.cfg = Config.model_validate(base)
        self.data_dir = data_dir
        self.auto_ack = auto_ack
        self.lines: list[str] = []
        self.held: list[Chunk] = []
        self.chunks: list[Chunk] = []  # every chunk emitted (for the fields a source adds)
        self.source: FileSource | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._open = threading.Event()  # cleared: the sink is full, the reader waits in emit
        self._open.set()

    def _emit(self, chunk: Chunk) -> None:
        while not self._open.wait(0.05):  # backpressure: wait here, as a full sink buffer does
            if self._stop.is_set():
                return
        self.lines.extend(chunk.lines)
        self.chunks.append(chunk)
        if self.auto_ack:
            chunk.ack.done()
        else:
            self.held.append(chunk)

    def pause(self) -> None:
        """The sink stops taking chunks: the reader blocks in its next emit (backpressure)."""
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def looks(self) -> int:
        """How many looks the watcher took so far."""
        assert self.source is not None
        return self.source.watcher.steps

    def wait_looks(self, n: int = 2, timeout: float = 10.0) -> bool:
        """Wait until the watcher looked ``n`` more times (whatever the reader is doing)."""
        target = self.looks() + n
        deadline = time.monotonic() + timeout
        while self.looks() < target and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.looks() >= target

    def start(self) -> Harness:
        self.lines, self.held, self.chunks = [], [], []
        self._stop = threading.Event()
        self.source = FileSource("t", self.cfg, self.data_dir, 1)
        self._thread = threading.Thread(target=self.source.run, args=(self._emit, self._stop), daemon=True)
        self._thread.start()
        return self

    def marked(self) -> list[tuple[str, dict[str, Any]]]:
        """(line, the fields its chunk adds beyond the source's own) of every line shipped with
        ``truncated``, ``original_bytes`` or ``partial``."""
        keys = ("truncated", "original_bytes", "partial", "split")
        return [(line, {k: c.meta[k] for k in keys if k in c.meta})
                for c in self.chunks if any(k in c.meta for k in keys) for line in c.lines]

    def ack_all(self) -> None:
        for chunk in self.held:
            chunk.ack.done()
        self.held = []

    def checkpointed(self) -> bool:
        """Whether the checkpoint on disk holds every delivered offset the source knows of (the
        periodic write a process killed now would leave behind)."""
        assert self.source is not None
        with self.source.lock:
            want = sorted((t.dev, t.ino, t.acked_off) for t in (*self.source.live.values(), *self.source.dormant))
        got = sorted((e.dev, e.ino, e.offset) for e in self.source.store.load())
        return got == want

    def crash(self, *, checkpointed: bool = True) -> None:
        """Stop reading with no final checkpoint (as kill -9 would); by default once the periodic
        checkpoint caught up with what was delivered (as it does within one interval)."""
        if checkpointed:
            deadline = time.monotonic() + 10
            while not self.checkpointed() and time.monotonic() < deadline:
                time.sleep(0.01)
        self._stop.set()
        assert self._thread is not None
        self._thread.join(5)

    def stop(self) -> None:
        """A clean stop: final checkpoint written."""
        self.crash(checkpointed=False)
        assert self.source is not None
        self.source.close()

    def wait_lines(self, n: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.lines) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.lines) >= n

    def settle(self, seconds: float = 0.5) -> None:
        """Let a few polls, scans and checkpoint writes happen: as many looks of the watcher (each
        followed by its checkpoint write) as ``seconds`` hold on an idle machine — counted, not
        slept, so a loaded machine takes longer instead of seeing fewer."""
        looks = max(3, round(seconds / self.cfg.glob_interval_secs))
        assert self.wait_looks(looks, timeout=30 + 10 * seconds), "the watcher stopped looking"


def numbered(start: int, end: int, prefix: str = "line") -> str:
    """Lines ``prefix-000start`` … ``prefix-000(end-1)``, each with its newline."""
    return "".join(f"{prefix}-{i:07d} some payload to make the line longer\n" for i in range(start, end))


def expected(start: int, end: int, prefix: str = "line") -> list[str]:
    return numbered(start, end, prefix).splitlines()
