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
from logharbor.server.store.attributes import with_settings
from logharbor.server.store.base import QueryCancelled, StoreError, StoreStats, TierView, schema_sql
from logharbor.server.store.gate import FairGate
from logharbor.server.store.patterns import logs_migrations, patterns_ddl, patterns_table_name
from logharbor.server.store.sqlsafe import quote_identifier

__all__ = ["EmbeddedStore"]

_TOKEN_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
#: engine error codes that mean "stopped by a limit we set", shown as a cancelled query
_LIMIT_CODES = ("Code: 159.", "Code: 241.", "Code: 158.", "Code: 396.", "Code: 307.")


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"})


def _quote_element(value: Any) -> str:
    """One array element in ClickHouse's quoted text form."""
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    raise StoreError(f"cannot pass a {type(value).__name__} inside an array parameter")


def encode_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters as the engine reads them: in *escaped* text form.

    chDB (like ClickHouse's ``param_`` values) unescapes parameter text before parsing it as the
    parameter's type, so a backslash, tab or newline in a user's value would otherwise change
    meaning (``\\b`` in a regex became a backspace). Strings are escaped; lists become array
    literals with each element quoted (arrays are read as literals, not unescaped first).
    Callers pass plain values.
    """
    out: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, str):
            out[name] = value.translate(_ESCAPES)
        elif isinstance(value, list | tuple):
            # an array parameter is read as an array literal directly: quoting is all it needs
            out[name] = "[" + ",".join(_quote_element(v) for v in value) + "]"
        else:
            out[name] = value
    return out


def _settings_clause(settings: Mapping[str, Any] | None) -> str:
    """`SETTINGS k = v` for engine settings chosen by the server (names checked, values numeric)."""
    if not settings:
        return ""
    parts = []
    for name, value in settings.items():
        if not name.replace("_", "").isalnum():
            raise StoreError(f"bad setting name {name!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise StoreError(f"setting {name} must be a number")
        parts.append(f"{name} = {value!r}")
    return " SETTINGS " + ", ".join(parts)


class EmbeddedStore(TierView):
    """A :class:`~logharbor.server.store.base.Store` on chDB."""

    def __init__(self, path: str | Path, *, table: str = "logs", readers: int = 2,
                 sealer: Sealer | None = None, gate: FairGate | None = None) -> None:
        self.path = Path(path)
        self.sealer = sealer
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
        self._session: Any = None
        self._insert_lock = threading.Lock()
        self._pool: queue.Queue[Any] = queue.Queue()
        self._connections: list[Any] = []

    def open(self) -> None:
        import chdb
        from chdb import session

        existed = self.path.exists() and any(self.path.iterdir())
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
        target = with_settings(str(self.path))
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
            target = with_settings(f"file:{self.path}?config-file={config}")
        # later connections (a reader replaced after a failed query) join the engine that is
        # already running with this config; the config file itself is gone by then
        try:
            # one connection writes (a streaming insert blocks its connection), the others read
            self._session = session.Session(target)
            self._check_policy()
            policy = "logharbor_sealed" if self.sealer is not None else None
            self._session.query(schema_sql(self.table_name, storage_policy=policy))
            settings = "non_replicated_deduplication_window = 10000" + (
                f", storage_policy = '{policy}'" if policy else "")
            for statement in [*logs_migrations(self.table_name),
                              *patterns_ddl(self.table_name, self.patterns_name, settings=settings)]:
                self._session.query(statement)
            for _ in range(self.readers):
                conn = chdb.connect(target)
                self._connections.append(conn)
                self._pool.put(conn)
        finally:
            if config_dir is not None:
                shutil.rmtree(config_dir, ignore_errors=True)

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

    def insert(self, rows: bytes, *, dedup_token: str) -> int:
        if not dedup_token or not _TOKEN_OK.issuperset(dedup_token):
            raise StoreError(f"bad deduplication token {dedup_token!r}")
        # the second setting: a replayed batch must not count twice in the patterns view either
        sql = (f"INSERT INTO {self.hot_table} SETTINGS insert_deduplication_token = '{dedup_token}', "
               "deduplicate_blocks_in_dependent_materialized_views = 1")
        with self._insert_lock:
            try:
                with self._session.send_insert(sql, "JSONEachRow") as inserter:
                    inserter.append(rows)
                    result = inserter.finish()
            except RuntimeError as exc:
                raise StoreError(str(exc)) from exc
        return int(getattr(result, "rows_written", 0))

    def insert_patterns(self, rows: bytes, *, dedup_token: str) -> None:
        """Insert template rows (JSONEachRow) into the patterns table, deduplicated by token."""
        if not dedup_token or not _TOKEN_OK.issuperset(dedup_token):
            raise StoreError(f"bad deduplication token {dedup_token!r}")
        table = quote_identifier(self.patterns_name)
        sql = f"INSERT INTO {table} SETTINGS insert_deduplication_token = '{dedup_token}'"
        with self._insert_lock:
            try:
                with self._session.send_insert(sql, "JSONEachRow") as inserter:
                    inserter.append(rows)
                    inserter.finish()
            except RuntimeError as exc:
                raise StoreError(str(exc)) from exc

    def query(
        self, sql: str, params: Mapping[str, Any], *, settings: Mapping[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        with self.gate.slot(settings) as effective:
            text = sql + _settings_clause(effective)
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
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Rows plus what the engine read (``rows_read``, ``bytes_read``, ``elapsed``)."""
        with self.gate.slot(settings) as effective:
            text = sql + _settings_clause(effective)
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
            text = sql + _settings_clause(effective)
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
        with self._insert_lock:
            try:
                self._session.query(sql, "JSONEachRow", params=encode_params(params or {}))
            except RuntimeError as exc:
                raise StoreError(str(exc)) from exc


def _classify(exc: RuntimeError) -> StoreError:
    text = str(exc)
    if any(code in text for code in _LIMIT_CODES):
        return QueryCancelled(text)
    return StoreError(text)
