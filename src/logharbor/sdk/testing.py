"""``capture_logs()``: the records your code logs, as canonical dicts, for your own tests.

Why: asserting on log output should not mean parsing stdout or racing the background thread.
Inside the block every record that reaches the root logger is also built synchronously by the
sdk's formatter (same fields, same masking and processors as the real output) and appended to a
list. The real output is unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from logharbor.sdk import configured
from logharbor.sdk.formatter import JSONFormatter
from logharbor.types import WireRecord

__all__ = ["capture_logs"]


class _CaptureHandler(logging.Handler):
    def __init__(self, formatter: JSONFormatter, into: list[WireRecord]) -> None:
        super().__init__()
        self.json = formatter
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        out = self.json.process(record)
        if out is not None:
            self.into.append(out)


@contextmanager
def capture_logs(level: int = logging.NOTSET) -> Iterator[list[WireRecord]]:
    """Collect the canonical records logged inside the ``with`` block::

        with sdk.capture_logs() as logs:
            checkout(order)
        assert logs[-1]["message"] == "order placed" and logs[-1]["order_id"] == "o-42"
    """
    handler = configured.current()
    formatter = handler.formatter if handler is not None else JSONFormatter()
    records: list[WireRecord] = []
    handler = _CaptureHandler(formatter, records)
    handler.setLevel(level)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)
