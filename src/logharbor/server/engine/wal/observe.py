"""What an operator sees of the WAL: Prometheus metrics and the ``wal_damage`` part of ``/readyz``.

Damage does not make the server not-ready: it still takes and keeps new data, and every valid
entry around the damage reaches the store. ``/readyz`` stays 200 and names the damage in its
body, so a dashboard or a human notices, while a load balancer keeps sending traffic.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from logharbor.server.engine.wal.log import WriteAheadLog
from logharbor.types import JsonObject

__all__ = ["WalCollector", "wal_damage"]


class WalCollector(Collector):
    """Damage counters and segment gauges, read at scrape time."""

    def __init__(self, wal: WriteAheadLog) -> None:
        self.wal = wal

    def collect(self) -> Iterator[Metric]:
        q = self.wal.quarantine
        yield CounterMetricFamily("logharbor_wal_corrupt_entries",
                                  "damaged WAL spans copied to quarantine and skipped (each held at least "
                                  "one entry)", value=q.corrupt_entries)
        yield CounterMetricFamily("logharbor_wal_corrupt_bytes", "bytes of damaged WAL spans quarantined",
                                  value=q.corrupt_bytes)
        yield CounterMetricFamily("logharbor_wal_torn_tail_bytes",
                                  "bytes of torn tails (never acknowledged) cut off at start-up",
                                  value=q.torn_bytes)
        yield GaugeMetricFamily("logharbor_wal_quarantine_files",
                                "damaged spans kept in the WAL's quarantine directory", value=q.files())
        yield GaugeMetricFamily("logharbor_wal_segments", "WAL segment files on disk",
                                value=len(list(self.wal.iter_segments())))
        yield GaugeMetricFamily("logharbor_wal_disk_bytes", "bytes of the WAL's segment files",
                                value=self.wal.disk_bytes())
        yield CounterMetricFamily("logharbor_wal_rolls", "live WAL segments sealed (full, reclaimed, rolled)",
                                  value=self.wal.rolls)


def wal_damage(wal: WriteAheadLog) -> JsonObject | None:
    """The ``wal_damage`` field of ``/readyz``: None while the WAL has never been damaged."""
    summary = wal.quarantine.summary()
    if not summary["quarantine_files"] and not summary["corrupt_entries"]:
        return None
    return summary
