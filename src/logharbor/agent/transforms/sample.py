"""Keep a fraction of records per level (``sample``), consistently by trace id.

``rates`` maps a level (TRACE … FATAL) to the fraction kept; levels not listed are all kept.
Records that share a trace id are kept or dropped together (the decision is a hash of the id),
so a sampled request still shows every line of every layer. Records without a key field are
sampled at random.
"""

from __future__ import annotations

import random
import zlib
from typing import Literal

from pydantic import Field, field_validator

from logharbor.agent import telemetry
from logharbor.agent.transforms.common import TransformConfig, field_value, records_of
from logharbor.agent.types import Chunk
from logharbor.record import LEVELS, level_of, normalize_level

__all__ = ["Config", "Sample"]


class Config(TransformConfig):
    """Options of ``sample``."""

    type: Literal["sample"]
    rates: dict[str, float] = Field(min_length=1)
    key_field: str = "trace_id"
    default_level: str = "INFO"

    @field_validator("rates")
    @classmethod
    def _rates(cls, value: dict[str, float]) -> dict[str, float]:
        out = {}
        for level, rate in value.items():
            name = normalize_level(level)
            if name is None:
                raise ValueError(f"unknown level {level!r} (use one of {', '.join(LEVELS)})")
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"rate for {level} must be between 0 and 1, got {rate}")
            out[name] = rate
        return out


class Sample:
    """The ``sample`` transform."""

    def __init__(self, cfg: Config) -> None:
        self.rates = cfg.rates
        self.key = cfg.key_field
        self.default = normalize_level(cfg.default_level) or "INFO"
        self._rng = random.Random()  # noqa: S311 - sampling, not secrecy
        self._filtered = telemetry.METRICS.filtered.labels("sample")

    def keep(self, level: str, key: object) -> bool:
        """Whether a record of ``level`` whose key field is ``key`` is kept."""
        rate = self.rates.get(level, 1.0)
        if rate >= 1.0:
            return True
        if key:
            return zlib.crc32(str(key).encode()) / 0xFFFFFFFF < rate
        return self._rng.random() < rate

    def __call__(self, chunk: Chunk) -> Chunk:
        if chunk.records is None and self.default not in self.rates and "level" not in chunk.meta:
            return chunk  # raw lines have no level of their own: the default level is kept
        records = records_of(chunk)
        kept = []
        for r in records:
            # read as the server will: any level key, a logger's own (@l, levelname, PRIORITY…),
            # pino's numbers; else the level the source's meta gives, else the default
            level = level_of(r)
            if level is None:
                raw = chunk.meta.get("level")
                level = (normalize_level(raw) if raw is not None else None) or self.default
            if self.keep(level, field_value(r, chunk.meta, self.key)):
                kept.append(r)
        if len(kept) != len(records):
            self._filtered.inc(len(records) - len(kept))
        chunk.records = kept
        return chunk
