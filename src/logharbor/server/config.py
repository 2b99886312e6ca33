"""Server configuration: one pydantic model, validated at start, with errors that name the key."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

__all__ = ["ServerConfig"]

MiB = 1024 * 1024


class ServerConfig(BaseModel):
    """Everything ``logharbor server`` can be told; every field has a CLI flag of the same name."""

    model_config = ConfigDict(extra="forbid")

    data_dir: Path = Field(Path("data"), description="where the WAL, the store and metadata live")
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port (0 picks a free one)")
    store: str = Field("embedded", description="`embedded` (chDB in the data dir) or `clickhouse://…`")
    table: str = Field("logs", min_length=1, max_length=128, description="name of the logs table")

    wal_segment_bytes: int = Field(64 * MiB, ge=MiB, description="size at which a WAL segment is sealed")
    wal_max_bytes: int = Field(1024 * MiB, ge=MiB, description="WAL backlog above which ingest answers 429")
    wal_fsync: bool = Field(True, description="fsync each group commit (turn off only for throwaway data)")
    batch_max_bytes: int = Field(32 * MiB, ge=64 * 1024,
                                 description="store insert size that triggers a flush")
    batcher_paused: bool = Field(False, description="maintenance: accept into the WAL, hold store writes")
    batch_max_age_s: float = Field(1.0, gt=0, le=60, description="oldest entry age that triggers a flush")
    shutdown_timeout_s: float = Field(
        30.0, ge=0, le=3600, description="at SIGTERM/SIGINT, how long the WAL may take to reach the store "
                                         "(what is left is logged and replayed at the next start)")

    patterns: bool = Field(True, description="mine message templates at ingest (pattern_id, | patterns)")
    patterns_max_clusters: int = Field(
        500, ge=10, description="bounds the template miner: 4× this many masked templates per service (LRU)")
    patterns_max_services: int = Field(100, ge=1, description="services the template miner keeps (LRU)")
    patterns_backfill_rows_per_s: float = Field(
        20_000, ge=0, description="records stored before patterns existed get their pattern_id in the "
                                  "background at about this rate (0: never)")

    ingest_workers: int = Field(default_factory=lambda: min(os.cpu_count() or 1, 8),
                                ge=0, le=64, description="processes decoding large bodies (0: in-process)")
    max_body_bytes: int = Field(64 * MiB, ge=1024, description="largest request body, after decompression")
    max_line_bytes: int = Field(1 * MiB, ge=256, description="largest single NDJSON line")
    retry_after_s: int = Field(1, ge=1, description="Retry-After given with 429")

    auth: bool = Field(True, description="require API keys (turn off only on a trusted laptop)")
    metrics_public: bool = Field(False, description="serve /metrics without a key")
    meta_url: str | None = Field(None, description="metadata database URL (default: SQLite in the data dir)")
    ingest_rate_per_key: int | None = Field(None, ge=1, description="records/s per key unless the key says")
    max_records_per_request: int = Field(200_000, ge=1, description="more records in one request is 413")
    idempotency_window_s: float = Field(86_400.0, ge=0, description="how long a stored Idempotency-Key "
                                        "or _bulk _id is remembered (0: off)")
    idempotency_max_keys: int = Field(1_000_000, ge=0,
                                      description="most keys remembered (the oldest go first)")
    max_fields_per_record: int = Field(1_000, ge=1,
                                       description="a record with more top-level keys is rejected")
    max_field_bytes: int = Field(256 * 1024, ge=64, description="a longer string value rejects its record")
    max_record_depth: int = Field(100, ge=2, le=200,
                                  description="objects/arrays nested deeper reject their record")
    encryption_key_file: Path | None = Field(
        None, description="key file (id:hex lines, mode 0600): seal the store and the WAL at rest")
    secrets_key_file: Path | None = Field(
        None, description="key file (id:hex lines, 0600) sealing channel secrets in the metadata database; "
                          "default: encryption_key_file, else DATA/secrets.key (one file for every server "
                          "sharing a metadata database)")
    tls_cert: Path | None = Field(None, description="PEM certificate: serve HTTPS")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")

    syslog_udp: str | None = Field(None, description="syslog UDP listen address host:port (off if unset)")
    syslog_tcp: str | None = Field(None, description="syslog TCP listen address host:port")
    syslog_tls: str | None = Field(None, description="syslog TLS listen address host:port (RFC 5425)")
    syslog_timezone: str = Field("UTC", description="IANA zone of RFC 3164 times, which carry none "
                                 "(what the senders' clocks show)")
    syslog_timezones: list[str] = Field([], description="NETWORK=ZONE: senders in NETWORK write RFC 3164 "
                                        "times in ZONE (first match wins; others: syslog_timezone)")
    forward: str | None = Field(None, description="Fluent forward listen address host:port (off if unset)")
    forward_tls: bool = Field(False, description="speak TLS on the forward listener")
    forward_shared_key: str | None = Field(None, description="forward peers must pass the handshake")
    listener_allow: list[str] = Field(["127.0.0.0/8", "::1/128"],
                                      description="networks the syslog and forward listeners accept")
    listener_tls_cert: Path | None = Field(None, description="PEM cert of syslog/forward TLS")
    listener_tls_key: Path | None = Field(None, description="PEM key of listener_tls_cert")

    channel_allow_hosts: list[str] = Field(["*"], description="hosts, *.domains, addresses and networks "
                                           "alert channels may reach (`*`: any)")
    channel_deny_hosts: list[str] = Field(["default"], description="hosts and networks channels may never "
                                          "reach; `default`: link-local and cloud metadata addresses")

    query_default_limit: int = Field(100, ge=1, description="rows returned when a query gives no limit")
    query_max_limit: int = Field(10_000, ge=1, description="hard cap on rows of a JSON query answer")
    query_timeout_s: float = Field(30.0, gt=0, description="a request's queries (and their wait for a "
                                   "query slot) running longer are cancelled by the engine")
    query_max_memory_bytes: int = Field(2048 * MiB, ge=16 * MiB, description="engine memory cap per query")
    query_export_timeout_s: float = Field(600.0, gt=0, description="time budget of an NDJSON export")
    query_concurrency: int = Field(4, ge=1, le=64, description="engine queries that run at once (readers)")
    query_per_key_concurrency: int = Field(2, ge=1, le=64,
                                           description="queries one API key runs at once (the rest wait)")
    query_per_key_queue: int = Field(8, ge=0, description="queries one key may have waiting; more: 429")
    query_max_clauses: int = Field(1024, ge=1, description="terms one query may have (max_clause_count)")

    max_request_bytes: int = Field(1 * MiB, ge=1024, description="largest body of a non-ingest request")
    max_header_bytes: int = Field(64 * 1024, ge=1024, description="request line and headers together")
    max_headers: int = Field(100, ge=8, description="header fields of one request (more: 431)")
    header_timeout_s: float = Field(20.0, gt=0, description="a request head must arrive within this")
    body_timeout_s: float = Field(20.0, gt=0, description="a body may take this plus 1 s per 500 bytes")
    hsts_max_age_s: int = Field(365 * 86400, ge=0,
                                description="Strict-Transport-Security max-age when serving TLS (0: none)")
    api_docs: bool = Field(True, description="serve the OpenAPI page at /api/docs (assets served locally)")

    tail_max_clients: int = Field(1000, ge=1, description="live tail clients one server serves (more: 503)")
    tail_max_pending_bytes: int = Field(64 * MiB, ge=1 * MiB,
                                        description="new records held for tail filters (oldest skipped)")

    cold_storage: str = Field("cold", description="cold tier: a folder (relative to data_dir) or s3://bucket/prefix")
    cold_endpoint: str | None = Field(None, description="S3 endpoint URL of the cold tier (AWS_ENDPOINT_URL)")
    retention_interval_s: float = Field(60.0, gt=0, description="seconds between two runs of the mover")
    disk_max_bytes: int | None = Field(None, ge=MiB, description="data dir size the disk guard keeps under")
    disk_min_free_bytes: int = Field(100 * MiB, ge=0, description="less free disk than this: ingest gets 429")

    @field_validator("meta_url")
    @classmethod
    def _meta_driver(cls, url: str | None) -> str | None:
        """``postgresql://`` means psycopg 3 (the driver logharbor ships), not SQLAlchemy's psycopg2."""
        if url and url.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    @field_validator("channel_allow_hosts", "channel_deny_hosts")
    @classmethod
    def _host_entries(cls, entries: list[str], info: ValidationInfo) -> list[str]:
        """Fail at start on an entry that is no host, domain, address or network."""
        from logharbor.server.features.alerts.channels.hosts import check_entries

        check_entries(entries, "--" + str(info.field_name).replace("_", "-"))
        return [e.strip() for e in entries if e.strip()]

    @field_validator("syslog_timezones")
    @classmethod
    def _syslog_zones(cls, entries: list[str], info: ValidationInfo) -> list[str]:
        """Fail at start on an unknown zone or a bad network, naming the entry."""
        from logharbor.server.ingest.syslog import SyslogZones

        SyslogZones.parse(info.data.get("syslog_timezone", "UTC"), entries)
        return entries

    @field_validator("syslog_timezone")
    @classmethod
    def _syslog_zone(cls, zone: str) -> str:
        from logharbor.server.ingest.syslog import check_zone

        return check_zone(zone, "syslog_timezone")

    @field_validator("store")
    @classmethod
    def _store_kind(cls, store: str) -> str:
        """Fail at start, naming the flag, rather than when the store opens."""
        if store != "embedded" and not store.startswith(("clickhouse://", "clickhouses://")):
            raise ValueError("store must be 'embedded' or a clickhouse:// URL")
        return store

    @property
    def wal_dir(self) -> Path:
        return self.data_dir / "wal"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"
