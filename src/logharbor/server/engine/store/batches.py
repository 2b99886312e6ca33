"""Which insert stored a row: the ``ingest_batch`` column, so an insert can be *verified*.

The batcher releases a WAL range only once the store holds that range's rows. An engine's own
report is not enough: chDB's streaming insert reported every row written while storing none
when the disk was full (issue #20). So every row of an insert carries its deduplication token in
``ingest_batch`` (written by :func:`mark_rows`, a byte-level prefix: rows are JSONEachRow objects
one per line, so no row is decoded), and after the insert the store counts the rows under that
token (:func:`count_sql`). A replay of a token the store already had is deduplicated by the
engine and counts the rows stored the first time, so the count is right whichever attempt
stored them; a lost insert counts short and the range stays in the WAL.

``ingest_batch`` is a ``LowCardinality(String)`` (one value per insert: it costs almost nothing
compressed, and no skip index: one made every count cost more, not less). A first attempt is
counted in the parts the insert made (:func:`new_parts_sql`), so its cost does not grow with the
table; a retry or a replay counts the whole table. Queries never show the column (rows are read
back by column name, see ``store/rows.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from logharbor.server.engine.store.base import StoreError
from logharbor.server.engine.store.sqlsafe import quote_identifier

__all__ = ["BATCH_COLUMN", "BATCH_COLUMN_DDL", "InsertPlan", "ReadBackFailed", "count_sql", "days_sql",
           "mark_rows", "mark_rows_counted", "reading_back", "row_count", "rows_by_day"]

BATCH_COLUMN = "ingest_batch"
#: the column as the logs tables declare it (schema.sql has the same text)
BATCH_COLUMN_DDL = f"{BATCH_COLUMN} LowCardinality(String) CODEC(ZSTD(1))"

_TOKEN_OK = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


class ReadBackFailed(StoreError):
    """A read an insert makes of what the store holds (its count back, the days already stored)
    failed: about the store's state (a damaged part, a disk, the network), never a refusal of the
    rows sent, whatever its code (CANNOT_READ_ALL_DATA and INCORRECT_DATA name bad input too), so
    the batcher never sets rows aside for it (engine/refused.py)."""


@contextmanager
def reading_back() -> Iterator[None]:
    """Raise a store error of the reads inside as :class:`ReadBackFailed` (cause kept)."""
    try:
        yield
    except ReadBackFailed:
        raise
    except StoreError as exc:
        raise ReadBackFailed(str(exc)) from exc


def mark_rows(rows: bytes, token: str) -> bytes:
    """``rows`` (JSONEachRow, one object per line) with ``"ingest_batch": token`` first in each."""
    return mark_rows_counted(rows, token)[0]


def mark_rows_counted(rows: bytes, token: str) -> tuple[bytes, int]:
    """:func:`mark_rows` and how many rows it marked (:func:`row_count` of the result).

    A newline never occurs inside a row (JSON escapes it), so each ``\\n{`` starts a row. The
    fast path is what the batcher sends (every line an object): one split at the row starts, one
    look at each part, one join, and the count of rows is the number of parts. Every newline
    started a row when no part holds one; an empty object ``{}`` after one shows as a part
    starting with ``}``. Blank lines and ``{}`` take the slow path. Looking at the parts one by one
    is cheaper than a count of the newlines and a search of the result for the prefix closed at
    once (the whole marking 1.54 against 2.20 µs a row, 35,000 demo-mix rows, bench/README.md
    "The engine's insert"); the path before that (count, count, search, replace, two copies, then
    a row count of the result) cost ~5 µs a row in the server's own thread.
    """
    if not token or not _TOKEN_OK.issuperset(token):
        raise ValueError(f"bad batch token {token!r}")
    if not rows:
        return rows, 0
    prefix = b'{"' + BATCH_COLUMN.encode() + b'":"' + token.encode() + b'",'
    if rows[:1] == b"{" and rows[:2] != b"{}":
        parts = rows.split(b"\n{")  # each part after the first: a row without its opening brace
        if not any(part[:1] == b"}" or b"\n" in part for part in parts):
            parts[0] = prefix + parts[0][1:]
            return (b"\n" + prefix).join(parts), len(parts)
    out = []
    for line in rows.split(b"\n"):
        line = line.strip()
        if not line:
            continue
        if line[:1] != b"{":
            raise ValueError("a store row is not a JSON object")
        out.append(prefix[:-1] + b"}" if line == b"{}" else prefix + line[1:].lstrip())
    return b"\n".join(out), len(out)


def row_count(rows: bytes) -> int:
    """How many rows ``rows`` holds (non-blank lines), the number a verified insert must find."""
    if not rows:
        return 0
    # one memchr split finds both the count and whether a line is empty ("\n\n" or a newline at
    # either end): half the cost of a count and a search for "\n\n" on the batcher's thread
    lines = rows.split(b"\n")
    if b"" not in lines:
        return len(lines)
    return sum(1 for line in lines if line.strip())


def count_sql(table: str, *, in_parts: bool = False) -> str:
    """SELECT counting the rows stored under the token parameter ``{batch:String}`` in ``table``
    (an identifier already quoted by sqlsafe, as ``Store.hot_table`` is); with ``in_parts``
    only in the parts named by ``{parts:Array(String)}`` (the engine skips the others unread)."""
    parts = " AND _part IN {parts:Array(String)}" if in_parts else ""
    return (f"SELECT count() AS n FROM {table} "  # noqa: S608 - identifiers quoted, value a parameter
            f"WHERE {quote_identifier(BATCH_COLUMN)} = {{batch:String}}{parts}")


def days_sql(table: str) -> str:
    """Rows stored under ``{batch:String}`` per day (days since 1970, the table's partitions)."""
    return (f"SELECT toUInt32(toDate(timestamp)) AS d, count() AS n FROM {table} "  # noqa: S608
            f"WHERE {quote_identifier(BATCH_COLUMN)} = {{batch:String}} GROUP BY d")


def rows_by_day(rows: bytes) -> dict[int, list[bytes]]:
    """The rows of a batch grouped by the day of their ``timestamp`` (the partition they go to).

    Store rows carry the record's time first as ``"timestamp":"<epoch seconds>.<ns>"``; only
    the rare partial-batch path calls this, so it may look at every row.
    """
    out: dict[int, list[bytes]] = {}
    for line in rows.split(b"\n"):
        if not line.strip():
            continue
        at = line.find(b'"timestamp":"')
        if at < 0:
            raise ValueError("a store row has no timestamp")
        start = at + len(b'"timestamp":"')
        end = start
        while end < len(line) and line[end:end + 1].isdigit():
            end += 1
        if end == start or line[end:end + 1] not in (b".", b'"'):
            raise ValueError(f"a store row's timestamp is not epoch seconds: {line[at:at + 40]!r}")
        out.setdefault(int(line[start:end]) // 86_400, []).append(line)
    return out


class InsertPlan:
    """What an insert must still do for a batch, given what the store already holds of it.

    Counting *before* inserting makes a replay safe whatever the engine's deduplication log
    remembers (a full disk can cost it entries), and lets a retry insert only the partitions
    that are missing, under a fresh deduplication token (the first token may be "used up" by a
    part the engine wrote broken and that was set aside). A table partition is one block of an
    insert (blocks are not split: see ``max_insert_block_size`` in the stores), so a partition
    is either whole or absent.
    """

    def __init__(self) -> None:
        self._tried: dict[str, int] = {}

    def tried(self, token: str) -> bool:
        """Whether this process has inserted ``token`` before."""
        return token in self._tried

    def token_for(self, token: str) -> str:
        """``token`` the first time this process inserts the batch, ``token-rN`` after."""
        n = self._tried.get(token, 0)
        if len(self._tried) > 10_000:
            self._tried.clear()
        self._tried[token] = n + 1
        return token if n == 0 else f"{token}-r{n}"

    @staticmethod
    def missing_rows(marked: bytes, stored_by_day: dict[int, int]) -> bytes:
        """The rows of the days the store does not hold yet; ValueError when a day is partly
        stored (it cannot be completed without storing some rows twice)."""
        todo: list[bytes] = []
        for day, lines in sorted(rows_by_day(marked).items()):
            have = stored_by_day.get(day, 0)
            if have == 0:
                todo.extend(lines)
            elif have != len(lines):
                raise ValueError(f"day {day} of the batch is partly stored ({have} of {len(lines)} rows)")
        return b"\n".join(todo)
