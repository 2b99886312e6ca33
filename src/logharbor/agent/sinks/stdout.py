"""Write records to the agent's standard output as NDJSON: for debugging a pipeline, or for
a sidecar whose stdout another collector already reads."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, BinaryIO, Literal

from logharbor.agent.sinks.base import BufferedSink, SinkConfig
from logharbor.agent.types import Buffer, Retriable
from logharbor.types import JsonObject

__all__ = ["Config", "StdoutSink"]


class Config(SinkConfig):
    """Options of the ``stdout`` sink (batching and buffering only)."""

    type: Literal["stdout"]


class StdoutSink(BufferedSink):
    """The ``stdout`` sink; a batch is acknowledged once written and flushed."""

    def __init__(self, name: str, cfg: Config, data_dir: Path, stream: BinaryIO | None = None, *,
                 buffer: Buffer | None = None) -> None:
        super().__init__(name, cfg, data_dir, buffer=buffer)
        self.stream = stream or sys.stdout.buffer

    def _workers(self, cfg: SinkConfig) -> int:
        return 1  # one writer keeps the output in order

    def send(self, payload: bytes, count: int, key: str, context: Any = None) -> list[JsonObject]:
        try:
            self.stream.write(payload)
            self.stream.flush()
        except OSError as exc:
            raise Retriable(f"stdout: {exc}") from None
        return []
