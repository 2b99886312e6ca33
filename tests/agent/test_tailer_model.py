"""A model test of the file tailer: hypothesis plays random sequences of what happens to a log
file — lines written, rename rotations, copytruncates, rotated files deleted, the sink paused
(the reader stops: backpressure) and resumed, the agent restarted (cleanly, or killed with only
its periodic checkpoint left) — against a real :class:`FileSource` on real files, and checks the
promise against a model of what was written:

- every line written is delivered at least once, and
- per file content (a generation: what one file held between two rotations), lines are first
  delivered in the order they were written.

The source is stepped by hand (a look of the watcher, a round of the reader, a checkpoint), so
each run is deterministic and hypothesis can shrink a failure to its shortest story. Only two
losses are allowed, and only because nothing can prevent them: a rotated file deleted before the
watcher ever looked at it (it never had it open), and a deleted file whose descriptor went with
the process (a crash or a stop) before it was all delivered.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from tests.agent.conftest import FULL
from tests.conftest import examples

from logharbor.agent.sources.file import Config, FileSource
from logharbor.agent.types import Chunk


@dataclass
class Generation:
    """What one file content held: its lines in order, and what happened to it."""

    gid: int
    lines: list[str] = field(default_factory=list)
    path: str | None = None  # where it is now (None: deleted)
    looked: bool = False  # a look of a running agent happened while it was on disk
    lost_ok: bool = False  # deleted when no running agent could hold it: loss is inherent


def line(gid: int, i: int) -> str:
    return f"g{gid:04d} n{i:06d} " + "x" * 80


class TailerModel(RuleBasedStateMachine):
    """The world (a directory, a writer, logrotate, a sink) and the agent, stepped by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="tailer-model-"))
        self.dir = self.tmp / "logs"
        self.dir.mkdir()
        self.log = self.dir / "app.log"
        self.log.touch()
        self.gens = [Generation(0, path=str(self.log))]
        self.current = self.gens[0]
        self.delivered: list[str] = []
        self.held: list[Chunk] = []
        self.paused = False
        self.cfg = Config.model_validate({
            "type": "file", "include": [str(self.log)], "read_block_bytes": 4096,
            "rotated_idle_secs": 0, "poll_interval_secs": 0.01, "glob_interval_secs": 0.01})
        self.source = self._start()

    # -- the agent ----------------------------------------------------------------------------

    def _start(self) -> FileSource:
        src = FileSource("model", self.cfg, self.tmp / "data", 1)
        src.start()
        self._looked()
        return src

    def _emit(self, chunk: Chunk) -> None:
        self.delivered.extend(chunk.lines)
        if self.paused:
            self.held.append(chunk)
        else:
            chunk.ack.done()

    def _looked(self) -> None:
        for g in self.gens:
            if g.path is not None:
                g.looked = True

    def _crash(self) -> None:
        """The process is gone: descriptors closed, no final checkpoint, acks in flight lost."""
        src = self.source
        with src.lock:
            for t in (*src.live.values(), *src.dormant):
                if t.fd is not None:
                    os.close(t.fd)
                    t.fd = None
        self.held = []  # never acknowledged: read again after the restart
        for g in self.gens:
            if g.path is None:
                g.lost_ok = True  # only the crashed process held it

    # -- the writer and logrotate --------------------------------------------------------------

    @rule(n=st.integers(min_value=1, max_value=120))
    def write(self, n: int) -> None:
        g = self.current
        start = len(g.lines)
        new = [line(g.gid, i) for i in range(start, start + n)]
        with open(self.log, "a") as fh:
            fh.write("".join(x + "\n" for x in new))
        g.lines.extend(new)

    def _shift(self) -> None:
        """logrotate's numbering: app.log.N → app.log.N+1, highest first."""
        rotated = sorted((g for g in self.gens if g.path and g.path != str(self.log)),
                         key=lambda g: -int(str(g.path).rsplit(".", 1)[1]))
        for g in rotated:
            n = int(str(g.path).rsplit(".", 1)[1])
            target = f"{self.log}.{n + 1}"
            os.rename(str(g.path), target)
            g.path = target

    def _new_generation(self) -> None:
        g = Generation(len(self.gens), path=str(self.log))
        self.gens.append(g)
        self.current = g

    @rule()
    def rename_rotate(self) -> None:
        self._shift()
        os.rename(self.log, f"{self.log}.1")
        self.current.path = f"{self.log}.1"
        self.current.looked = False  # under its new name, not looked at yet
        self.log.touch()
        self._new_generation()

    @rule()
    def copytruncate(self) -> None:
        self._shift()
        shutil.copyfile(self.log, f"{self.log}.1")
        os.truncate(self.log, 0)
        self.current.path = f"{self.log}.1"
        self.current.looked = False
        self._new_generation()

    @precondition(lambda self: any(g.path and g.path != str(self.log) for g in self.gens))
    @rule()
    def delete_oldest_rotated(self) -> None:
        rotated = [g for g in self.gens if g.path and g.path != str(self.log)]
        g = max(rotated, key=lambda g: int(str(g.path).rsplit(".", 1)[1]))
        os.unlink(str(g.path))
        g.path = None
        if not g.looked:
            g.lost_ok = True  # gone before any look: nobody could have opened it

    # -- the sink ------------------------------------------------------------------------------

    @precondition(lambda self: not self.paused)
    @rule()
    def pause_sink(self) -> None:
        self.paused = True

    @precondition(lambda self: self.paused)
    @rule()
    def resume_sink(self) -> None:
        self.paused = False
        for chunk in self.held:
            chunk.ack.done()
        self.held = []

    # -- the agent's own steps -----------------------------------------------------------------

    @rule()
    def look(self) -> None:
        self.source.watcher.step()
        self._looked()

    @precondition(lambda self: not self.paused)
    @rule()
    def read(self) -> None:
        self.source.read_round(self._emit)

    @rule()
    def checkpoint(self) -> None:
        self.source.write_checkpoint()

    @rule()
    def kill9_and_restart(self) -> None:
        self._crash()
        self.source = self._start()

    @rule()
    def stop_and_restart(self) -> None:
        # a clean stop: the sink delivers what it holds, then the final checkpoint
        for chunk in self.held:
            chunk.ack.done()
        self.held = []
        self.source.close()
        for g in self.gens:
            if g.path is None:
                g.lost_ok = True  # deleted: only the stopped process could still read it
        self.source = self._start()

    # -- the promise ---------------------------------------------------------------------------

    @invariant()
    def first_deliveries_in_order(self) -> None:
        last: dict[str, int] = {}
        seen: set[str] = set()
        for x in self.delivered:
            if x in seen:
                continue
            seen.add(x)
            gid, n = x[:5], int(x[7:13])
            assert n > last.get(gid, -1), f"{x[:13]} delivered before an earlier line of its file"
            last[gid] = n

    def teardown(self) -> None:
        try:
            self.paused = False
            for chunk in self.held:
                chunk.ack.done()
            self.held = []
            quiet = 0
            for _ in range(400):  # look and read until nothing moves any more
                before = len(self.delivered)
                self.source.watcher.step()
                self._looked()
                self.source.read_round(self._emit)
                quiet = quiet + 1 if len(self.delivered) == before else 0
                if quiet >= 5:
                    break
            got = set(self.delivered)
            for g in self.gens:
                if g.lost_ok:
                    continue
                missing = [x for x in g.lines if x not in got]
                assert not missing, (f"generation {g.gid} ({g.path}): {len(missing)} of {len(g.lines)} "
                                     f"lines never delivered, first {missing[0][:13]}")
            self.first_deliveries_in_order()
        finally:
            self._crash()
            shutil.rmtree(self.tmp, ignore_errors=True)


TailerModel.TestCase.settings = settings(
    max_examples=400 if FULL else examples(60), stateful_step_count=60 if FULL else 35, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
test_tailer_against_its_model = TailerModel.TestCase


def replay(*steps: tuple[str, dict[str, int]]) -> None:
    """Play one story against the model (the shortest stories hypothesis found, kept as
    regression tests: they run every time, whatever hypothesis explores)."""
    model = TailerModel()
    try:
        for name, kwargs in steps:
            getattr(model, name)(**kwargs)
            model.first_deliveries_in_order()
    finally:
        model.teardown()


def test_regression_written_and_copytruncated_between_two_looks_of_an_empty_file() -> None:
    # size and first bytes looked unchanged (it was empty, it is empty): only its time changed
    replay(("write", {"n": 1}), ("copytruncate", {}))


def test_regression_copytruncated_after_a_kill9_before_any_checkpoint() -> None:
    replay(("write", {"n": 1}), ("copytruncate", {}), ("kill9_and_restart", {}))


def test_regression_copytruncated_then_renamed_between_two_looks() -> None:
    # never seen truncated at its path: the renamed file is checked against what was read of it
    replay(("write", {"n": 50}), ("read", {}), ("copytruncate", {}), ("write", {"n": 80}),
           ("rename_rotate", {}), ("look", {}), ("read", {}))
    replay(("write", {"n": 1}), ("kill9_and_restart", {}), ("copytruncate", {}), ("rename_rotate", {}))
