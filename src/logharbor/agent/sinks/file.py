"""Append records to a local file as NDJSON, fsync'd before the batch is acknowledged.

Useful as an archive next to the server, or to hand logs to a tool that reads files. The file is
reopened when it was renamed or deleted (so logrotate works on it too).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Literal

from logharbor.agent.sinks.base import BufferedSink, SinkConfig
from logharbor.agent.types import Buffer, Retriable
from logharbor.types import JsonObject

__all__ = ["Config", "FileSink"]


class Config(SinkConfig):
    """Options of the ``file`` sink."""

    type: Literal["file"]
    path: Path
    fsync: bool = True


class FileSink(BufferedSink):
    """The ``file`` sink."""

    def __init__(self, name: str, cfg: Config, data_dir: Path, *, buffer: Buffer | None = None) -> None:
        super().__init__(name, cfg, data_dir, buffer=buffer)
        self.path = cfg.path
        self.fsync = cfg.fsync
        self._fd: int | None = None
        self._id: tuple[int, int] | None = None

    def _open(self) -> int:
        try:
            st = os.stat(self.path)
            current: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except FileNotFoundError:
            current = None
        if self._fd is not None and current != self._id:  # rotated away under us
            os.close(self._fd)
            self._fd = None
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            st = os.fstat(self._fd)
            self._id = (st.st_dev, st.st_ino)
        return self._fd

    def _workers(self, cfg: SinkConfig) -> int:
        return 1  # one writer keeps the output in order

    def send(self, payload: bytes, count: int, key: str, context: Any = None) -> list[JsonObject]:
        start: int | None = None
        try:
            fd = self._open()
            start = os.fstat(fd).st_size  # appends go here (O_APPEND, one writer)
            view = memoryview(payload)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            if self.fsync:
                os.fsync(fd)
        except OSError as exc:
            if self._fd is not None:
                if start is not None:
                    # a write cut short (a full disk) left part of the batch and half a record; the
                    # retry writes the whole batch again after it: the half record glued to the
                    # retry's first one made one line of neither, and the part before came twice
                    with contextlib.suppress(OSError):
                        os.ftruncate(self._fd, start)
                os.close(self._fd)
                self._fd = None
            raise Retriable(f"{self.path}: {exc.strerror or exc}") from None
        return []

    def _closed(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
