"""The metadata database: API keys, audit log (and later rules, dashboards, retention).

SQLAlchemy Core on SQLite in the data directory by default (``sqlite:///DATA/meta.db``), or
PostgreSQL when several servers share it. Tables are created on open; the schema is versioned by
the table set itself (new tables are added, none is altered in place yet).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)

__all__ = ["MetaStore", "api_keys", "audit_log", "metadata"]

metadata = MetaData()

api_keys = Table(
    "api_keys", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prefix", String(16), nullable=False, unique=True),  # public part, for lookup
    Column("secret_hash", String(64), nullable=False),  # sha256 hex of the secret part
    Column("name", String(200), nullable=False, default=""),
    Column("role", String(16), nullable=False),
    Column("tenant", String(200), nullable=True),
    Column("services", JSON, nullable=True),  # list of service names, or null for all
    Column("created_ns", BigInteger, nullable=False),
    Column("expires_ns", BigInteger, nullable=True),
    Column("revoked_ns", BigInteger, nullable=True),
    Column("created_by", String(16), nullable=True),  # prefix of the admin key that made it
    Column("ingest_rate", Integer, nullable=True),  # records per second, null = server default
)

audit_log = Table(
    "audit_log", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time_ns", BigInteger, nullable=False),
    Column("actor", String(64), nullable=False),  # key prefix, "system", or "anonymous"
    Column("action", String(64), nullable=False),  # key.create, key.revoke, auth.failed, …
    Column("target", String(200), nullable=True),
    Column("remote", String(64), nullable=True),
    Column("detail", Text, nullable=True),
    Index("ix_audit_time", "time_ns"),
)


class MetaStore:
    """One engine for the metadata tables; safe to share between threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, future=True)
        if url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.execute("PRAGMA busy_timeout=5000")
                cursor.close()

    @classmethod
    def for_data_dir(cls, data_dir: Path, url: str | None = None) -> MetaStore:
        """``url`` if given, else a SQLite file in the data directory."""
        if url:
            return cls(url)
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{data_dir / 'meta.db'}")

    def create(self) -> None:
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()
