"""Schema changes to tables made by older releases, run at start and only when still missing.

``ALTER TABLE … ADD COLUMN IF NOT EXISTS`` is not a no-op when the column exists: the engine
rewrites the table's metadata file anyway, and on a full disk it wrote that file empty and
reported success, so the next start failed (issue #20). A migration here therefore knows what it
adds, and :func:`missing` asks the engine which are still to do; a normal restart writes no
metadata at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from logharbor.server.engine.store.base import StoreError
from logharbor.server.engine.store.batches import BATCH_COLUMN, BATCH_COLUMN_DDL
from logharbor.server.engine.store.rows import COLUMNS
from logharbor.server.engine.store.sqlsafe import quote_identifier

if TYPE_CHECKING:
    from logharbor.server.engine.store.base import RowReader, Store

__all__ = ["COLUMN_MIGRATIONS", "EXACT_COLUMN", "PATTERN_COLUMN", "TIME_INDEX", "Migration", "add_column",
           "add_index", "check_columns", "codec_migrations", "ensure_settings", "logs_migrations",
           "materialize_index", "missing", "schema_codecs", "set_codec"]

#: the logs table's pattern id (patterns), added to tables made before it existed
PATTERN_COLUMN = "pattern_id LowCardinality(String) CODEC(ZSTD(1))"
#: the patch column of tables made by older releases (store/attributes.py); never added any more:
#: a table that has ``attributes JSON`` is rewritten as a whole (store/attrmigrate.py)
EXACT_COLUMN = "attributes_exact String CODEC(ZSTD(3))"
PATTERN_INDEX = "idx_pattern_id pattern_id TYPE bloom_filter(0.01) GRANULARITY 1"
#: words match in any case (query/filters.py): the text index of the lowercased message
TEXT_INDEX = "idx_message_lower lowerUTF8(message) TYPE text(tokenizer = splitByNonAlpha)"
#: each granule's time range: a search's ``ORDER BY timestamp … LIMIT n`` skips granules that
#: cannot hold one of its n rows (schema.sql)
TIME_INDEX = "idx_timestamp timestamp TYPE minmax GRANULARITY 1"


@dataclass(frozen=True)
class Migration:
    """One column or skip index a table must have; ``sql`` adds it."""

    table: str  # the table's name, unquoted
    kind: Literal["column", "index", "codec"]
    name: str
    sql: str

    def __str__(self) -> str:
        return self.sql


def add_column(table: str, definition: str, on_cluster: str = "") -> Migration:
    """``definition`` is ``name type …`` as in a CREATE TABLE."""
    name = definition.split()[0]
    sql = f"ALTER TABLE {quote_identifier(table)}{on_cluster} ADD COLUMN IF NOT EXISTS {definition}"
    return Migration(table, "column", name, sql)


def add_index(table: str, definition: str, on_cluster: str = "") -> Migration:
    """``definition`` is ``name expr TYPE …`` as in a CREATE TABLE's INDEX clause."""
    name = definition.split()[0]
    sql = f"ALTER TABLE {quote_identifier(table)}{on_cluster} ADD INDEX IF NOT EXISTS {definition}"
    return Migration(table, "index", name, sql)


def materialize_index(table: str, definition: str) -> Migration:
    """Build an index added by :func:`add_index` for the parts stored before it (a background
    mutation: until it reaches a part, queries read that part without the index, as before).
    Only where the ADD runs once: every start runs a cluster's ON CLUSTER statements, and this
    would rebuild the index each time."""
    name = definition.split()[0]
    sql = f"ALTER TABLE {quote_identifier(table)} MATERIALIZE INDEX {quote_identifier(name)}"
    return Migration(table, "index", name, sql)


def set_codec(table: str, column: str, codec: str, on_cluster: str = "") -> Migration:
    """``codec`` is ``CODEC(…)`` as in a CREATE TABLE; only the codec changes (no type, no data:
    the engine writes new parts, and the parts a merge makes, with it; old parts keep theirs)."""
    sql = (f"ALTER TABLE {quote_identifier(table)}{on_cluster} MODIFY COLUMN "
           f"{quote_identifier(column)} {codec}")
    return Migration(table, "codec", column, sql)


_CODEC_LINE = re.compile(r"^ {4}(\w+) +[^\n]*?(CODEC\((?:[^()]|\([^()]*\))*\)),$", re.M)


@cache
def schema_codecs() -> dict[str, str]:
    """Column → its ``CODEC(…)`` in schema.sql, for the stored columns (not the computed ones)."""
    text = resources.files("logharbor.server.engine.store").joinpath("schema.sql").read_text()
    return {name: codec for name, codec in _CODEC_LINE.findall(text)
            if not re.search(rf"^ {{4}}{name} [^\n]*\b(MATERIALIZED|ALIAS)\b", text, re.M)}


def codec_migrations(table_name: str, on_cluster: str = "", *, heavier: bool = False) -> list[Migration]:
    """schema.sql's codec for each column, to give a table made by an older release: run only on
    a column that has *no* codec (:func:`missing`), i.e. LZ4, the engine's default, as earlier
    releases made the numbers and LowCardinality columns; a column with a codec of its own
    (another release's or an operator's) keeps it. ``heavier``: the warm table's codecs
    (ZSTD(9), store/tiers.py)."""
    out = []
    for column, codec in schema_codecs().items():
        if heavier:
            codec = codec.replace("ZSTD(1)", "ZSTD(9)").replace("ZSTD(3)", "ZSTD(9)")
        out.append(set_codec(table_name, column, codec, on_cluster))
    return out


def logs_migrations(table_name: str, on_cluster: str = "", *, heavier: bool = False) -> list[Migration]:
    """Bring a logs table (hot or warm) made by an older release up to date: ``pattern_id``
    (patterns), ``ingest_batch`` (verified inserts), then their indexes (the time index also
    built for the parts already stored, on one server), then the codecs of columns that have
    none (:func:`codec_migrations`; ``heavier`` for the warm table). The column additions
    come first: a Distributed table over the logs takes just those (:data:`COLUMN_MIGRATIONS`
    of them). A table that still has ``attributes JSON`` is then rewritten whole into the text
    layout (store/attrmigrate.py), which these columns make a plain copy."""
    return [add_column(table_name, PATTERN_COLUMN, on_cluster),
            add_column(table_name, BATCH_COLUMN_DDL, on_cluster),
            add_index(table_name, PATTERN_INDEX, on_cluster),
            add_index(table_name, TEXT_INDEX, on_cluster),
            add_index(table_name, TIME_INDEX, on_cluster),
            *([] if on_cluster else [materialize_index(table_name, TIME_INDEX)]),
            *codec_migrations(table_name, on_cluster, heavier=heavier)]


#: how many of :func:`logs_migrations` add columns (the rest add indexes)
COLUMN_MIGRATIONS = 2


def missing(read: RowReader, migrations: Iterable[Migration], database: str | None = None) -> list[Migration]:
    """The migrations whose column or index the table does not have yet, and the codecs of
    columns that have none (tables that do not exist have nothing missing: their CREATE has
    everything; a column that does not exist yet gets its codec with it, or at the next start)."""
    todo = list(migrations)
    if not todo:
        return []
    tables = sorted({m.table for m in todo})
    # the database is a parameter (or the connection's own); table names are parameters too
    db = "{db:String}" if database else "currentDatabase()"
    params: dict[str, Any] = {"tables": tables, **({"db": database} if database else {})}
    existing = {r["name"] for r in read(
        f"SELECT name FROM system.tables WHERE database = {db} "  # noqa: S608
        "AND name IN {tables:Array(String)}", params)}
    codecs = {(str(r["table"]), str(r["name"])): str(r["codec"]) for r in read(
        f"SELECT table, name, compression_codec AS codec FROM system.columns WHERE database = {db} "  # noqa: S608
        "AND table IN {tables:Array(String)}", params)}
    columns = set(codecs)
    indexes = {(r["table"], r["name"]) for r in read(
        f"SELECT table, name FROM system.data_skipping_indices WHERE database = {db} "  # noqa: S608
        "AND table IN {tables:Array(String)}", params)}
    have = {"column": columns, "index": indexes}

    def needed(m: Migration) -> bool:
        if m.kind == "codec":
            return codecs.get((m.table, m.name)) == ""
        return (m.table, m.name) not in have[m.kind]

    return [m for m in todo if m.table in existing and needed(m)]


def ensure_settings(store: Store, tables: list[str], settings: Mapping[str, int]) -> None:
    """``ALTER TABLE … MODIFY SETTING`` on each table for the settings it does not have yet.

    Changing a setting rewrites the table's metadata file (even to the value it has), so this
    runs at start (``Tiers.open``) and only for what is missing: a normal restart writes none.
    """
    rows = store.query("SELECT name, create_table_query AS q FROM system.tables "
                       "WHERE database = currentDatabase() AND name IN {t:Array(String)}", {"t": tables})
    for row in rows:
        text = str(row["q"])
        todo = {k: v for k, v in settings.items()
                if not re.search(rf"\b{re.escape(k)}\s*=\s*{int(v)}\b", text)}
        if todo:
            changes = ", ".join(f"{k} = {int(v)}" for k, v in todo.items())
            store.execute(f"ALTER TABLE {quote_identifier(str(row['name']))} MODIFY SETTING {changes}")


def check_columns(read: RowReader, table_name: str, database: str | None = None) -> None:
    """Refuse to start on a logs table that lacks a column the encoder writes, or whose
    ``attributes`` is not text yet, naming them: an insert would fail on every batch (inserts
    refuse unknown fields, store/attributes.py INSERT_SETTINGS), so say it once, at start, with
    what to do."""
    db = "{db:String}" if database else "currentDatabase()"
    params: dict[str, Any] = {"t": table_name, **({"db": database} if database else {})}
    have = {str(r["name"]): str(r["type"]) for r in read(
        f"SELECT name, type FROM system.columns WHERE database = {db} AND table = {{t:String}}",  # noqa: S608
        params)}
    if not have:
        return
    lacking = [c for c in (*COLUMNS, BATCH_COLUMN) if c not in have]
    if have.get("attributes", "String") != "String":
        lacking.append(f"attributes String (it is {have['attributes']})")
    if lacking:
        raise StoreError(f"the logs table {table_name!r} lacks the column(s) {', '.join(lacking)} this "
                         "release writes; it was made by another release and not migrated (start this "
                         "release's server on it once with write access, or run its migration)")
