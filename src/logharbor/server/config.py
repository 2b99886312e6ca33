"""Server configuration: one pydantic-settings model, the single source of every server setting.

Where a value comes from, highest first (one rule, docs/server.md *Configuration*):
**command-line flags > ``LOGHARBOR_*`` environment variables > the ``--config`` YAML file >
defaults**. Flags are generated from the fields (``logharbor.cli.server``): one per field, named
after it unless :class:`Flag` keeps an older name and unit (``--wal-max-mb`` sets
``wal_max_bytes`` in MiB). The environment and the file use the field names and the fields' own
units: ``LOGHARBOR_WAL_MAX_BYTES=1GiB``, ``wal_max_bytes: 1GiB``. Sizes take bytes or a unit
(``64MiB``, ``1.5GB``), durations seconds or a unit (``500ms``, ``90s``, ``24h``), lists a YAML
list or comma-separated text. A bad value, an unknown key or settings that do not go together are
refused at start, naming the field.
"""

from __future__ import annotations

import contextvars
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    ByteSize,
    Field,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from logharbor.models import refuse_boolean_numbers
from logharbor.types import JsonObject

__all__ = ["ENV_PREFIX", "Flag", "Kind", "ServerConfig", "format_seconds", "parse_seconds", "parse_size"]

KiB = 1024
MiB = 1024 * 1024
ENV_PREFIX = "LOGHARBOR_"

#: the --config file of the ServerConfig being built (see ServerConfig.load)
_CONFIG_FILE: contextvars.ContextVar[Path | None] = contextvars.ContextVar("config_file", default=None)


@dataclass(frozen=True)
class Flag:
    """How a field is spelled on the command line when not ``--field-name``: an older name kept
    working (``--wal-max-mb``), the unit its number is in (``unit=MiB``: the field is bytes), more
    names (``--meta``), or a ``--yes/--no`` pair for a switch."""

    name: str | None = None
    unit: int = 1
    aliases: tuple[str, ...] = ()


class Kind:
    """Markers on a field's type: how its flag reads a value (a size, a duration, a list)."""

    SIZE = "size"
    DURATION = "duration"
    LIST = "list"


_BYTES = TypeAdapter(ByteSize)
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d)?", re.I)
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_size(value: Any) -> Any:
    """``65536``, ``"64MiB"``, ``"1.5 GB"`` → bytes (pydantic's ByteSize: KiB/MiB are 1024s)."""
    if isinstance(value, str):
        return int(_BYTES.validate_python(value.strip()))
    return value


def parse_seconds(value: Any) -> Any:
    """``30``, ``"1.5"``, ``"500ms"``, ``"90s"``, ``"24h"`` → seconds."""
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if not match:
            raise ValueError(f"{value!r} is no duration (seconds, or a number with ms, s, m, h or d)")
        unit = match[2].lower() if match[2] else None
        return float(match[1]) * _SECONDS[unit]
    return value


def format_seconds(seconds: float) -> str:
    """The shortest exact spelling: 86400 → ``24h``, 31536000 → ``365d``, 1.5 → ``1.5s``."""
    for unit, size, least in (("d", 86400, 2), ("h", 3600, 1), ("m", 60, 1)):
        if seconds >= size * least and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _check_file(path: Path) -> None:
    """A --config file that is missing, unreadable, not YAML or not a mapping of settings is
    refused naming it (pydantic-settings would skip a missing one and fail obscurely on the rest)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"--config {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--config {path}: cannot read it: {exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"--config {path}: not valid YAML: {_yaml_problem(exc)}") from None
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"--config {path}: must be a mapping of settings (field: value), "
                         f"not a {type(data).__name__}")


def _yaml_problem(exc: Exception) -> str:
    """What is wrong and where, without the quoted line PyYAML adds (it may hold a password)."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None) or "cannot parse it"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


#: settings whose value may hold a secret (a URL's password, a shared key): an error names them
#: but never quotes what was given
SECRET_FIELDS = frozenset({"meta_url", "store", "forward_shared_key", "cold_storage", "cold_endpoint"})


def _csv(value: Any) -> Any:
    """Text (a flag, a variable) is comma-separated; a YAML list stays a list."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


Size = Annotated[int, BeforeValidator(parse_size), Kind.SIZE]
Seconds = Annotated[float, BeforeValidator(parse_seconds), Kind.DURATION]
WholeSeconds = Annotated[int, BeforeValidator(parse_seconds), Kind.DURATION]
Csv = Annotated[list[str], NoDecode, BeforeValidator(_csv), Kind.LIST]


class ServerConfig(BaseSettings):
    """Everything ``logharbor server`` can be told; every field has exactly one CLI flag."""

    model_config = SettingsConfigDict(extra="forbid", env_prefix=ENV_PREFIX, validate_default=False)

    data_dir: Path = Field(Path("data"), description="where the WAL, the store and metadata live")
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8080, ge=0, le=65535, description="HTTP port (0 picks a free one)")
    store: str = Field("embedded", description="`embedded` (chDB in the data dir) or `clickhouse://…`")
    table: str = Field("logs", min_length=1, max_length=128, description="name of the logs table")

    wal_segment_bytes: Annotated[Size, Flag("--wal-segment-mb", unit=MiB)] = Field(
        64 * MiB, ge=MiB, description="size at which a WAL segment is sealed"
    )
    wal_max_bytes: Annotated[Size, Flag("--wal-max-mb", unit=MiB)] = Field(
        1024 * MiB, ge=MiB, description="WAL backlog above which ingest answers 429"
    )
    wal_fsync: Annotated[bool, Flag("--fsync/--no-fsync")] = Field(
        True, description="fsync each group commit (turn off only for throwaway data)"
    )
    batch_max_bytes: Size = Field(
        32 * MiB, ge=64 * 1024, description="store insert size that triggers a flush"
    )
    batcher_paused: Annotated[bool, Flag("--pause-batcher/--no-pause-batcher")] = Field(
        False, description="maintenance: accept into the WAL, hold store writes"
    )
    # ingest → searchable is this age plus one insert (target p99 ≤ 1 s, DESIGN §6): at 1 s with
    # the quiet machine's 17.6 µs of insert per row, 20k records/s made it ~1.35 s. Under heavier
    # load an insert outlasts the age and batches grow by themselves (bench/README.md)
    batch_max_age_s: Annotated[Seconds, Flag("--batch-max-age")] = Field(
        0.5, gt=0, le=60, description="oldest entry age that triggers a flush"
    )
    shutdown_timeout_s: Annotated[Seconds, Flag("--shutdown-timeout")] = Field(
        30.0,
        ge=0,
        le=3600,
        description="at SIGTERM/SIGINT, how long the WAL may take to reach the store "
        "(what is left is logged and replayed at the next start)",
    )

    patterns: bool = Field(True, description="mine message templates at ingest (pattern_id, | patterns)")
    patterns_max_clusters: int = Field(
        500, ge=10, description="bounds the template miner: 4× this many masked templates per service (LRU)"
    )
    patterns_max_services: int = Field(100, ge=1, description="services the template miner keeps (LRU)")
    patterns_backfill_rows_per_s: Annotated[float, Flag("--patterns-backfill-rate")] = Field(
        20_000,
        ge=0,
        description="records stored before patterns existed get their pattern_id in the "
        "background at about this rate (0: never)",
    )

    ingest_workers: int = Field(
        default_factory=lambda: min(os.cpu_count() or 1, 8),
        ge=0,
        le=64,
        description="threads or processes decoding large bodies (default: one per core, at most 8; "
        "0: threads of the server process only)",
    )
    ingest_decode: Literal["auto", "threads", "processes"] = Field(
        "auto",
        description="where large bodies are decoded: threads of the server process (no hand-off, "
        "for a decoder that releases the GIL), worker processes (a decoder that holds it), or auto: "
        "NDJSON in threads when its decoder releases the GIL, otherwise processes",
    )
    max_body_bytes: Annotated[Size, Flag("--max-body-mb", unit=MiB)] = Field(
        64 * MiB, ge=1024, description="largest request body, after decompression"
    )
    max_line_bytes: Annotated[Size, Flag("--max-line-kb", unit=KiB)] = Field(
        1 * MiB, ge=256, description="largest single NDJSON line"
    )
    retry_after_s: WholeSeconds = Field(1, ge=1, description="Retry-After given with 429")

    auth: bool = Field(True, description="require API keys (turn off only on a trusted laptop)")
    metrics_public: bool = Field(False, description="serve /metrics without a key")
    meta_url: Annotated[str | None, Flag("--meta-url", aliases=("--meta",))] = Field(
        None, description="metadata database URL (default: SQLite in the data dir)"
    )
    ingest_rate_per_key: Annotated[int | None, Flag("--ingest-rate")] = Field(
        None, ge=1, description="records/s per key unless the key says"
    )
    max_records_per_request: int = Field(200_000, ge=1, description="more records in one request is 413")
    idempotency_window_s: Annotated[Seconds, Flag("--idempotency-window")] = Field(
        86_400.0, ge=0, description="how long a stored Idempotency-Key or _bulk _id is remembered (0: off)"
    )
    idempotency_max_keys: int = Field(
        1_000_000, ge=0, description="most keys remembered (the oldest go first)"
    )
    max_fields_per_record: int = Field(
        1_000, ge=1, description="a record with more top-level keys is rejected"
    )
    max_field_bytes: Size = Field(256 * 1024, ge=64, description="a longer string value rejects its record")
    max_record_depth: int = Field(
        100, ge=2, le=200, description="objects/arrays nested deeper reject their record"
    )
    encryption_key_file: Path | None = Field(
        None, description="key file (id:hex lines, mode 0600): seal the store and the WAL at rest"
    )
    secrets_key_file: Path | None = Field(
        None,
        description="key file (id:hex lines, 0600) sealing channel secrets in the metadata database; "
        "default: encryption_key_file, else DATA/secrets.key (one file for every server "
        "sharing a metadata database)",
    )
    tls_cert: Path | None = Field(None, description="PEM certificate: serve HTTPS")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")

    syslog_udp: str | None = Field(None, description="syslog UDP listen address host:port (off if unset)")
    syslog_tcp: str | None = Field(None, description="syslog TCP listen address host:port")
    syslog_tls: str | None = Field(None, description="syslog TLS listen address host:port (RFC 5425)")
    syslog_timezone: str = Field(
        "UTC", description="IANA zone of RFC 3164 times, which carry none (what the senders' clocks show)"
    )
    syslog_timezones: Csv = Field(
        [],
        description="NETWORK=ZONE: senders in NETWORK write RFC 3164 "
        "times in ZONE (first match wins; others: syslog_timezone)",
    )
    forward: str | None = Field(None, description="Fluent forward listen address host:port (off if unset)")
    forward_tls: bool = Field(False, description="speak TLS on the forward listener")
    forward_shared_key: str | None = Field(None, description="forward peers must pass the handshake")
    listener_allow: Csv = Field(
        ["127.0.0.0/8", "::1/128"], description="networks the syslog and forward listeners accept"
    )
    listener_max_connections: int = Field(
        1024, ge=1, description="open connections of each syslog TCP/TLS and forward listener (more: refused)"
    )
    listener_tls_cert: Path | None = Field(None, description="PEM cert of syslog/forward TLS")
    listener_tls_key: Path | None = Field(None, description="PEM key of listener_tls_cert")

    channel_allow_hosts: Csv = Field(
        ["*"], description="hosts, *.domains, addresses and networks alert channels may reach (`*`: any)"
    )
    channel_deny_hosts: Csv = Field(
        ["default"],
        description="hosts and networks channels may never "
        "reach; `default`: link-local and cloud metadata addresses",
    )

    query_default_limit: int = Field(100, ge=1, description="rows returned when a query gives no limit")
    query_max_limit: int = Field(10_000, ge=1, description="hard cap on rows of a JSON query answer")
    query_timeout_s: Annotated[Seconds, Flag("--query-timeout")] = Field(
        30.0,
        gt=0,
        description="a request's queries (and their wait for a "
        "query slot) running longer are cancelled by the engine",
    )
    query_max_memory_bytes: Annotated[Size, Flag("--query-max-memory-mb", unit=MiB)] = Field(
        2048 * MiB, ge=16 * MiB, description="engine memory cap per query"
    )
    query_export_timeout_s: Annotated[Seconds, Flag("--query-export-timeout")] = Field(
        600.0, gt=0, description="time budget of an NDJSON export"
    )
    query_concurrency: int = Field(4, ge=1, le=64, description="engine queries that run at once (readers)")
    query_index_cache_bytes: Annotated[Size, Flag("--query-index-cache-mb", unit=MiB)] = Field(
        256 * MiB, ge=0, description="embedded store: skip-index granules kept decompressed between queries"
    )
    query_per_key_concurrency: int = Field(
        2, ge=1, le=64, description="queries one API key runs at once (the rest wait)"
    )
    query_per_key_queue: int = Field(8, ge=0, description="queries one key may have waiting; more: 429")
    query_max_clauses: int = Field(1024, ge=1, description="terms one query may have (max_clause_count)")

    max_request_bytes: Annotated[Size, Flag("--max-request-kb", unit=KiB)] = Field(
        1 * MiB, ge=1024, description="largest body of a non-ingest request"
    )
    max_header_bytes: Annotated[Size, Flag("--max-header-kb", unit=KiB)] = Field(
        64 * 1024, ge=1024, description="request line and headers together"
    )
    max_headers: int = Field(100, ge=8, description="header fields of one request (more: 431)")
    http_max_connections: int = Field(
        4096, ge=1, description="open HTTP connections, WebSockets included (more: 503 and closed)"
    )
    header_timeout_s: Annotated[Seconds, Flag("--header-timeout")] = Field(
        20.0, gt=0, description="a request head must arrive within this"
    )
    body_timeout_s: Annotated[Seconds, Flag("--body-timeout")] = Field(
        20.0, gt=0, description="a body may take this plus 1 s per 500 bytes"
    )
    hsts_max_age_s: Annotated[WholeSeconds, Flag("--hsts-max-age")] = Field(
        365 * 86400, ge=0, description="Strict-Transport-Security max-age when serving TLS (0: none)"
    )
    api_docs: bool = Field(True, description="serve the OpenAPI page at /api/docs (assets served locally)")

    tail_max_clients: int = Field(1000, ge=1, description="live tail clients one server serves (more: 503)")
    tail_max_pending_bytes: Annotated[Size, Flag("--tail-max-pending-mb", unit=MiB)] = Field(
        64 * MiB, ge=1 * MiB, description="new records held for tail filters (oldest skipped)"
    )

    cold_storage: str = Field(
        "cold", description="cold tier: a folder (relative to data_dir) or s3://bucket/prefix"
    )
    cold_endpoint: str | None = Field(None, description="S3 endpoint URL of the cold tier (AWS_ENDPOINT_URL)")
    retention_interval_s: Annotated[Seconds, Flag("--retention-interval")] = Field(
        60.0, gt=0, description="seconds between two runs of the mover"
    )
    disk_max_bytes: Annotated[Size | None, Flag("--disk-max-mb", unit=MiB)] = Field(
        None, ge=MiB, description="data dir size the disk guard keeps under (0: no limit)"
    )
    disk_min_free_bytes: Annotated[Size, Flag("--disk-min-free-mb", unit=MiB)] = Field(
        100 * MiB, ge=0, description="less free disk than this: ingest gets 429"
    )

    clock_interval_s: Annotated[Seconds, Flag("--clock-interval")] = Field(
        60.0, ge=1, le=86400, description="how often the leader estimates the hosts' clock offsets"
    )
    clock_window_s: Annotated[Seconds, Flag("--clock-window")] = Field(
        900.0, ge=10, le=86400, description="the request records each clock offset estimate reads"
    )

    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = Field(
        "info", description="uvicorn's log level"
    )

    @classmethod
    def load(cls, flags: JsonObject | None = None, config_file: Path | None = None) -> ServerConfig:
        """The configuration from ``flags`` (the values given on the command line), the
        ``LOGHARBOR_*`` environment and ``config_file`` (YAML), in that order of precedence."""
        if config_file is not None:
            _check_file(config_file)
        token = _CONFIG_FILE.set(config_file)
        try:
            return cls(**(flags or {}))
        finally:
            _CONFIG_FILE.reset(token)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Flags (the constructor's arguments) > environment > the --config file; no .env files."""
        config_file = _CONFIG_FILE.get()
        if config_file is None:
            return init_settings, env_settings
        return init_settings, env_settings, YamlConfigSettingsSource(settings_cls, yaml_file=config_file)

    @field_validator("disk_max_bytes", mode="before")
    @classmethod
    def _no_disk_limit(cls, value: Any) -> Any:
        """``--disk-max-mb 0`` has always meant no limit."""
        return None if value in (0, "0") else value

    @field_validator("meta_url")
    @classmethod
    def _meta_driver(cls, url: str | None) -> str | None:
        """``postgresql://`` means psycopg 3 (the driver logharbor ships), not SQLAlchemy's psycopg2."""
        if url and url.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + url.split("://", 1)[1]
        return url

    @field_validator("channel_allow_hosts", "channel_deny_hosts")
    @classmethod
    def _host_entries(cls, entries: list[str], info: Any) -> list[str]:
        """Fail at start on an entry that is no host, domain, address or network."""
        from logharbor.server.features.alerts.channels.hosts import check_entries

        check_entries(entries, "--" + str(info.field_name).replace("_", "-"))
        return [e.strip() for e in entries if e.strip()]

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

    @field_validator("*", mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """``port: yes`` in a YAML file is not port 1 (logharbor/models.py says why)."""
        return refuse_boolean_numbers(cls, value, info)

    @model_validator(mode="after")
    def _together(self) -> ServerConfig:
        """Settings that only make sense with others, checked wherever they came from."""
        from logharbor.server.ingest.syslog import SyslogZones

        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key (--tls-cert, --tls-key) go together")
        if (self.syslog_tls or self.forward_tls) and not (
            (self.listener_tls_cert or self.tls_cert) and (self.listener_tls_key or self.tls_key)
        ):
            raise ValueError(
                "syslog_tls and forward_tls (--syslog-tls, --forward-tls) need listener_tls_cert "
                "and listener_tls_key (--listener-tls-cert, --listener-tls-key) or tls_cert "
                "and tls_key"
            )
        if (self.listener_tls_cert is None) != (self.listener_tls_key is None):
            raise ValueError(
                "listener_tls_cert and listener_tls_key (--listener-tls-cert, --listener-tls-key) go together"
            )
        SyslogZones.parse(self.syslog_timezone, self.syslog_timezones)  # a bad entry raises naming it
        return self

    @property
    def wal_dir(self) -> Path:
        return self.data_dir / "wal"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"
