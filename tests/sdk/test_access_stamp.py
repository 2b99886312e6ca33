"""An access record's timestamp is the end of its duration (sdk/middleware.py ``STAMP_SLACK_S``).

The server's clock-skew estimate reads ``timestamp − duration_ms`` as when the request reached
the app. Under two test processes a descheduled app stamped its access records milliseconds after
reading the duration's end, and the estimate's interval missed a 40 ms skew (issue: CI under
``-n 2``). The delay is made real here: a record factory that sleeps before the record is stamped,
once, as a scheduler would."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from logharbor.sdk import middleware
from logharbor.server.features.traces.skew import APP_STAMP_SLACK_NS

DELAY_S = 0.02  # the descheduled moment, 200× the slack


class _Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def delayed_factory() -> Iterator[list[int]]:
    """The first record made sleeps before it is stamped; yields the count of records made."""
    made: list[int] = [0]
    plain = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        made[0] += 1
        if made[0] == 1:
            time.sleep(DELAY_S)
        return plain(*args, **kwargs)

    logging.setLogRecordFactory(factory)
    try:
        yield made
    finally:
        logging.setLogRecordFactory(plain)


def _start() -> tuple[float, float, float]:
    """A perf_counter reading and the wall-clock interval it was taken in (taken again when the
    two wall readings are far apart: this process was descheduled between them)."""
    while True:
        before = time.time()
        start = time.perf_counter()
        after = time.time()
        if after - before < 0.0001:
            return start, before, after


def test_the_stamp_is_taken_again_when_it_came_late(delayed_factory: list[int]) -> None:
    logger = logging.getLogger("test.access-stamp")
    logger.propagate = False
    keep = _Keep()
    logger.addHandler(keep)
    logger.setLevel(logging.INFO)
    try:
        start, before, after = _start()
        time.sleep(0.005)  # the request
        http = {"method": "GET", "path": "/x", "status": 200, "duration_ms": 0.0, "bytes_sent": 2}
        middleware._log_access(http, logger, None, start)  # type: ignore[arg-type]
    finally:
        logger.removeHandler(keep)
    assert delayed_factory[0] >= 2  # the late stamp was thrown away
    [record] = keep.records
    began = record.created - record.http["duration_ms"] / 1000  # type: ignore[attr-defined]
    # the request reached the app in [before, after]; stamp − duration lies there, up to the slack
    # (and the µs the duration is rounded to); the late stamp would put it DELAY_S later
    assert before - 1e-6 <= began <= after + middleware.STAMP_SLACK_S + 1e-6, (began - before, after - before)


def test_the_estimator_allows_the_sdk_slack() -> None:
    assert round(middleware.STAMP_SLACK_S * 10**9) == APP_STAMP_SLACK_NS
