"""Fixtures for the sdk tests: an in-process sdk writing into a buffer, put back afterwards."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sdk_helpers import parse_lines

from logharbor import sdk


class Captured:
    """An sdk configured in this process, writing canonical lines into a string buffer."""

    def __init__(self, **options: Any) -> None:
        self.buffer = io.StringIO()
        options.setdefault("adopt_server_loggers", False)
        options.setdefault("output", self.buffer)
        self.handler = sdk.configure(**options)

    def records(self) -> list[dict[str, Any]]:
        assert self.handler.flush(10)
        return parse_lines(self.buffer.getvalue())


@pytest.fixture
def capture() -> Iterator[Callable[..., Captured]]:
    """``capture(service=…, …)`` configures the sdk; logging is put back as it was afterwards."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging._srcfile, logging.logThreads,  # type: ignore[attr-defined]
             logging.logProcesses, logging.logMultiprocessing)
    made: list[Captured] = []

    def make(**options: Any) -> Captured:
        made.append(Captured(**options))
        return made[-1]

    yield make
    sdk.shutdown()
    logging.setLoggerClass(logging.Logger)  # configure() installed the sdk's subclass
    sdk.unbind()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    logging._srcfile, logging.logThreads = saved[2], saved[3]  # type: ignore[attr-defined]
    logging.logProcesses, logging.logMultiprocessing = saved[4], saved[5]
