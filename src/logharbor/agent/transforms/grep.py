"""Keep or drop records by regular expressions on their fields (``grep``).

A record passes when its fields match the ``include`` patterns (all of them, or any with
``mode: any``) and none of the ``exclude`` patterns. A missing field never matches. On raw
lines, patterns on ``message`` run on the lines directly, without building records.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from logharbor.agent import telemetry
from logharbor.agent.transforms.common import TransformConfig, field_value, records_of
from logharbor.agent.types import Chunk
from logharbor.types import RawRecord

__all__ = ["Config", "Grep"]


class Config(TransformConfig):
    """Options of ``grep``: field name (or dotted path) → regular expression."""

    type: Literal["grep"]
    include: dict[str, str] = Field(default_factory=dict)
    exclude: dict[str, str] = Field(default_factory=dict)
    mode: Literal["all", "any"] = "all"

    @field_validator("include", "exclude")
    @classmethod
    def _compile(cls, value: dict[str, str]) -> dict[str, str]:
        for key, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{key}: regex {pattern!r} does not compile: {exc}") from None
        return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


class Grep:
    """The ``grep`` transform."""

    def __init__(self, cfg: Config) -> None:
        self.include = [(k, re.compile(p)) for k, p in cfg.include.items()]
        self.exclude = [(k, re.compile(p)) for k, p in cfg.exclude.items()]
        self.any = cfg.mode == "any"
        self._filtered = telemetry.METRICS.filtered.labels("grep")

    def keep(self, record: RawRecord, meta: RawRecord) -> bool:
        """Whether one record passes."""
        if self.include:
            hits = (_matches(rx, _text(field_value(record, meta, k))) for k, rx in self.include)
            if not (any(hits) if self.any else all(hits)):
                return False
        return not any(_matches(rx, _text(field_value(record, meta, k))) for k, rx in self.exclude)

    def __call__(self, chunk: Chunk) -> Chunk:
        before = len(chunk.records) if chunk.records is not None else len(chunk.lines)
        only_message = all(k == "message" for k, _ in (*self.include, *self.exclude))
        if chunk.records is None and only_message and "message" not in chunk.meta:
            chunk.lines = [line for line in chunk.lines if self.keep({"message": line}, {})]
            after = len(chunk.lines)
        else:
            chunk.records = [r for r in records_of(chunk) if self.keep(r, chunk.meta)]
            after = len(chunk.records)
        if before != after:
            self._filtered.inc(before - after)
        return chunk


def _matches(rx: re.Pattern[str], text: str | None) -> bool:
    return text is not None and rx.search(text) is not None
