"""The metadata database: API keys, audit log (and later rules, dashboards, retention).

SQLAlchemy Core on SQLite in the data directory by default (``sqlite:///DATA/meta.db``), or
PostgreSQL when several servers share it. Tables are created on open: new tables are created, and
a new column (always nullable, so old rows stay valid) is added to an existing table by
:func:`add_missing_columns`. Nothing is dropped or retyped in place.

The ``logharbor_schema`` row says which schema the database was brought to (``version``) and the
oldest schema a release must know to use it (``readable_from``; a change that older releases can
live with, such as a new nullable column, leaves it alone). A database without the row is one of
the releases before it (schema 0). A release refuses a database whose ``readable_from`` is above
its own :data:`SCHEMA_VERSION` (:class:`~logharbor.formatversion.NewerFormat`, before any DDL),
and leaves the tables of a newer one it can use exactly as they are: no table or column is
created in it, nothing is migrated down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DatabaseError, IntegrityError, InterfaceError, OperationalError

from logharbor.formatversion import NewerFormat

__all__ = ["READABLE_FROM", "SCHEMA_VERSION", "MetaDamaged", "MetaStore", "add_missing_columns", "api_keys",
           "audit_log", "metadata", "schema_info"]

#: the schema this release creates; a database is readable here while its readable_from is at most this
SCHEMA_VERSION = 1
#: the oldest schema a release must know to use a database this release brought to SCHEMA_VERSION
READABLE_FROM = 1

metadata = MetaData()

schema_info = Table(
    "logharbor_schema", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1: one row
    Column("version", Integer, nullable=False),
    Column("readable_from", Integer, nullable=False),
)

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


class MetaDamaged(RuntimeError):
    """The metadata database's file is damaged; the message names it and the way to repair it."""


class MetaUnreachable(RuntimeError):
    """The metadata database at ``meta_url`` cannot be reached; the message names the setting,
    the URL without its password and the reason."""


class MetaStore:
    """One engine for the metadata tables; safe to share between threads."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("postgresql"):
            # a database that went away must not hang a request (the key check runs on the event
            # loop's thread); pooled connections a restart killed are replaced before use
            self.engine: Engine = create_engine(url, future=True, pool_pre_ping=True,
                                                connect_args={"connect_timeout": 5})
        else:
            self.engine = create_engine(url, future=True)
        if url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.execute("PRAGMA busy_timeout=5000")
                # what a delete-by-query redacts, or a channel's secrets sealed on upgrade replace,
                # is overwritten, not left in the free space of a page
                cursor.execute("PRAGMA secure_delete=ON")
                cursor.close()

    @classmethod
    def for_data_dir(cls, data_dir: Path, url: str | None = None) -> MetaStore:
        """``url`` if given, else a SQLite file in the data directory."""
        if url:
            return cls(url)
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{data_dir / 'meta.db'}")

    def where(self) -> str:
        """The database for messages: the SQLite file, or the URL without its password."""
        if self.url.startswith("sqlite"):
            return self.url.split("sqlite:///", 1)[-1]
        return make_url(self.url).render_as_string(hide_password=True)

    def schema(self) -> tuple[int, int]:
        """(version, readable_from) of the database; (0, 0) before the row existed. Read-only."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(schema_info.name):
                return 0, 0
            row = conn.execute(schema_info.select().where(schema_info.c.id == 1)).first()
        return (0, 0) if row is None else (int(row.version), int(row.readable_from))

    def check_schema(self) -> tuple[int, int]:
        """Refuse (:class:`NewerFormat`) a database of a schema this release cannot use; read-only,
        and a SQLite file that is not there yet is not created. Returns :meth:`schema`."""
        if self.url.startswith("sqlite") and not Path(self.where()).exists():
            return 0, 0
        try:
            version, readable_from = self.schema()
        except (OperationalError, InterfaceError, DatabaseError):
            return 0, 0  # unreachable or damaged: create() says so, naming it
        finally:
            self.engine.dispose()  # SQLite removes the -wal/-shm files a read made beside the file
        if readable_from > SCHEMA_VERSION:
            raise NewerFormat(self.where(), "the metadata database (logharbor_schema)",
                              f"{version} (readable from schema {readable_from})",
                              range(0, SCHEMA_VERSION + 1), "its tables were not touched")
        return version, readable_from

    def create(self) -> None:
        """Create missing tables and columns (in a database of an older or this schema only); a
        newer schema is refused or left as it is; a damaged SQLite file stops here, named."""
        try:
            version, _ = self.check_schema()
            if version > SCHEMA_VERSION:
                return  # a newer release's schema that this one can use: never altered, never migrated down
            metadata.create_all(self.engine)
            add_missing_columns(self.engine)
            self._stamp(version)
        except (OperationalError, InterfaceError) as exc:
            if self.url.startswith("sqlite"):
                raise
            raise MetaUnreachable(self._unreachable(exc)) from None
        except DatabaseError as exc:
            if not self.url.startswith("sqlite"):
                raise
            path = self.where()
            raise MetaDamaged(
                f"the metadata database {path} cannot be read ({exc.orig or exc}). It holds the API "
                "keys, alert rules and dashboards. Restore it from a backup, or recover what SQLite "
                f"can: `sqlite3 {path} .recover | sqlite3 {path}.recovered` and move "
                f"{path}.recovered to {path} (with the server stopped)") from None

    def _stamp(self, version: int) -> None:
        """Record that the database is now at :data:`SCHEMA_VERSION` (after its DDL ran)."""
        if version == SCHEMA_VERSION:
            return
        try:
            with self.engine.begin() as conn:
                row = conn.execute(schema_info.select().where(schema_info.c.id == 1)).first()
                if row is None:
                    conn.execute(schema_info.insert().values(id=1, version=SCHEMA_VERSION,
                                                             readable_from=READABLE_FROM))
                elif row.version < SCHEMA_VERSION:
                    conn.execute(schema_info.update().where(schema_info.c.id == 1).values(
                        version=SCHEMA_VERSION, readable_from=max(int(row.readable_from), READABLE_FROM)))
        except IntegrityError:
            pass  # another server sharing the database stamped it meanwhile

    def _unreachable(self, exc: Exception) -> str:
        url = make_url(self.url)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        if url.password:
            reason = reason.replace(str(url.password), "***")
        return (f"meta_url (--meta-url, LOGHARBOR_META_URL): cannot reach the metadata database "
                f"{url.render_as_string(hide_password=True)}: {reason}")

    def scrub(self) -> None:
        """Fold SQLite's write-ahead log into the database and truncate it, so pages that held
        values since replaced (in clear, before an upgrade sealed them) are gone from disk too."""
        if self.url.startswith("sqlite"):
            with self.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self.engine.dispose()


def add_missing_columns(engine: Engine) -> list[str]:
    """Add the nullable columns a newer release declares to tables an older one created.

    Names and types come from :data:`metadata` (never from input), quoted by the dialect's own
    identifier preparer. Returns ``table.column`` for each column added.
    """
    added: list[str] = []
    with engine.begin() as conn:
        existing = inspect(conn)
        prep = conn.dialect.identifier_preparer
        for table in metadata.sorted_tables:
            if not existing.has_table(table.name):
                continue
            have = {c["name"] for c in existing.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                if not column.nullable or column.primary_key:
                    raise RuntimeError(f"metadata: {table.name}.{column.name} is new and not nullable; "
                                       "such a change needs a real migration")
                ddl = column.type.compile(dialect=conn.dialect)
                conn.execute(text(f"ALTER TABLE {prep.format_table(table)} "
                                  f"ADD COLUMN {prep.format_column(column)} {ddl}"))
                added.append(f"{table.name}.{column.name}")
    return added


def advance_sequence(conn: Any, table: str, column: str, value: int) -> None:
    """PostgreSQL: move the id sequence of ``table.column`` to ``value``, so the next row made
    there does not collide with rows copied in with their ids (``logharbor migrate``)."""
    conn.execute(text("SELECT setval(pg_get_serial_sequence(:t, :c), :v)"),
                 {"t": table, "c": column, "v": value})
