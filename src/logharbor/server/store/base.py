"""The ``Store`` interface: the one way the server reads and writes records.

The embedded store (chDB) and the ClickHouse cluster store implement it with the same schema and
the same compiled SQL; what differs between them lives in their own module, never in callers.
Rows cross this interface as JSONEachRow (see :mod:`logharbor.server.store.rows`), which both
engines read and write natively.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol, runtime_checkable

from logharbor.server.store.sqlsafe import quote_identifier

__all__ = ["Store", "StoreError", "StoreStats", "TierView", "schema_sql"]


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


@runtime_checkable
class Store(Protocol):
    """Where records live. Implementations must be safe to call from several threads."""

    #: the logs table as a quoted identifier, ready to stand in SQL text
    table: str

    def open(self) -> None:
        """Connect and create the schema if it is missing."""

    def close(self) -> None:
        """Release the engine; pending inserts have returned before this is called."""

    def insert(self, rows: bytes, *, dedup_token: str) -> int:
        """Insert JSONEachRow ``rows``; an insert with a token already seen is a no-op."""

    def query(self, sql: str, params: Mapping[str, Any], *, settings: Mapping[str, Any] | None = None
              ) -> list[dict[str, Any]]:
        """Run a SELECT with every user value in ``params``; rows as dicts."""

    def stream(self, sql: str, params: Mapping[str, Any], *, settings: Mapping[str, Any] | None = None
               ) -> Iterator[bytes]:
        """Run a SELECT and yield JSONEachRow chunks as the engine produces them."""

    def stats(self) -> StoreStats:
        """Rows and bytes of the logs table."""


class TierView:
    """``expose_view`` for both stores: queries read the tiers through one view.

    Callers compile against ``store.table``; after :meth:`expose_view` it names the view, so
    which tiers a query reads stays inside the store. Inserts always go to ``hot_table``.
    """

    table: str
    hot_table: str

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:  # the store's own
        raise NotImplementedError

    def expose_view(self, name: str, select_sql: str | None) -> None:
        """Make queries read ``select_sql`` (e.g. hot ∪ warm ∪ cold) through a view named ``name``;
        ``None`` drops the view and reads the hot table again."""
        view = quote_identifier(name)
        if select_sql is None:
            self.table = self.hot_table
            self.execute(f"DROP VIEW IF EXISTS {view}")
            return
        self.execute(f"CREATE OR REPLACE VIEW {view} AS {select_sql}")
        self.table = view


_POLICIES = frozenset({"logharbor_sealed"})


def schema_sql(table_name: str, engine: str = "MergeTree", *, storage_policy: str | None = None) -> str:
    """The CREATE TABLE statement for the logs table, with the name quoted by sqlsafe."""
    text = resources.files("logharbor.server.store").joinpath("schema.sql").read_text()
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    body = body.replace("{table}", quote_identifier(table_name)).replace("{engine}", engine)
    if storage_policy is not None:
        if storage_policy not in _POLICIES:
            raise StoreError(f"unknown storage policy {storage_policy!r}")
        body += f", storage_policy = '{storage_policy}'"
    return body
