"""The embedded store: ClickHouse in-process through chDB, data under the server's data directory.

chDB lets one process own one data path, so the server owns it; the engine runs queries in C++
with the GIL released, so a long query does not stall ingest. Inserts carry a deduplication
token (the WAL range they came from), and the table keeps a window of recent tokens on disk, so a
batch replayed after a crash is not stored twice.
"""

from __future__ import annotations

import os
import queue
import shutil
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from logharbor.sealing import Sealer
from logharbor.server.diskspace import free_bytes
from logharbor.server.engine.store.attributes import INSERT_SETTINGS, with_settings
from logharbor.server.engine.store.attrmigrate import TableAccess, migrate_attributes, upgrade_rows
from logharbor.server.engine.store.base import (
    ERASURE_SETTINGS,
    QueryCancelled,
    StoreError,
    StoreStats,
    TierView,
    schema_sql,
    settings_text,
)
from logharbor.server.engine.store.batches import (
    InsertPlan,
    count_sql,
    days_sql,
    mark_rows_counted,
    reading_back,
)
from logharbor.server.engine.store.broken import set_aside_broken_part
from logharbor.server.engine.store.chparams import encode_params, settings_clause
from logharbor.server.engine.store.freetext import free_text_ddl, free_text_table_name, view_definition
from logharbor.server.engine.store.gate import FairGate
from logharbor.server.engine.store.migrations import check_columns, logs_migrations, missing
from logharbor.server.engine.store.patterns import patterns_ddl, patterns_migrations, patterns_table_name
from logharbor.server.engine.store.sql.tail import BATCH_FILE, BATCH_TABLE
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.engine.store.startcheck import check_before_open, find_damaged
from logharbor.types import QueryStats, Row, SqlParams

__all__ = ["DEFAULT_INDEX_CACHE_BYTES", "EmbeddedStore"]

_TOKEN_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
#: engine error codes that mean "stopped by a limit we set", shown as a cancelled query
_LIMIT_CODES = ("Code: 159.", "Code: 241.", "Code: 158.", "Code: 396.", "Code: 307.")


#: an insert needs this much free disk (plus twice its size) or the engine refuses it
_MIN_FREE_TO_INSERT = 16 * 1024 * 1024
#: a replayed batch must not count twice in the patterns view either; an unknown field fails the
#: insert instead of being dropped, and attributes objects are stored as their text
#: (store/attributes.py INSERT_SETTINGS)
_LOGS_INSERT = ", ".join(["deduplicate_blocks_in_dependent_materialized_views = 1",
                          *(f"{name} = {int(value)}" for name, value in INSERT_SETTINGS.items())])
#: rows per insert block: above any batch, so each partition of a batch is one part, whole or absent
_BLOCK_ROWS = 16 * 1024 * 1024

class _OnSession:
    """``query`` on the writing session, for start-up checks made before the readers exist."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def query(self, sql: str, params: Mapping[str, Any], *, settings: Mapping[str, Any] | None = None
              ) -> list[Row]:
        data = self.session.query(sql + settings_clause(settings), "JSONEachRow",
                                  params=encode_params(params)).bytes()
        return [orjson.loads(line) for line in data.splitlines() if line]


#: the engine keeps this much of the skip indexes decompressed (LRU) between queries. Every trace
#: lookup tests the bloom filter of every granule, so without it each lookup read and decompressed
#: ~14.7 KB per 8192 rows (18 MB at 10M records: 32 ms of CPU, against 8.5–10.8 with the cache,
#: bench/README.md "Query"); a full cache costs ~2 bytes per stored row per bloom index
DEFAULT_INDEX_CACHE_BYTES = 256 * 1024 * 1024


class EmbeddedStore(TierView):
    """A :class:`~logharbor.server.engine.store.base.Store` on chDB."""

    def __init__(self, path: str | Path, *, table: str = "logs", readers: int = 2,
                 sealer: Sealer | None = None, gate: FairGate | None = None,
                 index_cache_bytes: int = DEFAULT_INDEX_CACHE_BYTES) -> None:
        self.path = Path(path)
        #: the engine's cache of decompressed skip-index granules (0: none, the engine's default)
        self.index_cache_bytes = int(index_cache_bytes)
        self.sealer = sealer
        #: warm and helper tables of an encrypted store stay on its encrypted disk too
        self.storage_policy = "logharbor_sealed" if sealer is not None else None
        #: one engine on one machine: no cluster, and its delete jobs are this server's
        self.cluster: str | None = None
        self.writer_id = "embedded"
        #: a tail round's rows travel in-process, whatever their size
        self.rows_batch_limit: int | None = None
        self.table_name = table
        self.table = quote_identifier(table)
        #: the table inserts go to; ``table`` may be a read view over several tiers (expose_view)
        self.hot_table = self.table
        self.readers = readers
        #: every read takes a slot first (fair between keys, timed by the request's budget); it
        #: never has more slots than readers, so a slot always finds a free reader
        self.gate = gate or FairGate(readers)
        if self.gate.slots > readers:
            raise ValueError(f"the read gate has {self.gate.slots} slots for {readers} readers")
        #: the table of pattern first/last seen and counts (store/patterns.py)
        self.patterns_name = patterns_table_name(table)
        #: the values a bare word's fields have held (store/freetext.py), fed by a view on inserts
        self.free_text_name: str | None = free_text_table_name(table)
        self._session: Any = None
        self._insert_lock = threading.Lock()
        self._plan = InsertPlan()
        self._pool: queue.Queue[Any] = queue.Queue()
        self._connections: list[Any] = []
        #: run_on_rows' own connection (made on first use): a tail round never waits for a reader
        self._rows_conn: Any = None
        #: the memory file run_on_rows hands its rows to the engine in (None: not made yet, or -1
        #: where the system has no memfd: then they go as a parameter)
        self._rows_fd: int | None = None
        self._rows_lock = threading.Lock()
        self._load_seq = 0

    def open(self) -> None:
        import chdb
        from chdb import session

        existed = self.path.exists() and any(self.path.iterdir())
        if existed:
            try:  # a damaged table definition stops the engine naming nothing: name it first
                check_before_open(self.path)
            except ValueError as exc:
                raise StoreError(str(exc)) from None
        self.path.mkdir(parents=True, exist_ok=True)
        marker = self.path / "ENCRYPTED"
        if existed and marker.exists() != (self.sealer is not None):
            sealed = marker.exists()
            raise StoreError(
                f"the store in {self.path} was created {'with' if sealed else 'without'} encryption; "
                f"start the server {'with' if sealed else 'without'} --encryption-key-file")
        if self.sealer is not None and not existed:
            marker.write_text("this store is on an encrypted disk; it needs its key file to open\n")
        # every connection reads attribute JSON the same way (store/attributes.py ENGINE_SETTINGS)
        target = with_settings(str(self.path)) + self._cache_settings()
        self._target = target
        config_dir = None
        if self.sealer is not None:
            # the engine reads its encrypted-disk config (with the keys) at start; the file lives
            # in a private temporary folder only until the connections are open
            config_dir = tempfile.mkdtemp(prefix="logharbor-store-")
            config = Path(config_dir) / "config.xml"
            fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(self.sealer.clickhouse_disk_xml(str(self.path / "sealed-disk")))
            target = with_settings(f"file:{self.path}?config-file={config}") + self._cache_settings()
        # later connections (a reader replaced after a failed query) join the engine that is
        # already running with this config; the config file itself is gone by then
        try:
            # one connection writes (a streaming insert blocks its connection), the others read
            self._session = session.Session(target)
            self._check_policy()
            policy = "logharbor_sealed" if self.sealer is not None else None
            # the erasure settings at CREATE: set later by ALTER, the engine's first cleanup of a
            # new table still came after its default period (store/base.py ERASURE_SETTINGS)
            self._session.query(schema_sql(self.table_name, storage_policy=policy, settings=ERASURE_SETTINGS))
            settings = "non_replicated_deduplication_window = 10000, " + settings_text(ERASURE_SETTINGS) + (
                f", storage_policy = '{policy}'" if policy else "")
            # only what is missing: a needless ALTER rewrites the table's metadata file
            on_session = _OnSession(self._session).query
            for migration in missing(on_session, logs_migrations(self.table_name)):
                self._session.query(migration.sql)
            # a table of an older release (attributes JSON): rewritten as text, crash-safe
            migrate_attributes(self._migration_access(on_session, policy), self.table_name,
                               patterns_view=self.patterns_name + "_mv")
            check_columns(on_session, self.table_name)
            for statement in patterns_ddl(self.table_name, self.patterns_name, settings=settings):
                self._session.query(statement)
            for migration in missing(on_session, patterns_migrations(self.patterns_name)):
                self._session.query(migration.sql)  # a patterns table made by the first release
            # before any insert: from here on every inserted row's values reach the table (rows
            # stored before are read in by the tiers at start, store/tiers.py)
            values = free_text_table_name(self.table_name)
            for statement in free_text_ddl(self.table_name, values, view_definition(on_session, values),
                                           storage_policy=policy):
                self._session.query(statement)
            self.check_definitions()
            for _ in range(self.readers):
                conn = chdb.connect(target)
                self._connections.append(conn)
                self._pool.put(conn)
        finally:
            if config_dir is not None:
                shutil.rmtree(config_dir, ignore_errors=True)

    def _cache_settings(self) -> str:
        """The engine's index cache, a server setting given with the connection string."""
        return f"&index_uncompressed_cache_size={self.index_cache_bytes}"

    def _migration_access(self, read: Any, policy: str | None) -> TableAccess:
        """What store/attrmigrate.py needs, on the writing session (no readers exist yet)."""
        return TableAccess(read=read, run=self._run_on_session, insert=self.load_rows,
                           create=lambda name: [schema_sql(name, storage_policy=policy)])

    def load_rows(self, table: str, rows: bytes) -> None:
        """Insert JSONEachRow ``rows`` into ``table`` (quoted) as the logs table gets them (an
        unknown field is an error; attributes objects kept as text): migrations copy with it."""
        self._load_seq += 1
        with self._insert_lock:
            self._insert_rows(table, rows, f"load-{os.getpid()}-{id(self)}-{self._load_seq}", _LOGS_INSERT)

    def check_definitions(self) -> None:
        """After creating tables: every definition file was written whole. On a full disk the
        engine wrote them empty and said OK; stop now, naming them (the next start sets aside
        those of views and helpers, and names the others with their repair)."""
        damaged = find_damaged(self.path)
        if damaged:
            names = ", ".join(f"{d.path} ({d.table or d.database}: {d.problem})" for d in damaged)
            raise StoreError(f"no space left on device for the store's table definitions: {names}. "
                             "Free some disk, then start again")

    def free_disk_bytes(self) -> int | None:
        return free_bytes(self.path)

    def set_merges(self, enabled: bool) -> None:
        """Start or stop the engine's background merges (``SYSTEM START/STOP MERGES``).

        On a nearly full disk a merge could be committed with empty files (as inserts were),
        taking with it rows already stored and released from the WAL; the batcher stops merges
        while free space is low (see ``Batcher.merge_brake_bytes``) and starts them again after.
        """
        with self._insert_lock:
            try:
                self._session.query("SYSTEM START MERGES" if enabled else "SYSTEM STOP MERGES")
            except RuntimeError as exc:
                raise StoreError(str(exc)) from exc

    def _check_policy(self) -> None:
        """Refuse to mix: a store made without encryption is not silently used with it, or back."""
        rows = self._session.query(
            "SELECT storage_policy FROM system.tables "
            "WHERE database = currentDatabase() AND name = {t:String}",
            "JSONEachRow", params={"t": self.table_name}).bytes()
        if not rows.strip():
            return
        policy = orjson.loads(rows.splitlines()[0])["storage_policy"]
        sealed = policy == "logharbor_sealed"
        if sealed != (self.sealer is not None):
            raise StoreError(
                f"the store in {self.path} was created {'with' if sealed else 'without'} encryption; "
                f"start the server {'with' if sealed else 'without'} --encryption-key-file")

    def close(self) -> None:
        with self._rows_lock:
            if self._rows_conn is not None:
                self._rows_conn.close()
                self._rows_conn = None
            if self._rows_fd is not None and self._rows_fd >= 0:
                os.close(self._rows_fd)
            self._rows_fd = None
        for conn in self._connections:
            conn.close()
        self._connections.clear()
        if self._session is not None:
            self._session.close()
            self._session = None

    def _reader(self) -> Any:
        return self._pool.get(timeout=300)

    def _give_back(self, conn: Any, *, failed: bool) -> None:
        """Return a reader to the pool; after a failed query, a fresh one instead.

        A chDB connection whose query was cancelled or failed can still hold part of that
        query's output, which would come out in front of the next answer; it is not reused.
        """
        if failed:
            import chdb

            try:
                conn.close()
            except RuntimeError:
                pass
            self._connections.remove(conn)
            conn = chdb.connect(self._target)
            self._connections.append(conn)
        self._pool.put(conn)

    def insert(self, rows: bytes, *, dedup_token: str, retry: bool = False) -> int:
        """Insert what the store does not hold yet of this batch, then count back the rows stored
        under ``dedup_token`` (store/batches.py): the engine's report is not trusted (its
        streaming insert said every row was written while a full disk stored none, and on a
        full disk it committed parts whose files were empty).

        A first attempt is counted in the parts the insert made (cheap at any table size); a
        ``retry`` (or a first attempt that counts short) counts the whole table first, so a
        batch stored before (a replay after a restart) is not stored again whatever the engine's
        deduplication log kept, and only its missing partitions are inserted. Everything runs
        under the insert lock, which retention's statements take too."""
        if not dedup_token or not _TOKEN_OK.issuperset(dedup_token):
            raise StoreError(f"bad deduplication token {dedup_token!r}")
        try:
            marked, expected = mark_rows_counted(upgrade_rows(rows), dedup_token)
        except ValueError as exc:
            raise StoreError(str(exc)) from exc
        with self._insert_lock:
            if not retry and not self._plan.tried(dedup_token):
                with reading_back():
                    before = self._max_block()
                self._insert_rows(self.hot_table, marked, self._plan.token_for(dedup_token), _LOGS_INSERT)
                with reading_back():
                    parts = self._parts_after(before)
                counted = self._count(dedup_token, parts=parts)
                if counted >= expected:
                    return counted
            stored = self._count(dedup_token)
            if stored >= expected:
                return stored
            todo = marked
            if stored:
                with reading_back():
                    days = {int(r["d"]): int(r["n"]) for r in self._read_past_broken(
                        days_sql(self.hot_table), {"batch": dedup_token})}
                try:
                    todo = InsertPlan.missing_rows(marked, days)
                except ValueError as exc:
                    raise StoreError(f"batch {dedup_token}: {exc}") from exc
            self._insert_rows(self.hot_table, todo, self._plan.token_for(dedup_token), _LOGS_INSERT)
            return self._count(dedup_token)

    def _max_block(self) -> int:
        rows = self._on_session("SELECT max(max_block_number) AS b FROM system.parts WHERE "
                                "database = currentDatabase() AND table = {t:String} AND active",
                                {"t": self.table_name})
        return int(rows[0]["b"] or 0) if rows else 0

    def _parts_after(self, block: int) -> list[str]:
        """Active parts holding blocks newer than ``block``: what an insert made (or a merge of it)."""
        rows = self._on_session("SELECT name FROM system.parts WHERE database = currentDatabase() "
                                "AND table = {t:String} AND active AND max_block_number > {b:Int64}",
                                {"t": self.table_name, "b": block})
        return [str(r["name"]) for r in rows]

    def insert_patterns(self, rows: bytes, *, dedup_token: str) -> None:
        """Insert template rows (JSONEachRow) into the patterns table, deduplicated by token (a
        retry takes a fresh one: a template row twice is harmless, one missing is not)."""
        if not dedup_token or not _TOKEN_OK.issuperset(dedup_token):
            raise StoreError(f"bad deduplication token {dedup_token!r}")
        with self._insert_lock:
            self._insert_rows(quote_identifier(self.patterns_name), rows, self._plan.token_for(dedup_token))

    def _insert_rows(self, table: str, rows: bytes, token: str, settings: str = "") -> None:
        """One streaming INSERT. The engine refuses it when the disk has less free than twice
        the rows plus 16 MiB (a part written into the last bytes of a disk was committed with
        empty files). The streaming path does not raise what went wrong (that refusal
        included): the count that follows is what tells (the engine's query path, which does
        raise, cost a third more CPU per row)."""
        free = _MIN_FREE_TO_INSERT + 2 * len(rows)
        sql = (f"INSERT INTO {table} SETTINGS insert_deduplication_token = '{token}', "
               f"min_free_disk_bytes_to_perform_insert = {free}, max_insert_block_size = {_BLOCK_ROWS}"
               f"{', ' + settings if settings else ''}")
        try:
            with self._session.send_insert(sql, "JSONEachRow") as inserter:
                inserter.append(rows)
                inserter.finish()
        except RuntimeError as exc:
            raise StoreError(str(exc)) from exc

    def _on_session(self, sql: str, params: Mapping[str, Any]) -> list[Row]:
        try:
            data = self._session.query(sql, "JSONEachRow", params=encode_params(params)).bytes()
        except RuntimeError as exc:
            raise StoreError(str(exc)) from exc
        return [orjson.loads(line) for line in data.splitlines() if line]

    def _run_on_session(self, sql: str) -> None:
        try:
            self._session.query(sql)
        except RuntimeError as exc:
            raise StoreError(str(exc)) from exc

    def _count(self, token: str, *, parts: list[str] | None = None) -> int:
        """Rows under ``token`` in the hot table (only in ``parts`` when given)."""
        if parts is not None and not parts:
            return 0
        params: SqlParams = {"batch": token, **({"parts": parts} if parts is not None else {})}
        with reading_back():  # its error is the store's state, never a refusal of the rows
            rows = self._read_past_broken(count_sql(self.hot_table, in_parts=parts is not None), params)
        return int(rows[0]["n"]) if rows else 0

    def _read_past_broken(self, sql: str, params: SqlParams) -> list[Row]:
        """A read on the writing session; a part the engine wrote broken is set aside
        (store/broken.py) and the read made again."""
        for _ in range(8):
            try:
                return self._on_session(sql, params)
            except StoreError as exc:
                if not set_aside_broken_part(self._on_session, self._run_on_session, str(exc)):
                    raise
                if "parts" in params:
                    params["parts"] = [p for p in params["parts"] if p in self._parts_after(-1)]
        raise StoreError("reading the store keeps meeting broken parts")

    def query(
        self, sql: str, params: Mapping[str, Any], *, settings: Mapping[str, Any] | None = None
    ) -> list[Row]:
        self.check_schema_change(sql)
        with self.gate.slot(settings) as effective:
            text = sql + settings_clause(effective)
            conn = self._reader()
            failed = True
            try:
                data = conn.query(text, "JSONEachRow", params=encode_params(params)).bytes()
                failed = False
            except RuntimeError as exc:
                raise _classify(exc) from exc
            finally:
                self._give_back(conn, failed=failed)
        return [orjson.loads(line) for line in data.splitlines() if line]

    def query_with_stats(
        self, sql: str, params: Mapping[str, Any], *, settings: Mapping[str, Any] | None = None
    ) -> tuple[list[Row], QueryStats]:
        """Rows plus what the engine read (``rows_read``, ``bytes_read``, ``elapsed``)."""
        with self.gate.slot(settings) as effective:
            text = sql + settings_clause(effective)
            conn = self._reader()
            failed = True
            try:
                data = conn.query(text, "JSON", params=encode_params(params)).bytes()
                failed = False
            except RuntimeError as exc:
                raise _classify(exc) from exc
            finally:
                self._give_back(conn, failed=failed)
        answer = orjson.loads(data) if data.strip() else {}
        stats = answer.get("statistics") or {}
        return answer.get("data", []), {"rows_read": stats.get("rows_read"),
                                        "bytes_read": stats.get("bytes_read"),
                                        "elapsed": stats.get("elapsed")}

    def stream(
        self, sql: str, params: Mapping[str, Any], *, settings: Mapping[str, Any] | None = None
    ) -> Iterator[bytes]:
        with self.gate.slot(settings) as effective:  # held while the consumer reads
            text = sql + settings_clause(effective)
            conn = self._reader()
            failed = True
            try:
                with conn.send_query(text, "JSONEachRow", params=encode_params(params)) as stream:
                    for chunk in stream:
                        data = chunk.bytes() if hasattr(chunk, "bytes") else bytes(chunk)
                        if data:
                            yield data
                failed = False
            except RuntimeError as exc:
                raise _classify(exc) from exc
            finally:  # also when the consumer stops early (GeneratorExit): the stream is unfinished
                self._give_back(conn, failed=failed)

    def run_on_rows(self, sql: str, params: Mapping[str, Any], *,
                    settings: Mapping[str, Any] | None = None) -> list[Row]:
        """A SELECT over rows given as parameters (the live tail's filter), on a connection of its
        own that reads JSON as the store does: a round neither waits for a reader nor holds one.

        The rows (``tail_rows``, read by the tail SQL's BATCH_TABLE) reach the engine as a file in
        this process' memory (memfd) that the query reads instead (BATCH_FILE): as a parameter
        they cost ~20 µs per row of escaping here and ~12 of unescaping and literal parsing in
        the engine, against ~4 for reading and filtering them (bench/README.md "Traces and live
        tail"), which at 20k records/s made a round outlast its rows' arrival and the tail fall
        seconds behind. One thread reads (``max_threads = 1``): row numbers in file order, and a
        round takes one core at most."""
        effective = {"max_threads": 1, **(settings or {})}
        with self._rows_lock:
            if self._rows_conn is None:
                import chdb

                self._rows_conn = chdb.connect(with_settings(str(self.path)))
            rows = params.get("tail_rows")
            fd = self._rows_file() if isinstance(rows, str) and BATCH_TABLE in sql else -1
            if fd >= 0:
                _write_all(fd, rows.encode())  # type: ignore[union-attr]  # a str, checked above
                sql = sql.replace(BATCH_TABLE, BATCH_FILE)
                params = {**{k: v for k, v in params.items() if k != "tail_rows"},
                          "tail_file": f"/proc/self/fd/{fd}"}
            try:
                # a direct chDB connection reads parameters in escaped form (chparams.py)
                data = self._rows_conn.query(sql + settings_clause(effective), "JSONEachRow",
                                             params=encode_params(params)).bytes()
            except RuntimeError as exc:
                raise StoreError(str(exc)) from exc
            finally:
                if fd >= 0:
                    os.ftruncate(fd, 0)  # the rows are not kept past their round
        return [orjson.loads(line) for line in data.splitlines() if line]

    def _rows_file(self) -> int:
        """The memory file of :meth:`run_on_rows` (made once; -1 without memfd, not Linux, or
        without /proc to name it by: then the rows go as a parameter, as before)."""
        if self._rows_fd is None:
            create = getattr(os, "memfd_create", None)
            fd = create("logharbor-tail-rows", os.MFD_CLOEXEC) if create is not None else -1
            if fd >= 0 and not os.path.exists(f"/proc/self/fd/{fd}"):
                os.close(fd)
                fd = -1
            self._rows_fd = fd
        return self._rows_fd

    def stats(self) -> StoreStats:
        rows = self.query(
            "SELECT sum(rows) AS rows, sum(bytes_on_disk) AS disk, "
            "sum(data_uncompressed_bytes) AS raw FROM system.parts "
            "WHERE active AND database = currentDatabase() AND table = {t:String}",
            {"t": self.table_name},
        )
        row = rows[0] if rows else {}
        return StoreStats(int(row.get("rows") or 0), int(row.get("disk") or 0), int(row.get("raw") or 0))

    def optimize(self) -> None:
        """Merge parts now (benchmarks and tests measure the steady state)."""
        with self._insert_lock:
            self._session.query(f"OPTIMIZE TABLE {self.hot_table} FINAL")

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement (DDL, INSERT … SELECT, DELETE) on the writing connection.

        Retention moves and deletes use it: they must not interleave with a streaming insert, so
        they take the insert lock like an insert does.
        """
        self.check_schema_change(sql)
        with self._insert_lock:
            try:
                self._session.query(sql, "JSONEachRow", params=encode_params(params or {}))
            except RuntimeError as exc:
                raise StoreError(str(exc)) from exc


def _write_all(fd: int, data: bytes) -> None:
    """``data`` as the whole content of the memory file ``fd``."""
    os.ftruncate(fd, 0)
    view = memoryview(data)
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], done)


def _classify(exc: RuntimeError) -> StoreError:
    text = str(exc)
    if any(code in text for code in _LIMIT_CODES):
        return QueryCancelled(text)
    return StoreError(text)
