"""``logharbor server``: run the server in the foreground."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from logharbor.server.config import ServerConfig

__all__ = ["register", "run_server"]


def run_server(config: ServerConfig, *, log_level: str = "info") -> None:
    """Serve until SIGINT/SIGTERM; the lifespan drains the WAL into the store on the way out."""
    import uvicorn

    from logharbor.server.app import create_app
    from logharbor.server.http_protocol import HttpLimits, limited_protocol

    app = create_app(config)
    # header size and count limits and read timeouts on the listener (http_protocol.py)
    http = limited_protocol(HttpLimits(max_header_bytes=config.max_header_bytes,
                                       max_headers=config.max_headers,
                                       header_timeout_s=config.header_timeout_s,
                                       body_timeout_s=config.body_timeout_s))
    tls: dict[str, str] = {}
    if config.tls_cert and config.tls_key:
        tls = {"ssl_certfile": str(config.tls_cert), "ssl_keyfile": str(config.tls_key)}
    if not config.auth:
        print("logharbor server: WARNING: authentication is OFF (--no-auth); anyone who can reach "
              f"{config.host}:{config.port} can read and write every log", flush=True)
    class Server(uvicorn.Server):
        """uvicorn's server; on SIGTERM/SIGINT the batcher starts flushing at once, while the
        open requests finish (the lifespan shutdown that closes the runtime comes after them)."""

        def handle_exit(self, sig: int, frame: Any) -> None:
            runtime = getattr(app.state, "runtime", None)
            if runtime is not None:
                runtime.batcher.begin_flush()
            super().handle_exit(sig, frame)

    Server(uvicorn.Config(app, host=config.host, port=config.port, log_level=log_level, loop="uvloop",
                          http=http, access_log=False, **tls,
                          timeout_graceful_shutdown=max(1, min(10, int(config.shutdown_timeout_s))),
                          ws_max_size=config.max_request_bytes)).run()  # a WebSocket message is a request too


def _window_seconds(text: str) -> float:
    """``--idempotency-window``: a duration (24h, 90m) or seconds; 0 turns the window off."""
    from logharbor.server.features.query.timeparse import TimeParseError, parse_duration_ns

    value = text.strip()
    if value.replace(".", "", 1).isdigit():
        return float(value)
    try:
        return parse_duration_ns(value) / 1e9
    except TimeParseError as exc:
        raise ValueError(f"--idempotency-window: {exc}") from None


def register(app: typer.Typer) -> None:
    @app.command("server")
    def server(
        data_dir: Path = typer.Option(Path("data"), "--data-dir", help="WAL, store and metadata live here"),
        host: str = typer.Option("127.0.0.1", help="address to listen on"),
        port: int = typer.Option(8080, help="HTTP port"),
        wal_max_mb: int = typer.Option(1024, help="WAL backlog (MiB) above which ingest answers 429"),
        wal_segment_mb: int = typer.Option(64, help="size (MiB) at which a WAL segment is sealed"),
        batch_max_age: float = typer.Option(1.0, help="seconds before a partial batch goes to the store"),
        shutdown_timeout: float = typer.Option(
            30.0, help="seconds the WAL may take to reach the store at SIGTERM/SIGINT (the rest is "
                       "logged and replayed at the next start)"),
        max_body_mb: int = typer.Option(64, help="largest request body (MiB, after decompression)"),
        max_line_kb: int = typer.Option(1024, help="largest NDJSON line (KiB)"),
        pause_batcher: bool = typer.Option(
            False, "--pause-batcher", help="maintenance: accept into the WAL, hold store writes"),
        no_fsync: bool = typer.Option(False, "--no-fsync", help="skip fsync (throwaway data only)"),
        no_patterns: bool = typer.Option(False, "--no-patterns",
                                         help="do not mine message templates (no pattern_id)"),
        patterns_max_clusters: int = typer.Option(
            500, help="bounds the template miner: 4× this many masked templates per service"),
        patterns_backfill_rate: float = typer.Option(
            20_000, help="records/s at which records stored before patterns existed get a pattern_id "
                         "in the background (0: never)"),
        ingest_workers: int | None = typer.Option(
            None, help="processes decoding large ingest bodies (default: one per core, 0: none)"),
        encryption_key_file: Path | None = typer.Option(
            None, help="seal the store and WAL at rest with the keys in this file (id:hex lines, 0600)"),
        secrets_key_file: Path | None = typer.Option(
            None, help="seal channel secrets with this key file (default: --encryption-key-file, else "
                       "DATA/secrets.key); the same file on every server sharing --meta"),
        tls_cert: Path | None = typer.Option(None, help="PEM certificate: serve HTTPS"),
        tls_key: Path | None = typer.Option(None, help="PEM private key of --tls-cert"),
        no_auth: bool = typer.Option(False, "--no-auth",
                                     help="do not require API keys (trusted laptop only)"),
        metrics_public: bool = typer.Option(False, "--metrics-public", help="serve /metrics without a key"),
        meta_url: str | None = typer.Option(None, "--meta-url", "--meta",
                                            help="metadata DB URL (default: SQLite in the data dir); "
                                                 "postgresql://… when several servers share it"),
        store: str = typer.Option("embedded", "--store",
                                  help="embedded (chDB in the data dir) or a ClickHouse URL: "
                                       "clickhouse://host:8123/db, with user:pass@ and "
                                       "?cluster=NAME as needed"),
        ingest_rate: int | None = typer.Option(None, help="records/s per API key unless the key says"),
        syslog_udp: str | None = typer.Option(None, help="syslog over UDP on host:port (e.g. 0.0.0.0:514)"),
        syslog_tcp: str | None = typer.Option(None, help="syslog over TCP on host:port (LF/octet framing)"),
        syslog_tls: str | None = typer.Option(None, help="syslog over TLS on host:port (RFC 5425)"),
        syslog_timezone: str = typer.Option("UTC", help="IANA zone of RFC 3164 times, which carry none "
                                                        "(e.g. Europe/Berlin)"),
        syslog_timezones: str = typer.Option("", help="comma-separated NETWORK=ZONE: senders in NETWORK "
                                                      "write RFC 3164 times in ZONE"),
        forward: str | None = typer.Option(None, help="Fluent forward protocol on host:port (e.g. :24224)"),
        forward_tls: bool = typer.Option(False, "--forward-tls", help="TLS on the forward listener"),
        forward_shared_key: str | None = typer.Option(None, help="forward shared key (handshake required)"),
        listener_allow: str = typer.Option("127.0.0.0/8,::1/128",
                                           help="comma-separated networks syslog/forward accept"),
        listener_tls_cert: Path | None = typer.Option(None, help="PEM certificate for syslog/forward TLS"),
        listener_tls_key: Path | None = typer.Option(None, help="PEM key for syslog/forward TLS"),
        cold_storage: str = typer.Option("cold", help="cold tier: a folder (relative to the data dir) "
                                                      "or s3://bucket/prefix"),
        cold_endpoint: str | None = typer.Option(None, help="S3 endpoint URL of the cold tier"),
        retention_interval: float = typer.Option(60.0, help="seconds between two retention mover runs"),
        disk_max_mb: int | None = typer.Option(None, help="data dir size (MiB) the disk guard keeps under"),
        disk_min_free_mb: int = typer.Option(100, help="less free disk (MiB) than this: ingest answers 429"),
        channel_allow_hosts: str = typer.Option(
            "*", help="comma-separated hosts, *.domains, addresses and networks alert channels may reach"),
        channel_deny_hosts: str = typer.Option(
            "default", help="comma-separated hosts and networks channels may never reach; 'default' is "
                            "link-local and cloud metadata addresses (add to it: default,10.0.0.0/8)"),
        tail_max_clients: int = typer.Option(1000, help="live tail clients this server serves (more: 503)"),
        tail_max_pending_mb: int = typer.Option(64, help="MiB of new records held for tail filters"),
        query_timeout: float = typer.Option(30.0, help="seconds a request's queries may run, waiting for a "
                                                       "query slot included (the engine stops them)"),
        query_max_memory_mb: int = typer.Option(2048, help="engine memory (MiB) one query may use"),
        query_export_timeout: float = typer.Option(600.0, help="seconds an NDJSON export may run"),
        query_concurrency: int = typer.Option(4, help="engine queries that run at once"),
        query_per_key_concurrency: int = typer.Option(2, help="queries one API key runs at once"),
        query_per_key_queue: int = typer.Option(8, help="queries one key may have waiting (more: 429)"),
        query_max_clauses: int = typer.Option(1024, help="terms one query may have (more: 400)"),
        max_request_kb: int = typer.Option(1024, help="largest body (KiB) of a request that is not ingest"),
        max_header_kb: int = typer.Option(64, help="largest request line + headers (KiB; more: 431)"),
        max_headers: int = typer.Option(100, help="most header fields in one request (more: 431)"),
        header_timeout: float = typer.Option(20.0, help="seconds a client has to send a request's headers"),
        body_timeout: float = typer.Option(20.0, help="seconds a body may take, plus 1 s per 500 bytes"),
        hsts_max_age: int = typer.Option(365 * 86400, help="Strict-Transport-Security max-age with TLS "
                                                            "(seconds, 0: no header)"),
        no_api_docs: bool = typer.Option(False, "--no-api-docs", help="do not serve the /api/docs page"),
        idempotency_window: str = typer.Option("24h", help="how long a batch's Idempotency-Key (and a "
                                                           "_bulk _id) is remembered: 24h, 90m, 0 (off)"),
        idempotency_max_keys: int = typer.Option(1_000_000, help="most Idempotency-Keys/_ids remembered"),
        log_level: str = typer.Option("info", help="uvicorn log level"),
    ) -> None:
        """Run the logharbor server: ingest, WAL, embedded store and the HTTP API."""
        try:
            config = ServerConfig(data_dir=data_dir, host=host, port=port,
                                  wal_max_bytes=wal_max_mb * 1024 * 1024,
                                  wal_segment_bytes=wal_segment_mb * 1024 * 1024,
                                  batch_max_age_s=batch_max_age, wal_fsync=not no_fsync,
                                  shutdown_timeout_s=shutdown_timeout,
                                  max_body_bytes=max_body_mb * 1024 * 1024,
                                  max_line_bytes=max_line_kb * 1024, batcher_paused=pause_batcher,
                                  patterns=not no_patterns, patterns_max_clusters=patterns_max_clusters,
                                  patterns_backfill_rows_per_s=patterns_backfill_rate,
                                  tls_cert=tls_cert, tls_key=tls_key, auth=not no_auth,
                                  encryption_key_file=encryption_key_file, secrets_key_file=secrets_key_file,
                                  metrics_public=metrics_public, meta_url=meta_url, store=store,
                                  ingest_rate_per_key=ingest_rate,
                                  syslog_udp=syslog_udp, syslog_tcp=syslog_tcp, syslog_tls=syslog_tls,
                                  syslog_timezone=syslog_timezone,
                                  syslog_timezones=[e.strip() for e in syslog_timezones.split(",")
                                                    if e.strip()],
                                  forward=forward, forward_tls=forward_tls,
                                  forward_shared_key=forward_shared_key,
                                  listener_allow=[n for n in listener_allow.split(",") if n.strip()],
                                  listener_tls_cert=listener_tls_cert, listener_tls_key=listener_tls_key,
                                  cold_storage=cold_storage, cold_endpoint=cold_endpoint,
                                  retention_interval_s=retention_interval,
                                  channel_allow_hosts=channel_allow_hosts.split(","),
                                  channel_deny_hosts=channel_deny_hosts.split(","),
                                  tail_max_clients=tail_max_clients,
                                  tail_max_pending_bytes=tail_max_pending_mb * 1024 * 1024,
                                  idempotency_window_s=_window_seconds(idempotency_window),
                                  idempotency_max_keys=idempotency_max_keys,
                                  disk_max_bytes=disk_max_mb * 1024 * 1024 if disk_max_mb else None,
                                  disk_min_free_bytes=disk_min_free_mb * 1024 * 1024,
                                  query_timeout_s=query_timeout,
                                  query_max_memory_bytes=query_max_memory_mb * 1024 * 1024,
                                  query_export_timeout_s=query_export_timeout,
                                  query_concurrency=query_concurrency,
                                  query_per_key_concurrency=query_per_key_concurrency,
                                  query_per_key_queue=query_per_key_queue,
                                  query_max_clauses=query_max_clauses,
                                  max_request_bytes=max_request_kb * 1024,
                                  max_header_bytes=max_header_kb * 1024,
                                  max_headers=max_headers, header_timeout_s=header_timeout,
                                  body_timeout_s=body_timeout, hsts_max_age_s=hsts_max_age,
                                  api_docs=not no_api_docs,
                                  **({} if ingest_workers is None else {"ingest_workers": ingest_workers}))
            if (tls_cert is None) != (tls_key is None):
                raise ValueError("--tls-cert and --tls-key go together")
            if (syslog_tls or forward_tls) and not ((listener_tls_cert or tls_cert)
                                                   and (listener_tls_key or tls_key)):
                raise ValueError("--syslog-tls and --forward-tls need --listener-tls-cert and "
                                 "--listener-tls-key (or --tls-cert and --tls-key)")
        except ValueError as exc:
            typer.echo(f"logharbor server: {exc}", err=True)
            raise typer.Exit(2) from None
        run_server(config, log_level=log_level)
