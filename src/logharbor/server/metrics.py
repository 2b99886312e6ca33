"""Prometheus metrics of one server, in a registry of its own (several apps may share a process)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["ServerMetrics"]


class _LiveCollector(Collector):
    """Gauges read at scrape time (WAL backlog, store rows and bytes)."""

    def __init__(self, read: Callable[[], dict[str, float]]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        for name, (help_text, value) in _describe(self._read()).items():
            yield GaugeMetricFamily(name, help_text, value=value)


def _describe(values: dict[str, float]) -> dict[str, tuple[str, float]]:
    helps = {
        "logharbor_wal_bytes": "bytes in the write-ahead log not yet moved to the store",
        "logharbor_store_rows": "rows in the logs table",
        "logharbor_store_bytes_on_disk": "compressed bytes of the logs table",
        "logharbor_store_bytes_uncompressed": "uncompressed bytes of the logs table",
        "logharbor_query_slots_busy": "store reads running (of query_concurrency)",
        "logharbor_queries_waiting": "store reads waiting for a query slot",
        "logharbor_idempotency_keys": "recent Idempotency-Keys and _ids remembered (within the window)",
        "logharbor_idempotent_replays": "retried requests answered from an earlier attempt (since start)",
        "logharbor_bulk_duplicate_ids": "_bulk documents not stored again: a known _id (since start)",
        "logharbor_store_refused_rows": "rows the store refused for their data, set aside in the WAL's "
                                        "quarantine/refused/ (since start)",
        "logharbor_ingest_decoded_in_threads_total": "large bodies decoded in threads of the server "
                                                     "process (since start)",
        "logharbor_ingest_decoded_in_processes_total": "large bodies decoded in worker processes "
                                                       "(since start)",
        "logharbor_store_refused_files": "files of refused rows kept in the WAL's quarantine/refused/",
    }
    return {name: (helps.get(name, name), value) for name, value in values.items()}


class ServerMetrics:
    """The counters ingest and the batcher update, and the live gauges."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.records_accepted = Counter(
            "logharbor_records_accepted", "records accepted, by protocol", ["protocol"],
            registry=self.registry)
        self.records_rejected = Counter(
            "logharbor_records_rejected", "records rejected, by protocol", ["protocol"],
            registry=self.registry)
        self.batch_seconds = Histogram(
            "logharbor_batch_insert_seconds", "time to insert one batch into the store",
            registry=self.registry, buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.batch_rows = Counter("logharbor_batch_rows", "rows moved from the WAL to the store",
                                  registry=self.registry)
        self.requests_throttled = Counter(
            "logharbor_ingest_throttled", "ingest requests answered 429", registry=self.registry)
        self.ingest_ignored = Counter(
            "logharbor_ingest_ignored",
            "what ingest accepted but did not act on, by protocol and name (docs/protocols.md: an "
            "Elasticsearch bulk parameter; an OTLP id that is not one, kept as an attribute)",
            ["protocol", "what"], registry=self.registry)

        self.connections_refused = Counter(
            "logharbor_connections_refused",
            "new connections a listener refused at its limit (http_max_connections, "
            "listener_max_connections), by listener", ["listener"], registry=self.registry)

    def count_refused(self, listener: str) -> None:
        self.connections_refused.labels(listener).inc()

    def decoder(self, path: str, reason: str) -> None:
        """Say which NDJSON decoder runs (``rowc``, ``compiled`` or ``python``) and why, as an info gauge."""
        Gauge("logharbor_ingest_decoder", "the NDJSON decoder ingest runs (value 1): rowc (the C "
              "normaliser, GIL released), compiled or python, and why (logharbor.server.ingest.decoder)",
              ["path", "reason"],
              registry=self.registry).labels(path, reason).set(1)

    def decode_mode(self, ndjson: str, others: str, reason: str) -> None:
        """Say where large bodies are decoded (threads or processes) and why, as an info gauge."""
        Gauge("logharbor_ingest_decode_mode", "where large bodies are decoded (value 1): NDJSON and "
              "the other protocols, each threads or processes, and why (server/ingest/decodepool.py)",
              ["ndjson", "others", "reason"], registry=self.registry).labels(ndjson, others, reason).set(1)

    def watch(self, read: Callable[[], dict[str, float]]) -> None:
        self.registry.register(_LiveCollector(read))

    def count_ingest(self, protocol: str, accepted: int, rejected: int) -> None:
        if accepted:
            self.records_accepted.labels(protocol).inc(accepted)
        if rejected:
            self.records_rejected.labels(protocol).inc(rejected)

    def count_ignored(self, protocol: str, what: str, n: int = 1) -> None:
        self.ingest_ignored.labels(protocol, what).inc(n)

    def observe_batch(self, entries: int, rows: int, seconds: float) -> None:
        self.batch_seconds.observe(seconds)
        self.batch_rows.inc(rows)
