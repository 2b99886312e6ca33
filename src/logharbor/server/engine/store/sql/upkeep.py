"""The pattern upkeep's SQL (``features/patterns/upkeep.py``): adopting the first release's ids
and backfilling ids of records stored before patterns existed, a partition at a time.

Table names arrive quoted (``sqlsafe``); partition ids, the database and the join table's name
are checked against strict patterns by the caller before they are written into a statement
(``joinGet`` and ``IN PARTITION ID`` take no parameters); every other value is a parameter.
"""

from __future__ import annotations

__all__ = ["BACKFILL_WHERE", "CURRENT_DATABASE", "assign_ids_sql", "backfill_counts_sql", "count_of",
           "create_join_sql", "drop_table_sql", "fill_join_sql", "join_lookup", "message_slice_sql",
           "truncate_sql", "unadopted_sql", "unassigned_partitions_sql"]

#: a record's message, as the join table keys it
_HASH = "cityHash64(tenant, service, message)"
#: the records of partition ``{p}`` still without a pattern id
BACKFILL_WHERE = "_partition_id = {p:String} AND pattern_id = '' AND message != ''"
CURRENT_DATABASE = "SELECT currentDatabase() AS db"


def unadopted_sql(patterns: str, limit: int | None) -> str:
    """Ids of the first release (no ``group_id``) with a sample, ``limit`` of them in key order."""
    sql = ("SELECT tenant, service, pattern_id, anyIf(sample, sample != '') AS s, "  # noqa: S608
           f"min(first_seen) AS f FROM {patterns} GROUP BY tenant, service, pattern_id "
           "HAVING argMax(group_id, updated) IS NULL AND s != ''")
    return sql + (f" ORDER BY tenant, service, pattern_id LIMIT {int(limit)}" if limit else "")


def count_of(select: str) -> str:
    """The number of rows (``n``) of a SELECT."""
    return f"SELECT count() AS n FROM ({select})"  # noqa: S608


def unassigned_partitions_sql(table: str) -> str:
    """Partition ids (``p``) of ``table`` and how many of their records have no pattern id (``n``)."""
    return (f"SELECT _partition_id AS p, count() AS n FROM {table} "  # noqa: S608
            "WHERE pattern_id = '' AND message != '' GROUP BY p ORDER BY p")


def create_join_sql(join: str) -> str:
    """The memory-only join table: message hash → pattern id."""
    return (f"CREATE TABLE IF NOT EXISTS {join} (h UInt64, sid String) "
            "ENGINE = Join(ANY, LEFT, h) SETTINGS persistent = 0")


def drop_table_sql(table: str) -> str:
    return f"DROP TABLE IF EXISTS {table}"


def truncate_sql(table: str) -> str:
    return f"TRUNCATE TABLE {table}"


def message_slice_sql(table: str) -> str:
    """Slice ``{k}`` of ``{s}`` of the distinct (tenant, service, message) of partition ``{p}``
    without an id, with the message's hash ``h`` and first time ``ts``."""
    return (f"SELECT tenant, service, message, {_HASH} AS h, min(timestamp) AS ts FROM {table} "  # noqa: S608
            f"WHERE {BACKFILL_WHERE} AND {_HASH} % {{s:UInt64}} = {{k:UInt64}} "
            "GROUP BY tenant, service, message")


def fill_join_sql(join: str) -> str:
    """Put the pairs of ``{h}`` (hashes) and ``{s}`` (pattern ids) in the join table."""
    return (f"INSERT INTO {join} SELECT kv.1, kv.2 FROM (SELECT arrayJoin(arrayZip("  # noqa: S608
            "{h:Array(UInt64)}, {s:Array(String)})) AS kv)")


def join_lookup(database: str, join_name: str) -> str:
    """The expression reading a record's pattern id from the join table (names checked by the caller)."""
    return f"joinGet('{database}.{join_name}', 'sid', {_HASH})"


def backfill_counts_sql(patterns: str, table: str, lookup: str, token: str) -> str:
    """Partition ``{p}``'s counts per found id into the patterns table, deduplicated by ``token``."""
    return (f"INSERT INTO {patterns} (tenant, service, pattern_id, updated, first_seen, last_seen, "  # noqa: S608
            f"count, sample) SELECT tenant, service, {lookup} AS pid, toDateTime64(0, 3, 'UTC'), "
            f"min(timestamp), max(timestamp), count(), any(message) FROM {table} WHERE {BACKFILL_WHERE} "
            f"GROUP BY tenant, service, pid HAVING pid != '' SETTINGS insert_deduplication_token = '{token}'")


def assign_ids_sql(table: str, lookup: str, partition: str) -> str:
    """The mutation writing the found ids into partition ``partition`` (``{p}``), waited for."""
    return (f"ALTER TABLE {table} UPDATE pattern_id = {lookup} IN PARTITION ID '{partition}' "
            f"WHERE {BACKFILL_WHERE} SETTINGS mutations_sync = 2")
