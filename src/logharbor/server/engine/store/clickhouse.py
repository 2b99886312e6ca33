"""The ClickHouse store: the same schema and compiled SQL as the embedded store, on a server or cluster.

``--store clickhouse://user:pass@host:8123/db?cluster=NAME`` (``clickhouses://`` for HTTPS). It
talks HTTP through clickhouse-connect. Without ``cluster`` the logs table is one ``MergeTree``, the
exact statement the embedded store runs. With a cluster, every DDL runs ``ON CLUSTER``: the rows
live in ``<table>_local`` (``ReplicatedMergeTree``, one replica set per shard) and ``<table>`` is a
``Distributed`` table over them, sharded by ``cityHash64(tenant, service, trace_id)`` so every
record of one request lands on one shard (a trace lookup reads one shard's granules). Queries
name ``<table>``, so the compiled SQL is the embedded store's, unchanged: everything that differs
between the two engines is in this module.

Inserts go through the Distributed table in the foreground (``distributed_foreground_insert``),
so when :meth:`ClickHouseStore.insert` returns the rows are on their shards and the batcher may
release its WAL range; the WAL range is also the ``insert_deduplication_token``, which each
shard's (Replicated)MergeTree keeps in its deduplication window, so a replayed batch is a no-op.
Servers side by side each have their own WAL, whose positions start alike, so every token is
prefixed with the server's writer id (``writer.id`` in its data directory).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from logharbor.durable import write_atomic
from logharbor.server.engine.store.attributes import ENGINE_SETTINGS, INSERT_SETTINGS
from logharbor.server.engine.store.attrmigrate import (
    TableAccess,
    migrate_attributes,
    needs_migration,
    upgrade_rows,
)
from logharbor.server.engine.store.base import QueryCancelled, StoreError, StoreStats, TierView, schema_sql
from logharbor.server.engine.store.batches import (
    InsertPlan,
    count_sql,
    days_sql,
    mark_rows_counted,
    reading_back,
)
from logharbor.server.engine.store.gate import FairGate
from logharbor.server.engine.store.migrations import (
    Migration,
    add_index,
    check_columns,
    logs_migrations,
    missing,
)
from logharbor.server.engine.store.patterns import patterns_ddl, patterns_migrations, patterns_table_name
from logharbor.server.engine.store.sql.tail import BATCH_TABLE
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.types import EngineSettings, QueryStats, Row, SqlParams

__all__ = ["ClickHouseStore", "ClickHouseURL", "parse_clickhouse_url", "writer_id_for"]

_TOKEN_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
#: server error codes that mean "stopped by a limit we set" (timeout, memory, rows, bytes)
_LIMIT_CODES = ("159", "241", "158", "396", "307")
_CODE = re.compile(r"\bcode: (\d+)", re.IGNORECASE)
_SHARDING_KEY = "cityHash64(tenant, service, trace_id)"
#: an insert needs this much free disk on the server (plus twice its size), or it is refused
_MIN_FREE_TO_INSERT = 16 * 1024 * 1024
#: rows per insert block: above any batch, so each partition of a batch is one part, whole or absent
_BLOCK_ROWS = 16 * 1024 * 1024
_REPLICA_PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
_OBSERVED_INDEX = "idx_observed observed_timestamp TYPE minmax GRANULARITY 1"
#: the external table a tail round's rows are sent as (run_on_rows)
_EXTERNAL_ROWS = "lh_tail_rows"


@dataclass(frozen=True)
class ClickHouseURL:
    """The parts of a ``clickhouse://`` store URL."""

    host: str
    port: int
    user: str
    password: str
    database: str
    cluster: str | None
    secure: bool
    compress: str | bool

    def redacted(self) -> str:
        """The URL without its password, for logs and errors."""
        scheme = "clickhouses" if self.secure else "clickhouse"
        cluster = f"?cluster={self.cluster}" if self.cluster else ""
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.database}{cluster}"


def parse_clickhouse_url(url: str) -> ClickHouseURL:
    """Read ``clickhouse[s]://user:pass@host:port/db?cluster=NAME&compress=zstd``; errors name the part."""
    parts = urlsplit(url)
    if parts.scheme not in ("clickhouse", "clickhouses"):
        raise StoreError(f"store URL must start with clickhouse:// or clickhouses://, not {parts.scheme}://")
    if not parts.hostname:
        raise StoreError("store URL has no host")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"cluster", "compress"}
    if unknown:
        raise StoreError(f"store URL: unknown parameter(s) {', '.join(sorted(unknown))}")
    database = unquote(parts.path.lstrip("/")) or "default"
    compress: str | bool = query.get("compress", "zstd")
    if compress in ("0", "false", "none", "off"):
        compress = False
    secure = parts.scheme == "clickhouses"
    try:
        port = parts.port or (8443 if secure else 8123)
    except ValueError as exc:
        raise StoreError(f"store URL: bad port ({exc})") from None
    return ClickHouseURL(host=parts.hostname, port=port, user=unquote(parts.username or "default"),
                         password=unquote(parts.password or ""), database=database,
                         cluster=query.get("cluster") or None, secure=secure, compress=compress)


def writer_id_for(data_dir: Path) -> str:
    """This server's writer id, kept in its data directory (stable across restarts, so a batch
    replayed after a crash carries the token it had the first time)."""
    path = data_dir / "writer.id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        value = uuid.uuid4().hex
        write_atomic(path, (value + "\n").encode())
        return value


def _params(params: Mapping[str, Any]) -> SqlParams | None:
    """Plain values, as every store takes them; clickhouse-connect writes them in the escaped
    text form ClickHouse reads ``param_`` values in (what the embedded store's encode_params does)."""
    return dict(params) or None


def _string_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class ClickHouseStore(TierView):
    """A :class:`~logharbor.server.engine.store.base.Store` on a ClickHouse server or cluster over HTTP."""

    # expose_view (TierView) is not ``ON CLUSTER``: the retention tiers the view reads (the warm
    # table) are created through :meth:`execute` on the node this server talks to, so the view
    # lives beside them there (a view created on nodes without them would fail the whole DDL).

    def __init__(self, url: str, *, table: str = "logs", writer_id: str = "w", connect_timeout_s: int = 10,
                 receive_timeout_s: int = 300, gate: FairGate | None = None) -> None:
        if not writer_id or not _TOKEN_OK.issuperset(writer_id):
            raise StoreError(f"bad writer id {writer_id!r}")
        self.url = parse_clickhouse_url(url)
        #: prefixed to every deduplication token: two servers' WAL ranges must not look alike
        self.writer_id = writer_id
        self.cluster = self.url.cluster
        self.database = self.url.database
        self.table_name = table
        self.table = quote_identifier(table)
        #: the table inserts go to (``table`` may later name a read view, as in the embedded store)
        self.hot_table = self.table
        #: where the rows are stored: the replicated local table on a cluster, else the table itself
        self.local_name = f"{table}_local" if self.cluster else table
        #: where a row goes on a cluster: every record of one request on one shard
        self.sharding_key = _SHARDING_KEY
        #: the patterns table (store/patterns.py): read and written by this name
        self.patterns_name = patterns_table_name(table)
        self.patterns_local = f"{self.patterns_name}_local" if self.cluster else self.patterns_name
        #: no free-text values table here (store/freetext.py): a search reads every field term
        self.free_text_name: str | None = None
        #: no encrypted disk and no local data folder: the ClickHouse server owns both
        self.storage_policy: str | None = None
        self.path: Path | None = None
        #: rows given as one parameter travel as a form field, which ClickHouse caps
        #: (``http_max_field_value_size``, 128 KiB by default): callers cut them to this size (a
        #: tail round's rows go as external data instead, :meth:`run_on_rows`, in one piece)
        self.rows_batch_limit: int | None = 96 * 1024
        self._timeouts = (connect_timeout_s, receive_timeout_s)
        #: every read takes a slot first: fair between keys, timed by the request's budget
        self.gate = gate or FairGate(8)
        self._client: Any = None
        self._write_lock = threading.Lock()
        self._plan = InsertPlan()

    # ----------------------------------------------------------------------------- connection

    def _connect(self, database: str) -> Any:
        import clickhouse_connect

        connect, receive = self._timeouts
        try:
            client = clickhouse_connect.get_client(
                host=self.url.host, port=self.url.port, username=self.url.user, password=self.url.password,
                database=database, secure=self.url.secure, compress=self.url.compress,
                connect_timeout=connect, send_receive_timeout=receive,
                # one client serves every thread: a server session would serialize (and refuse) them
                autogenerate_session_id=False, query_retries=2,
                # parameters in the body: a tail round passes a whole ingest batch as one parameter
                form_encode_query_params=True,
                # every request reads attribute JSON the same way (store/attributes.py)
                settings=dict(ENGINE_SETTINGS))
        except Exception as exc:
            raise StoreError(f"cannot connect to {self.url.redacted()}: {exc}") from exc
        missing = [name for name in ENGINE_SETTINGS if name not in (client.server_settings or {})]
        if missing:
            client.close()
            raise StoreError(f"{self.url.redacted()} is ClickHouse {client.server_version}, which lacks the "
                             f"setting(s) {', '.join(missing)}; logharbor needs ClickHouse 25.8 or later "
                             "(dotted attribute keys would otherwise collide)")
        return client

    def local_logs_ddl(self, name: str) -> list[str]:
        """The statements making a logs table ``name`` where rows are stored: on a cluster
        replicated on every node (``ON CLUSTER``), at the replica path named after it."""
        create = schema_sql(name, f"ReplicatedMergeTree({_REPLICA_PATH})" if self.cluster else "MergeTree")
        head = f"CREATE TABLE IF NOT EXISTS {quote_identifier(name)}"
        return [create.replace(head, head + self._on_cluster(), 1),
                add_index(name, _OBSERVED_INDEX, self._on_cluster()).sql]

    def _on_cluster(self) -> str:
        return f" ON CLUSTER {quote_identifier(self.cluster)}" if self.cluster else ""

    def ddl(self) -> list[str]:
        """The statements :meth:`open` runs, in order (shown by ``logharbor migrate --dry-run`` too);
        on a single server the migrations among them run only when still missing."""
        return [str(statement) for statement in self._ddl_plan()]

    def _ddl_plan(self) -> list[str | Migration]:
        local = quote_identifier(self.local_name)
        # the tail feed (servers side by side) reads new rows by receive time: let it skip the rest
        observed = add_index(self.local_name, _OBSERVED_INDEX, self._on_cluster())
        migrate = logs_migrations(self.local_name, self._on_cluster())
        if not self.cluster:
            return [schema_sql(self.local_name), observed, *migrate,
                    *patterns_ddl(self.local_name, self.patterns_local),
                    *patterns_migrations(self.patterns_local)]
        create = self.local_logs_ddl(self.local_name)[0]
        distributed = (
            f"CREATE TABLE IF NOT EXISTS {self.table}{self._on_cluster()} AS {local} "
            f"ENGINE = Distributed({_string_literal(self.cluster)}, {_string_literal(self.database)}, "
            f"{_string_literal(self.local_name)}, {self.sharding_key})")
        # the Distributed table has the columns it had when it was created: add the new ones too
        migrate_dist = [m for m in logs_migrations(self.table_name, self._on_cluster()) if m.kind == "column"]
        # patterns: a replicated table per shard fed by a view on that shard's rows, read through
        # a Distributed table (readers group by key, so a pattern on several shards adds up)
        patterns_local = quote_identifier(self.patterns_local)
        patterns = patterns_ddl(self.local_name, self.patterns_local,
                                engine=f"ReplicatedAggregatingMergeTree({_REPLICA_PATH})",
                                on_cluster=self._on_cluster())
        patterns_dist = (
            f"CREATE TABLE IF NOT EXISTS {quote_identifier(self.patterns_name)}{self._on_cluster()} "
            f"AS {patterns_local} ENGINE = Distributed({_string_literal(self.cluster)}, "
            f"{_string_literal(self.database)}, {_string_literal(self.patterns_local)}, "
            "cityHash64(tenant, service, pattern_id))")
        return [create, observed, *migrate, distributed, *migrate_dist, *patterns,
                *patterns_migrations(self.patterns_local, self._on_cluster()), patterns_dist,
                *patterns_migrations(self.patterns_name, self._on_cluster())]

    def connect(self) -> None:
        """Talk to the database without creating or changing anything (``logharbor migrate``)."""
        if self._client is None:
            self._client = self._connect(self.database)

    def open(self) -> None:
        bootstrap = self._connect("default")
        try:
            database = quote_identifier(self.database)
            bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {database}{self._on_cluster()}")
        except Exception as exc:
            raise _classify(exc) from exc
        finally:
            bootstrap.close()
        self.connect()
        plan = self._ddl_plan()
        # on one server, a migration already applied is skipped (a needless ALTER rewrites the
        # table's metadata file); ON CLUSTER ones always run, every node must get them, except a
        # codec: it lives in the replicated table's shared metadata, so this node's says it is set
        migrations = [m for m in plan if isinstance(m, Migration)]
        checked = [m for m in migrations if m.kind == "codec" or not self.cluster]
        done = set(checked) - set(missing(self.query, checked, self.database))
        for statement in plan:
            if isinstance(statement, Migration) and statement in done:
                continue
            self.execute(str(statement))
        self._migrate_attributes()
        # every table an insert goes through has every column the encoder writes (else say so now)
        for name in dict.fromkeys((self.local_name, self.table_name)):
            check_columns(self.query, name, self.database)

    def _migrate_attributes(self) -> None:
        """A table of an older release (attributes JSON) rewritten as text (store/attrmigrate.py),
        then the patterns view made again (the migration drops it before its swap)."""
        access = TableAccess(read=self.query, run=self.execute, insert=self.load_rows,
                             create=self._create_logs, database=self.database)
        if self.cluster:  # converted by 'logharbor migrate' (store/clusterconvert.py), not at start
            from logharbor.server.engine.store.clusterconvert import ClusterConversion

            if ClusterConversion(self).needed():
                raise StoreError(
                    f"the logs table {self.local_name!r} on cluster {self.cluster!r} still has attributes "
                    "JSON, or its conversion was left part way; with every server of the cluster stopped, "
                    f"run: logharbor migrate --to '{self.url.redacted()}' --table {self.table_name} "
                    "(with the password in the URL), then start the servers again")
            return
        if not needs_migration(access, self.local_name):
            migrate_attributes(access, self.local_name)  # drops a copy left by a crash after its swap
            return
        migrate_attributes(access, self.local_name, patterns_view=self.patterns_local + "_mv")
        for statement in patterns_ddl(self.local_name, self.patterns_local):
            self.execute(statement)

    def _create_logs(self, name: str) -> list[str]:
        """The text layout's logs table ``name`` with this store's extra index."""
        return [schema_sql(name), add_index(name, _OBSERVED_INDEX).sql]

    def load_rows(self, table: str, rows: bytes) -> None:
        """Insert JSONEachRow ``rows`` into ``table`` (quoted) as the logs table gets them (an
        unknown field is an error; attributes objects kept as text): migrations copy with it."""
        settings: EngineSettings = {"insert_deduplicate": 0, **INSERT_SETTINGS}
        if self.cluster:
            settings["distributed_foreground_insert"] = 1  # on the shards before we return
        with self._write_lock:
            try:
                self._client.raw_insert(table, None, rows, fmt="JSONEachRow", settings=settings)
            except Exception as exc:
                raise _classify(exc) from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # ----------------------------------------------------------------------------- the Store interface

    def insert(self, rows: bytes, *, dedup_token: str, retry: bool = False) -> int:
        """Insert what the store does not hold yet of this batch, then count back the rows stored
        under this server's token (see store/batches.py and the embedded store): the count is
        what the caller may trust, not the server's summary. A first attempt inserts at once; a
        ``retry`` counts first and inserts only the partitions still missing."""
        if not dedup_token or not _TOKEN_OK.issuperset(dedup_token):
            raise StoreError(f"bad deduplication token {dedup_token!r}")
        token = f"{self.writer_id}-{dedup_token}"
        try:
            marked, expected = mark_rows_counted(upgrade_rows(rows), token)
        except ValueError as exc:
            raise StoreError(str(exc)) from exc
        with self._write_lock:  # retention's statements on this server wait for the count
            if not retry and not self._plan.tried(token):
                self._raw_insert(marked, token, expected)
                counted = self._count(token)
                if counted >= expected:
                    return counted
            stored = self._count(token)
            if stored >= expected:
                return stored
            todo = marked
            if stored:
                with reading_back():
                    by_day = self._rows(days_sql(self.hot_table), {"batch": token})
                days = {int(r["d"]): int(r["n"]) for r in by_day}
                try:
                    todo = InsertPlan.missing_rows(marked, days)
                except ValueError as exc:
                    raise StoreError(f"batch {token}: {exc}") from exc
            self._raw_insert(todo, token, expected)
            return self._count(token)

    def _raw_insert(self, rows: bytes, token: str, expected: int) -> None:
        settings: EngineSettings = {
            "insert_deduplication_token": self._plan.token_for(token),
            # a replayed batch must not count twice in the patterns view
            "deduplicate_blocks_in_dependent_materialized_views": 1,
            "min_free_disk_bytes_to_perform_insert": _MIN_FREE_TO_INSERT + 2 * len(rows),
            "max_insert_block_size": max(_BLOCK_ROWS, expected),
            # an unknown field fails the insert (not dropped); objects stored as their text
            **INSERT_SETTINGS}
        if self.cluster:
            settings["distributed_foreground_insert"] = 1  # on the shards before we return
        try:
            self._client.raw_insert(self.hot_table, None, rows, fmt="JSONEachRow", settings=settings)
        except Exception as exc:
            raise _classify(exc) from exc

    def _rows(self, sql: str, params: Mapping[str, Any]) -> list[Row]:
        try:
            data = self._client.raw_query(sql, parameters=dict(params), fmt="JSONEachRow")
        except Exception as exc:
            raise _classify(exc) from exc
        return [orjson.loads(line) for line in data.splitlines() if line]

    def _count(self, token: str) -> int:
        with reading_back():  # its error is the store's state, never a refusal of the rows
            rows = self._rows(count_sql(self.hot_table), {"batch": token})
        return int(rows[0]["n"]) if rows else 0

    def insert_patterns(self, rows: bytes, *, dedup_token: str) -> None:
        """Insert template rows (JSONEachRow) into the patterns table, deduplicated by token (a
        retry takes a fresh one: a template row twice is harmless, one missing is not)."""
        if not dedup_token or not _TOKEN_OK.issuperset(dedup_token):
            raise StoreError(f"bad deduplication token {dedup_token!r}")
        settings: EngineSettings = {
            "insert_deduplication_token": self._plan.token_for(f"{self.writer_id}-{dedup_token}")}
        if self.cluster:
            settings["distributed_foreground_insert"] = 1
        try:
            self._client.raw_insert(quote_identifier(self.patterns_name), None, rows, fmt="JSONEachRow",
                                    settings=settings)
        except Exception as exc:
            raise _classify(exc) from exc

    def query(self, sql: str, params: Mapping[str, Any], *, settings: Mapping[str, Any] | None = None
              ) -> list[Row]:
        self.check_schema_change(sql)
        with self.gate.slot(settings) as effective:
            try:
                data = self._client.raw_query(sql, parameters=_params(params), fmt="JSONEachRow",
                                              settings=effective or None)
            except Exception as exc:
                raise _classify(exc) from exc
        return [orjson.loads(line) for line in data.splitlines() if line]

    def query_with_stats(self, sql: str, params: Mapping[str, Any], *,
                         settings: Mapping[str, Any] | None = None
                         ) -> tuple[list[Row], QueryStats]:
        """Rows plus what the engine read (``rows_read``, ``bytes_read``, ``elapsed``): the
        ``JSON`` output format carries them, as on the embedded store; on a cluster they add up
        the shards' reads."""
        with self.gate.slot(settings) as effective:
            try:
                data = self._client.raw_query(sql, parameters=_params(params), fmt="JSON",
                                              settings=effective or None)
            except Exception as exc:
                raise _classify(exc) from exc
        answer = orjson.loads(data) if data.strip() else {}
        stats = answer.get("statistics") or {}
        return answer.get("data", []), {"rows_read": stats.get("rows_read"),
                                        "bytes_read": stats.get("bytes_read"),
                                        "elapsed": stats.get("elapsed")}

    def stream(self, sql: str, params: Mapping[str, Any], *, settings: Mapping[str, Any] | None = None
               ) -> Iterator[bytes]:
        with self.gate.slot(settings) as effective:  # held while the consumer reads
            try:
                chunks = self._client.raw_stream(sql, parameters=_params(params), fmt="JSONEachRow",
                                                 settings=effective or None)
                for chunk in chunks:
                    if chunk:
                        yield bytes(chunk)
            except StoreError:
                raise
            except Exception as exc:
                raise _classify(exc) from exc

    def run_on_rows(self, sql: str, params: Mapping[str, Any], *,
                    settings: Mapping[str, Any] | None = None) -> list[Row]:
        """A SELECT over rows given as parameters (the live tail's filter), as any query (it takes
        a read slot). The rows (``tail_rows``, read by the tail SQL's BATCH_TABLE) travel as
        external data, a file of the request that the query reads as a table: a form field is
        capped at 128 KiB (``http_max_field_value_size``), which one large record passes, and a
        round that failed so was lost to every live tail client."""
        if BATCH_TABLE not in sql or "tail_rows" not in params:
            return self.query(sql, params, settings=settings)
        from clickhouse_connect.driver.external import ExternalData

        rows = str(params["tail_rows"]).encode()
        external = ExternalData(file_name=_EXTERNAL_ROWS, data=rows, fmt="JSONEachRow",
                                structure=str(params["tail_structure"]))
        rest = {k: v for k, v in params.items() if k not in ("tail_rows", "tail_structure")}
        text = sql.replace(BATCH_TABLE, quote_identifier(_EXTERNAL_ROWS))
        with self.gate.slot(settings) as effective:
            try:
                data = self._client.raw_query(text, parameters=_params(rest), fmt="JSONEachRow",
                                              settings=effective or None, external_data=external)
            except Exception as exc:
                raise _classify(exc) from exc
        return [orjson.loads(line) for line in data.splitlines() if line]

    def stats(self) -> StoreStats:
        source = f"cluster({_string_literal(self.cluster)}, system.parts)" if self.cluster else "system.parts"
        rows = self.query(
            "SELECT sum(rows) AS rows, sum(bytes_on_disk) AS disk, "  # noqa: S608 - source is quoted above
            f"sum(data_uncompressed_bytes) AS raw FROM {source} "
            "WHERE active AND database = {db:String} AND table = {t:String}",
            {"db": self.database, "t": self.local_name})
        row = rows[0] if rows else {}
        return StoreStats(int(row.get("rows") or 0), int(row.get("disk") or 0), int(row.get("raw") or 0))

    # ------------------------------------------------------------------ what retention and tools use

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run one statement (DDL, INSERT … SELECT, DELETE); no rows come back."""
        self.check_schema_change(sql)
        with self._write_lock:
            try:
                self._client.command(sql, parameters=_params(params or {}))
            except Exception as exc:
                raise _classify(exc) from exc

    def set_merges(self, enabled: bool) -> None:
        """Nothing: the ClickHouse server watches its own disk (the batcher's merge brake is for
        the embedded engine, whose disk is this machine's)."""

    def optimize(self) -> None:
        """Merge parts now (benchmarks and tests measure the steady state)."""
        self.execute(f"OPTIMIZE TABLE {quote_identifier(self.local_name)}{self._on_cluster()} FINAL")


def _classify(exc: Exception) -> StoreError:
    """A clickhouse-connect error as a StoreError; over-budget queries as QueryCancelled."""
    text = str(exc)
    code = _CODE.search(text)
    if code and code.group(1) in _LIMIT_CODES:
        return QueryCancelled(text)
    return StoreError(text)
