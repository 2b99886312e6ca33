"""The ``Store`` interface: the one way the server reads and writes records.

The embedded store (chDB) and the ClickHouse cluster store implement it with the same schema and
the same compiled SQL; what differs between them lives in their own module, never in callers.
Rows cross this interface as JSONEachRow (see :mod:`logharbor.server.engine.store.rows`), which both
engines read and write natively.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.types import QueryStats, Row

if TYPE_CHECKING:  # gate.py imports this module's errors
    from logharbor.server.engine.store.gate import FairGate

__all__ = ["RowReader", "SchemaFrozen", "Store", "StoreError", "StoreStats", "TierView", "is_schema_change",
           "schema_sql"]


class StoreError(Exception):
    """The store refused or failed an operation; the message is safe to show to a caller."""


class QueryCancelled(StoreError):
    """A query ran over its time or memory budget and was stopped by the engine."""


@dataclass(frozen=True)
class StoreStats:
    """What the store holds: rows, bytes on disk and uncompressed bytes of the logs table."""

    rows: int
    bytes_on_disk: int
    bytes_uncompressed: int


#: a query function (``Store.query`` or a connection's own before the store is open): rows as dicts
RowReader = Callable[[str, Mapping[str, Any]], list[Row]]


@runtime_checkable
class Store(Protocol):
    """Where records live: the one interface between the server's features and the engine.

    Implemented by the embedded store (chDB) and the ClickHouse store; every other part of the
    server reaches data through these members only. SQL text lives in ``engine/store/`` (named
    methods and the SQL builders under ``engine/store/sql/``) and in the query compilers, whose
    compiled queries (SQL + parameters) the store runs. Implementations must be safe to call
    from several threads.
    """

    #: what reads name, quoted: the logs table, or the tiers' read view (:meth:`expose_view`)
    table: str
    #: the logs table's own name (unquoted), for builders that derive names from it
    table_name: str
    #: the table inserts go to, quoted (``table`` may name a view over several tiers)
    hot_table: str
    #: the patterns table's name (unquoted) beside the logs table (store/patterns.py)
    patterns_name: str
    #: the table of the values a bare word's fields have held (unquoted, store/freetext.py), or
    #: None where the store keeps none (a search then reads every field term)
    free_text_name: str | None
    #: the ClickHouse cluster the tables are replicated on; None on one server and embedded
    @property
    def cluster(self) -> str | None: ...
    #: prefixed to deduplication tokens and naming whose delete jobs are whose ("embedded")
    writer_id: str
    #: the engine's storage policy for new tables ("logharbor_sealed" when encrypted at rest)
    @property
    def storage_policy(self) -> str | None: ...
    #: the store's own data folder when it is on this machine (embedded), else None
    @property
    def path(self) -> Path | None: ...
    #: every read takes a slot first (fair between keys, timed by the request's budget)
    gate: FairGate
    #: the largest rows payload :meth:`run_on_rows` takes at once; None: any size
    @property
    def rows_batch_limit(self) -> int | None: ...

    def open(self) -> None:
        """Connect and create the schema if it is missing."""

    def close(self) -> None:
        """Release the engine; pending inserts have returned before this is called."""

    def insert(self, rows: bytes, *, dedup_token: str, retry: bool = False) -> int:
        """Insert JSONEachRow ``rows`` (an insert with a token already seen stores nothing new)
        and return how many rows the store holds under ``dedup_token`` afterwards, counted back
        from the table (store/batches.py), never the engine's own report of what it wrote.
        ``retry``: the batch may have been (partly) stored before (a replay after a restart, a
        retry): the store counts first and inserts only what is missing."""

    def insert_patterns(self, rows: bytes, *, dedup_token: str) -> None:
        """Insert template rows into the patterns table (store/patterns.py), deduplicated by token."""

    def query(self, sql: str, params: Mapping[str, Any], *, settings: Mapping[str, Any] | None = None
              ) -> list[Row]:
        """Run a SELECT with every user value in ``params``; rows as dicts."""

    def query_with_stats(self, sql: str, params: Mapping[str, Any], *,
                         settings: Mapping[str, Any] | None = None
                         ) -> tuple[list[Row], QueryStats]:
        """Rows plus what the engine read (``rows_read``, ``bytes_read``, ``elapsed``)."""

    def stream(self, sql: str, params: Mapping[str, Any], *, settings: Mapping[str, Any] | None = None
               ) -> Iterator[bytes]:
        """Run a SELECT and yield JSONEachRow chunks as the engine produces them."""

    def run_on_rows(self, sql: str, params: Mapping[str, Any], *,
                    settings: Mapping[str, Any] | None = None) -> list[Row]:
        """Run a SELECT over rows passed as parameters (``engine/store/sql/tail.py`` BATCH_TABLE),
        not over a table: the live tail's filter. The embedded store runs it on a connection of
        its own (no read slot: a round must not queue behind searches); a remote store as a query."""

    def load_rows(self, table: str, rows: bytes) -> None:
        """Insert JSONEachRow ``rows`` into ``table`` (quoted), read as inserts into the logs
        table are (unknown fields refused, attributes objects as text): a migration's copy."""

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run a statement (DDL, INSERT … SELECT, DELETE, ALTER) built in ``engine/store/``: no
        rows come back. It takes the write lock, so it never interleaves with an insert."""

    def stats(self) -> StoreStats:
        """Rows and bytes of the logs table."""

    def existing_tables(self, names: Iterable[str]) -> set[str]:
        """Which of ``names`` (unquoted) are tables (or views) of the store's database."""

    def expose_view(self, name: str, select_sql: str | None) -> None:
        """Make reads of :attr:`table` go through a view named ``name`` over ``select_sql``
        (hot ∪ warm ∪ cold); None drops it and reads the hot table again."""

    def schema_change(self, what: str) -> AbstractContextManager[None]:
        """Allow definition changes in this block, after :meth:`freeze_schema` (see TierView)."""

    def freeze_schema(self) -> None:
        """From now on refuse statements that change a table's definition."""

    def set_merges(self, enabled: bool) -> None:
        """Start or stop background merges (the batcher's brake on a nearly full disk)."""

    def optimize(self) -> None:
        """Merge parts now (benchmarks and tests measure the steady state)."""


#: statements that change a table's definition (its metadata file): CREATE, DROP, RENAME,
#: ATTACH, DETACH, EXCHANGE, and ALTER … ADD/DROP/MODIFY/RENAME/COMMENT/REMOVE/CLEAR (mutations
#: such as ALTER … DELETE/UPDATE and lightweight DELETE change data, not the definition)
_SCHEMA_CHANGE = re.compile(
    r"\s*(CREATE|DROP|RENAME|ATTACH|DETACH|EXCHANGE|UNDROP)\b"
    r"|\s*ALTER\s+TABLE\s+(`(?:[^`\\]|\\.)*`|[\w.]+)(\s+ON\s+CLUSTER\s+\S+)?\s+"
    r"(ADD|DROP|MODIFY|RENAME|COMMENT|REMOVE|CLEAR)\b",
    re.IGNORECASE)


def is_schema_change(sql: str) -> bool:
    """True for a statement that rewrites a table's metadata file (see ``_SCHEMA_CHANGE``)."""
    return _SCHEMA_CHANGE.match(sql) is not None


class SchemaFrozen(StoreError):
    """A statement would change the schema after start: every table is created at start."""


#: below this much free disk a schema change after start is refused (its metadata file could be
#: written empty, and the store could not open again)
SCHEMA_CHANGE_MIN_FREE = 64 * 1024 * 1024


class TierView:
    """``expose_view`` for both stores: queries read the tiers through one view; and the freeze
    of the schema once the server has started.

    Callers compile against ``store.table``; after :meth:`expose_view` it names the view, so
    which tiers a query reads stays inside the store. Inserts always go to ``hot_table``.

    Every table is created when the server starts: a table created later, with the disk full,
    was left with an empty metadata file and the store could not open again (issue #20). After
    :meth:`freeze_schema` a statement that would change a definition raises
    :class:`SchemaFrozen` instead of running, except inside :meth:`schema_change`, which the
    two features whose design needs it use: the tiers' read view (it changes when the cold tier
    gets its first file) and a delete-by-query's memory-only helper tables. Neither holds data,
    so a damaged metadata file of theirs is set aside at the next start (store/startcheck.py).
    """

    table: str
    hot_table: str
    schema_frozen: bool = False
    _allowed = threading.local()

    def freeze_schema(self) -> None:
        """From now on refuse statements that change a table's definition."""
        self.schema_frozen = True

    def check_schema_change(self, sql: str) -> None:
        """Raise :class:`SchemaFrozen` for a definition change after :meth:`freeze_schema`."""
        if self.schema_frozen and is_schema_change(sql) and not getattr(self._allowed, "on", False):
            raise SchemaFrozen("a schema change after start was refused (every table is created "
                               f"when the server starts): {sql[:120]}")

    def free_disk_bytes(self) -> int | None:
        """Free bytes where the store keeps its metadata; None when it is not local."""
        return None

    @contextmanager
    def schema_change(self, what: str) -> Iterator[None]:
        """Allow definition changes in this block (this thread only), after checking that the
        disk has room for them: with less than ``SCHEMA_CHANGE_MIN_FREE`` free it raises a
        StoreError that says no space is left, and nothing is changed."""
        free = self.free_disk_bytes()
        if free is not None and free < SCHEMA_CHANGE_MIN_FREE:
            raise StoreError(f"no space left on device for {what}: {free} bytes free, a schema change "
                             f"needs {SCHEMA_CHANGE_MIN_FREE}; retry once the disk has room")
        before = getattr(self._allowed, "on", False)
        self._allowed.on = True
        try:
            yield
        finally:
            self._allowed.on = before

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:  # the store's own
        raise NotImplementedError

    def query(self, sql: str, params: Mapping[str, Any], *, settings: Mapping[str, Any] | None = None
              ) -> list[Row]:  # the store's own
        raise NotImplementedError

    def existing_tables(self, names: Iterable[str]) -> set[str]:
        """Which of ``names`` (unquoted) are tables (or views) of the store's database."""
        wanted = list(names)
        if not wanted:
            return set()
        rows = self.query("SELECT name FROM system.tables WHERE database = currentDatabase() "
                          "AND name IN {names:Array(String)}", {"names": wanted})
        return {str(r["name"]) for r in rows}

    def expose_view(self, name: str, select_sql: str | None) -> None:
        """Make queries read ``select_sql`` (e.g. hot ∪ warm ∪ cold) through a view named ``name``;
        ``None`` drops the view and reads the hot table again.

        The view is replaced only when its text changed (its comment holds a digest of it):
        every replacement rewrites a metadata file, and one written on a full disk was left
        empty, so the engine could not start again (issue #20).
        """
        view = quote_identifier(name)
        if select_sql is None:
            self.table = self.hot_table
            with self.schema_change(f"dropping the view {name}"):
                self.execute(f"DROP VIEW IF EXISTS {view}")
            return
        digest = hashlib.sha256(select_sql.encode()).hexdigest()[:32]
        rows = self.query("SELECT comment FROM system.tables WHERE database = currentDatabase() "
                          "AND name = {name:String}", {"name": name})
        if not rows or rows[0].get("comment") != f"logharbor:{digest}":
            with self.schema_change(f"the view {name}"):
                self.execute(f"CREATE OR REPLACE VIEW {view} AS {select_sql} COMMENT 'logharbor:{digest}'")
        self.table = view


_POLICIES = frozenset({"logharbor_sealed"})


#: Table settings a delete-by-query relies on (store/erase.py, Tiers._erasure_settings): the
#: engine removes the parts a rewrite replaced at its next cleanup, at most 2 s apart here (a
#: quiet table's cleanup backs off to that maximum, and a new table's first one comes after it:
#: 9 s at 10, measured; each is an in-memory look at the table's parts). Given at CREATE on a
#: single-server store: the engine schedules a table's cleanup with the settings it was loaded
#: with, and set by ALTER on a new table the first cleanup came after its default 30 s (a fresh
#: server's first delete waited ~35 s in its purge step). Tables made before get them by ALTER at
#: start (in effect from the start after).
ERASURE_SETTINGS: dict[str, int] = {"finished_mutations_to_keep": 1, "cleanup_delay_period": 1,
                                    "max_cleanup_delay_period": 2, "cleanup_delay_period_random_add": 0}


def settings_text(settings: Mapping[str, int]) -> str:
    """``a = 1, b = 2`` for a SETTINGS clause (integer values only)."""
    return ", ".join(f"{k} = {int(v)}" for k, v in settings.items())


def schema_sql(table_name: str, engine: str = "MergeTree", *, storage_policy: str | None = None,
               settings: Mapping[str, int] | None = None) -> str:
    """The CREATE TABLE statement for the logs table, with the name quoted by sqlsafe (and
    ``settings`` added to its SETTINGS clause)."""
    text = resources.files("logharbor.server.engine.store").joinpath("schema.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    body = body.replace("{table}", quote_identifier(table_name)).replace("{engine}", engine)
    if settings:
        body += ", " + settings_text(settings)
    if storage_policy is not None:
        if storage_policy not in _POLICIES:
            raise StoreError(f"unknown storage policy {storage_policy!r}")
        body += f", storage_policy = '{storage_policy}'"
    return body
