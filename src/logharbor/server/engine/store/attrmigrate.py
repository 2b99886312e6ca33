"""Rewrite a logs table of an older release (``attributes JSON`` + ``attributes_exact``) into the
text layout (``attributes String``, store/attributes.py), at start, crash-safe.

The old table is never changed. A new table ``<name>__attrtext`` is made from schema.sql and
filled: rows without a patch by one ``INSERT … SELECT`` of the JSON column's text (the engine
prints literal dotted keys as written; such a row has no key with ``%``, which always went to the
patch), rows with a patch through Python (:func:`~logharbor.server.engine.store.attributes.read`
of the old columns, then the encoder's own ``orjson``/``exactjson`` text), a part at a time in
pages of ``_part_offset`` (merges of the old table are stopped meanwhile, so parts stay put).
Then the rows are counted on both sides, and only when they agree do the two tables swap in one
``EXCHANGE TABLES``, after which the old one is dropped.

Kill -9 anywhere: before the swap the old table is whole and the next start drops the partial
new one and redoes the copy; after it the table is already text and a leftover ``__attrtext``
(the old rows) is dropped. The patterns view is dropped before the swap (its target keeps its
counts; the store creates the view again right after), so no copied row is counted twice and
the view never follows the wrong table. Nothing may insert meanwhile: this runs in ``open``
before the batcher starts (a server side by side on one ClickHouse would be refused by
``check_columns`` until it is upgraded too).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from logharbor import exactjson
from logharbor.server.engine.store import attributes as attrs
from logharbor.server.engine.store.base import StoreError, schema_sql
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.types import Row

if TYPE_CHECKING:  # tiers.py imports this module
    from logharbor.server.engine.store.tiers import Tiers

__all__ = ["COLD_SUFFIX", "MIGRATING_SUFFIX", "TableAccess", "fingerprint", "migrate_attributes",
           "migrate_cold_files", "needs_migration", "upgrade_rows"]

log = logging.getLogger("logharbor.store")
retention_log = logging.getLogger("logharbor.retention")

#: the new table while it is filled (and the old one between the swap and its drop)
MIGRATING_SUFFIX = "__attrtext"
#: rows with a patch per page read into Python (bounded memory whatever the table's size)
_PAGE = 20_000
#: bytes of rewritten rows per insert into the cold files' staging table
_PAGE_BYTES = 8 * 2**20
#: the staging table an old cold file is rewritten through (``<logs>__coldtext``)
COLD_SUFFIX = "__coldtext"


@dataclass
class TableAccess:
    """What the migration needs of a store, usable before its readers exist (embedded open).

    ``read(sql, params)`` returns rows; ``run(sql)`` runs a statement; ``insert(table, rows)``
    inserts JSONEachRow rows (with :data:`~logharbor.server.engine.store.attributes.INSERT_SETTINGS`)
    into a quoted table; ``create(name)`` are the statements making the text layout's table ``name``
    (with every column the migrated table has: a warm table's ``move_id`` too)."""

    read: Callable[[str, Mapping[str, Any]], list[Row]]
    run: Callable[[str], None]
    insert: Callable[[str, bytes], None]
    create: Callable[[str], list[str]]
    database: str | None = None


def stored_columns(access: TableAccess, name: str) -> dict[str, str]:
    """Stored (not MATERIALIZED/ALIAS) columns of ``name`` → type, in order; {} when absent."""
    db = "{db:String}" if access.database else "currentDatabase()"
    params: dict[str, Any] = {"t": name, **({"db": access.database} if access.database else {})}
    rows = access.read(f"SELECT name, type FROM system.columns WHERE database = {db} "  # noqa: S608
                       "AND table = {t:String} AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') "
                       "ORDER BY position", params)
    return {str(r["name"]): str(r["type"]) for r in rows}


def needs_migration(access: TableAccess, name: str) -> bool:
    """Whether ``name`` exists with the old ``attributes JSON`` column."""
    kind = stored_columns(access, name).get("attributes")
    return kind is not None and kind != "String"


def migrate_attributes(access: TableAccess, name: str, *, patterns_view: str | None = None) -> int:
    """Bring ``name`` to the text layout if it is not (see the module docstring); the rows moved.

    ``patterns_view``: the materialized view reading inserts into ``name`` (dropped before the
    swap; its creator makes it again)."""
    table, new_name = quote_identifier(name), name + MIGRATING_SUFFIX
    new = quote_identifier(new_name)
    if not needs_migration(access, name):
        if stored_columns(access, new_name):  # killed after the swap: this is the old rows' table
            access.run(f"DROP TABLE IF EXISTS {new}")
        return 0
    old_columns = stored_columns(access, name)
    access.run(f"DROP TABLE IF EXISTS {new}")  # a copy cut short by a crash: redo it whole
    for statement in access.create(new_name):
        access.run(statement)
    new_columns = stored_columns(access, new_name)
    lacking = [c for c in new_columns if c not in old_columns and c != "attributes"]
    if lacking:  # migrations.logs_migrations adds these first; refuse rather than guess
        raise StoreError(f"cannot migrate {name!r} to text attributes: it lacks {', '.join(lacking)}")
    shared = [c for c in new_columns if c != "attributes"]
    listed = ", ".join(quote_identifier(c) for c in shared)
    has_patch = attrs.EXACT_COLUMN in old_columns
    plain = f"{quote_identifier(attrs.EXACT_COLUMN)} = ''" if has_patch else "1"
    log.warning("store: rewriting table %s with attributes as text (issue #24); this runs once and "
                "needs free disk for a copy of the table", name)
    access.run(f"SYSTEM STOP MERGES {table}")
    try:
        # refused up front when the disk cannot hold a copy (a part written into the last bytes
        # of a disk was committed with empty files, issue #20); the fingerprint below checks too
        free = 16 * 1024 * 1024 + 2 * _bytes_on_disk(access, name)
        try:
            # toString of the JSON column: literal dots as written (a query does not escape them);
            # a row without attributes ('{}') gets '', as the encoder writes it now
            access.run(f"INSERT INTO {new} ({listed}, `attributes`) "  # noqa: S608 - quoted names
                       f"SELECT {listed}, if(toString(`attributes`) = '{{}}', '', toString(`attributes`)) "
                       f"FROM {table} WHERE {plain} SETTINGS min_free_disk_bytes_to_perform_insert = {free}")
            if has_patch:
                for page in _patched_pages(access, table, shared):
                    access.insert(new, page)
        except StoreError as exc:
            try:  # give the disk back now (the next start would drop it first anyway)
                access.run(f"DROP TABLE IF EXISTS {new}")
            except StoreError:
                log.warning("store: the partial copy %s stays until the next start", new_name)
            raise StoreError(f"rewriting the table {name!r} with attributes as text failed, the table is "
                             f"left as it was (it needs about {free // 2**20} MiB of free disk for the copy; "
                             f"the next start tries again): {exc}") from exc
        before, after = _fingerprint(access, table), _fingerprint(access, new)
        if before != after:
            raise StoreError(f"migrating {name!r} to text attributes: the copy holds {after[0]} rows "
                             f"(fingerprint {after[1]}) where the table holds {before[0]} ({before[1]}); "
                             "the table is left as it was (the next start tries again)")
        if patterns_view is not None:
            access.run(f"DROP VIEW IF EXISTS {quote_identifier(patterns_view)}")
        access.run(f"EXCHANGE TABLES {table} AND {new}")
    finally:
        access.run(f"SYSTEM START MERGES {table}")
    access.run(f"DROP TABLE IF EXISTS {new}")
    log.warning("store: table %s now holds attributes as text (%d rows)", name, before[0])
    return before[0]


def _bytes_on_disk(access: TableAccess, name: str) -> int:
    db = "{db:String}" if access.database else "currentDatabase()"
    params: dict[str, Any] = {"t": name, **({"db": access.database} if access.database else {})}
    rows = access.read(f"SELECT sum(bytes_on_disk) AS b FROM system.parts WHERE active AND database = {db} "  # noqa: S608
                       "AND table = {t:String}", params)
    return int(rows[0]["b"] or 0) if rows else 0


def _fingerprint(access: TableAccess, table: str) -> tuple[int, str]:
    return fingerprint(access.read, table)


def fingerprint(read: Callable[[str, Mapping[str, Any]], list[Row]], table: str) -> tuple[int, str]:
    """Rows and an order-free hash of every row's identity (time, receive time, service, message,
    batch): reading the columns themselves, so a part written with empty files (a full disk) or a
    row doubled and another lost cannot pass for the same table."""
    rows = read("SELECT count() AS n, toString(sum(cityHash64(timestamp, observed_timestamp, service, "  # noqa: S608
                       f"message, trace_id, ingest_batch))) AS h FROM {table}", {})
    return (int(rows[0]["n"]), str(rows[0]["h"])) if rows else (0, "0")


def _patched_pages(access: TableAccess, table: str, shared: list[str]) -> Iterator[bytes]:
    """The rows with a patch, as JSONEachRow rows of the new layout, page by page."""
    exact = quote_identifier(attrs.EXACT_COLUMN)
    parts = access.read(f"SELECT _part AS p, count() AS n FROM {table} WHERE {exact} != '' "  # noqa: S608
                        "GROUP BY p ORDER BY p", {})
    listed = ", ".join(quote_identifier(c) for c in shared)
    for part in parts:
        for start in range(0, _max_offset(access, table, str(part["p"])) + 1, _PAGE):
            rows = access.read(
                f"SELECT {listed}, toString(`attributes`) AS __lh_text, {exact} AS __lh_exact "  # noqa: S608
                f"FROM {table} WHERE _part = {{p:String}} AND _part_offset >= {{lo:UInt64}} "
                f"AND _part_offset < {{hi:UInt64}} AND {exact} != ''",
                {"p": part["p"], "lo": start, "hi": start + _PAGE})
            if rows:
                yield b"\n".join(new_row(row) for row in rows)


def _max_offset(access: TableAccess, table: str, part: str) -> int:
    rows = access.read(f"SELECT max(_part_offset) AS m FROM {table} WHERE _part = {{p:String}}",  # noqa: S608
                       {"p": part})
    return int(rows[0]["m"]) if rows else 0


def new_row(row: dict[str, Any]) -> bytes:
    """An old row as the encoder would write it now: the exact attributes as one object."""
    text, patch = row.pop("__lh_text"), row.pop("__lh_exact")
    column = exactjson.loads(text) if text else {}
    row["attributes"] = attrs.read(column, patch)
    try:
        return orjson.dumps(row)
    except TypeError:
        return exactjson.dumps(row)


def migrate_cold_files(tiers: Tiers) -> int:
    """Rewrite the cold files of an older release whose rows carry a patch (store/attributes.py):
    their ``attributes`` is the JSON column's text, which altered some values (``13.0``,
    nulls, ``%`` keys), and the exact values are in their ``attributes_exact`` column, which
    this release does not read. Files without a patch are already exact text and stay. Returns
    the files rewritten. A file that cannot be rewritten now is named in the log and tried at the
    next start (its rows stay readable, a patched value as the old column had it).

    No row travels as a query parameter: a ClickHouse server caps each one at 128 KiB
    (``http_max_field_value_size``), which one large row exceeds. The rows go into a staging
    table ``<logs>__coldtext`` instead (those without a patch by ``INSERT … SELECT`` from the
    file, the others streamed out, rewritten and inserted in the request body, a page at a time),
    are compared with the file (count and hash), and the staging table is exported over the file
    (staged, then published: a crash leaves either file whole, and the next start drops a
    leftover staging table and looks again)."""
    if tiers.cold is None:
        return 0
    exact = quote_identifier(attrs.EXACT_COLUMN)
    wider = f"{tiers.structure}, {exact} String"
    staging_name = tiers.store.table_name + COLD_SUFFIX
    staging = quote_identifier(staging_name)
    done = 0
    for key in tiers.cold.keys():
        source = tiers.cold.table_function(key, wider)
        try:
            rows = tiers.store.query(f"SELECT count() AS n FROM {source} WHERE {exact} != ''", {})  # noqa: S608
            if not int(rows[0]["n"]):
                continue
            try:
                moved = _rewrite_cold_file(tiers, key, source, staging_name)
            finally:
                tiers.store.execute(f"DROP TABLE IF EXISTS {staging}")
            done += 1
            retention_log.warning("retention: cold file %s rewritten with exact attribute text (%d rows)",
                                  key, moved)
        except (StoreError, ValueError) as exc:
            retention_log.error("retention: cold file %s still holds attributes of an older release and "
                                "could not be rewritten now (%s); its patched values read as the old "
                                "column had them until the next start rewrites it", key, exc)
    return done


def _rewrite_cold_file(tiers: Tiers, key: str, source: str, staging_name: str) -> int:
    """One old cold file through the staging table and back over itself; the rows it holds."""
    assert tiers.cold is not None
    store, exact = tiers.store, quote_identifier(attrs.EXACT_COLUMN)
    staging = quote_identifier(staging_name)
    store.execute(f"DROP TABLE IF EXISTS {staging}")  # one a crash left behind
    # the logs table's own definition (an encrypted store keeps the decrypted rows encrypted)
    store.execute(schema_sql(staging_name, storage_policy=store.storage_policy))
    store.execute(f"INSERT INTO {staging} ({tiers.column_list}) "  # noqa: S608 - quoted names
                  f"SELECT {tiers.column_list} FROM {source} WHERE {exact} = ''")
    page: list[bytes] = []
    size = 0
    for line in _lines(store.stream(f"SELECT {tiers.column_list}, {exact} AS __lh_exact "  # noqa: S608
                                    f"FROM {source} WHERE {exact} != ''", {})):
        row = exactjson.loads(line)
        text, patch = row.get("attributes") or "", row.pop("__lh_exact")
        attributes = attrs.read(exactjson.loads(text) if text else {}, patch)
        row["attributes"] = exactjson.dumps(attributes).decode() if attributes else ""
        page.append(exactjson.dumps(row))
        size += len(page[-1])
        if size >= _PAGE_BYTES:
            store.load_rows(staging, b"\n".join(page))
            page, size = [], 0
    if page:
        store.load_rows(staging, b"\n".join(page))
    before, after = fingerprint(store.query, source), fingerprint(store.query, staging)
    if before != after:
        raise StoreError(f"the rewritten copy holds {after[0]} rows (fingerprint {after[1]}) where the "
                         f"file holds {before[0]} ({before[1]}); the file is left as it was")
    tiers.cold.write(store, key, f"SELECT {tiers.export_list()} FROM {staging} "  # noqa: S608
                     "ORDER BY service, level, timestamp", {})
    written = tiers.count_cold(key)
    if written != before[0]:  # published already: say so loudly (the next start finds no patch)
        raise StoreError(f"the rewritten file holds {written} rows where {before[0]} were written")
    return written


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Whole JSONEachRow lines of a stream whose chunks may cut a line anywhere."""
    rest = b""
    for chunk in chunks:
        rest += chunk
        *whole, rest = rest.split(b"\n")
        yield from (line for line in whole if line)
    if rest.strip():
        yield rest


_OLD_FIELD = b'"' + attrs.EXACT_COLUMN.encode() + b'":'


def upgrade_rows(rows: bytes) -> bytes:
    """Rows of the old layout (``attributes`` as the JSON column's object, ``attributes_exact``
    its patch) as this release writes them: the exact attributes as one object.

    Such rows reach an insert after an upgrade: the WAL entries an older server acknowledged and
    had not stored yet, and refused rows it set aside that are requeued. Without this they would
    be refused for the unknown field, or stored with the column's altered values. A row without
    the field is taken as it is (only a row with a patch differs between the layouts); the
    check is one search of the batch's bytes, and a quote inside a string is escaped, so the
    field's name in quotes followed by a colon can only be a key."""
    if _OLD_FIELD not in rows:
        return rows
    out = []
    for line in rows.split(b"\n"):
        if _OLD_FIELD in line:
            row = exactjson.loads(line)
            if type(row) is dict and attrs.EXACT_COLUMN in row:
                patch = row.pop(attrs.EXACT_COLUMN)
                attributes = attrs.read(row.pop("attributes", None) or {},
                                        patch if isinstance(patch, str) else None)
                if attributes:
                    row["attributes"] = attributes
                line = exactjson.dumps(row)
        out.append(line)
    return b"\n".join(out)
