"""Sampling at the source: keep a fraction of each level, and whole requests rather than lines.

Why consistent by trace id: a request is only useful to read when all of its lines are there.
The decision for a record is ``bucket(trace_id) < rate[level]`` where the bucket is a number in
[0, 1] derived from the trace id (its CRC-32), so every line of one trace at one level is kept or
dropped together, in every process that sees the trace: another service on the sdk, and the
agent's ``sample`` transform, which uses the same function. With rates that grow with the
level (DEBUG ≤ INFO ≤ WARN …), a trace whose DEBUG lines were kept also has all its INFO lines.
Records without a trace id are sampled independently.

The check runs in the caller thread before anything is formatted, so a dropped record costs a
dictionary lookup and one comparison.
"""

from __future__ import annotations

import logging
import random
import zlib
from collections.abc import Mapping

from logharbor.record import LEVELS, normalize_level

__all__ = ["Sampler", "trace_bucket"]

def trace_bucket(trace_id: str) -> float:
    """Where a trace falls in [0, 1]: the CRC-32 of the id, scaled — the same function the
    agent's ``sample`` transform uses, so the app and the agent agree on every trace."""
    return zlib.crc32(trace_id.encode()) / 0xFFFFFFFF


def _canonical_levelno(levelno: int) -> int:
    if levelno < logging.DEBUG:
        return 5
    return min(levelno // 10 * 10, logging.CRITICAL)


def _levelno_of(level: str) -> int:
    return {"TRACE": 5, "DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARN": logging.WARNING,
            "ERROR": logging.ERROR, "FATAL": logging.CRITICAL}[level]


class Sampler:
    """Per-level keep rates, consistent by trace id.

    ``rates`` maps a level name (any alias :func:`logharbor.record.normalize_level` knows) to the
    fraction kept, 0.0–1.0; levels not named are kept whole. ``rates={"DEBUG": 0.01, "INFO": 0.2}``
    keeps 1 % of the traces' DEBUG lines and 20 % of their INFO lines, and every WARN and above.
    """

    def __init__(self, rates: Mapping[str, float], *, rng: random.Random | None = None) -> None:
        table: dict[int, float] = {}
        for name, rate in rates.items():
            level = normalize_level(name)
            if level is None:
                raise ValueError(f"sample: unknown level {name!r}; use one of {', '.join(LEVELS)}")
            if not 0.0 <= float(rate) <= 1.0:
                raise ValueError(f"sample: rate for {name!r} must be within 0..1, got {rate!r}")
            table[_levelno_of(level)] = float(rate)
        self.rates = dict(sorted(table.items()))
        # levelno → rate; custom levels count as the canonical level at or below them
        self._by_levelno = [table.get(_canonical_levelno(n), 1.0) for n in range(61)]
        self._random = (rng or random.Random()).random  # noqa: S311 - sampling, not security

    def keep(self, levelno: int, trace_id: str | None) -> bool:
        """Whether a record of this level in this trace is kept (cheap: runs in the caller)."""
        rate = self._by_levelno[levelno] if 0 <= levelno <= 60 else 1.0
        if rate >= 1.0:
            return True
        if rate <= 0.0:
            return False
        if trace_id:
            return trace_bucket(trace_id) < rate
        return self._random() < rate
