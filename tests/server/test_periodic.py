"""The housekeeping loop (retention mover, disk guard): a failing run does not end it, and stop
waits for the run in progress."""

from __future__ import annotations

import logging
import threading

import pytest

from logharbor.server.periodic import Periodic


def test_a_failing_run_is_logged_and_the_next_one_still_comes(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[int] = []
    third = threading.Event()

    def work() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("disk on fire")
        if len(runs) == 3:
            third.set()

    job = Periodic("test-job", work, lambda: 0.01, "test job")
    with caplog.at_level(logging.ERROR, logger="logharbor.server"):
        job.start()
        assert third.wait(30)
        job.stop()
    assert "test job failed; trying again next interval" in caplog.text and "disk on fire" in caplog.text
    count = len(runs)
    threading.Event().wait(0.05)
    assert len(runs) == count  # stopped means no more runs


def test_stop_waits_for_the_run_in_progress() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def work() -> None:
        started.set()
        release.wait(30)
        finished.set()

    job = Periodic("test-job", work, lambda: 3600.0, "test job")
    job.start()
    assert started.wait(30)
    stopper = threading.Thread(target=job.stop)
    stopper.start()
    stopper.join(0.1)
    assert stopper.is_alive() and not finished.is_set()
    release.set()
    stopper.join(30)
    assert finished.is_set() and not stopper.is_alive()
