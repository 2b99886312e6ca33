"""The free-text values table: every lowercased value the logs have held in the fields a bare
word also matches (``service source host instance env``, docs/query.md "free text").

Why: a bare word is ``hasAllTokens(message) OR lowerUTF8(service) = w OR …``; no index answers
the field terms, so the OR made every search of a word read every granule, the text index's
pruning lost (rare word at 10M: the text condition alone ~half the CPU of the OR, bench/README.md
"Query"). The values of those fields are few, so the query compiler asks this table whether the
word is one of them (a scalar subquery the engine runs before it reads the logs); when it is not,
the field terms are a constant false and the text index prunes again (query/filters.py
``free_word``). The answer is the same: the terms are dropped only when no row's value in any of
those fields equals the word.

How it stays complete:

- a materialized view on the hot logs table adds the new values of every insert (it runs inside
  the insert, like the patterns view, store/patterns.py; an insert with none writes nothing);
- rows stored before the view existed (a data directory of an older release) are read once into
  it at start by :func:`fill` (hot, warm and cold tiers, store/tiers.py), which then writes the
  *complete* marker (field ``''``): until that marker is there the compiled gate keeps the terms
  (the query means the same, it only reads more);
- nothing ever removes a value (retention, deletes and erasure leave them): a value no row holds
  any more only keeps its term, which then matches nothing, as before.

The embedded store has it; the cluster store does not (``free_text_name`` None: every term kept).
"""

# SQL here is built from identifiers quoted by store/sqlsafe.py; no value is formatted into it.
# ruff: noqa: S608
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from logharbor.server.engine.store.sqlsafe import quote_identifier, quote_string
from logharbor.types import Row

__all__ = ["COMPLETE", "FREE_TEXT_FIELDS", "fill", "free_text_ddl", "free_text_table_name", "is_complete",
           "view_definition"]

#: the fields whose whole value a bare word also matches (in any case), besides message
FREE_TEXT_FIELDS = ("service", "source", "host", "instance", "env")
#: the ``field`` of the marker row written once every tier's values are in
COMPLETE = ""


def free_text_table_name(logs_table_name: str) -> str:
    """``free_text`` beside a logs table called ``logs``; ``<table>_free_text`` beside any other."""
    return "free_text" if logs_table_name == "logs" else f"{logs_table_name}_free_text"


def _pairs_select(source: str) -> str:
    """(field, lowercased value) of every distinct combination of the fields in ``source`` (a
    quoted table, or a parenthesised SELECT): the distinct step first, on the LowCardinality
    columns, so the pairs are made for a few rows per insert, not for each row."""
    fields = ", ".join(quote_identifier(f) for f in FREE_TEXT_FIELDS)
    pairs = ", ".join(f"('{f}', lowerUTF8({quote_identifier(f)}))" for f in FREE_TEXT_FIELDS)
    return (f"SELECT pair.1 AS field, pair.2 AS value FROM (SELECT DISTINCT {fields} FROM {source}) "
            f"ARRAY JOIN [{pairs}] AS pair")


#: the view passes on only the pairs the table does not hold yet: an insert that brings no new
#: value (nearly all of them) writes no part at all. Without it every insert wrote a tiny part:
#: +27 % of the CPU of a 3,000-row insert, against none with it (bench/README.md "sixth session")
_NEW_ONLY = "NOT IN (SELECT field, value FROM"


def free_text_ddl(logs_local: str, values_local: str, view_sql: str | None = None,
                  storage_policy: str | None = None) -> list[str]:
    """The values table and the view that feeds it from inserts into ``logs_local``.

    ``view_sql`` is the view's definition as the engine holds it (None: no view yet); a view of
    the first version of this table (every pair of every insert) is replaced. ``storage_policy``:
    an encrypted store's policy — the values are the records' own service, host … names, so they
    sit on the encrypted disk like the logs table (on the default disk they were plain text)."""
    target = quote_identifier(values_local)
    view = quote_identifier(values_local + "_mv")
    # one row per value: a ReplacingMergeTree keeps one of each (field, value) within an insert
    # and, after merges, across them; readers only ask whether a value is there
    table = (f"CREATE TABLE IF NOT EXISTS {target} (field LowCardinality(String), value String) "
             "ENGINE = ReplacingMergeTree ORDER BY (field, value)"
             + (f" SETTINGS storage_policy = {quote_string(storage_policy)}" if storage_policy else ""))
    if view_sql is not None and _NEW_ONLY in view_sql:
        return [table]
    mv = (f"CREATE MATERIALIZED VIEW {view} TO {target} AS "
          + _pairs_select(quote_identifier(logs_local))
          + f" WHERE (pair.1, pair.2) {_NEW_ONLY} {target})")
    return [table, *([f"DROP VIEW {view}"] if view_sql is not None else []), mv]


def view_definition(read: Callable[[str, Mapping[str, Any]], list[Row]], values_local: str) -> str | None:
    """The feeding view's definition as the engine holds it, or None when there is none."""
    rows = read("SELECT create_table_query AS q FROM system.tables WHERE database = currentDatabase() "
                "AND name = {n:String}", {"n": values_local + "_mv"})
    return str(rows[0]["q"]) if rows else None


def is_complete(read: Callable[[str, Mapping[str, Any]], list[Row]], values_local: str) -> bool:
    """Whether the marker is there: every tier's values were read in (:func:`fill`)."""
    rows = read(f"SELECT count() AS n FROM {quote_identifier(values_local)} WHERE field = {{f:String}}",
                {"f": COMPLETE})
    return bool(rows and int(rows[0]["n"]))


def fill(run: Callable[[str], None], values_local: str, sources: list[str]) -> None:
    """Read the values of ``sources`` (quoted tables or parenthesised SELECTs: every tier) into
    the table, then write the marker. Run at start, before the mover, with the view already in
    place, so a row inserted meanwhile is counted by the view and none is missed."""
    target = quote_identifier(values_local)
    for source in sources:
        run(f"INSERT INTO {target} {_pairs_select(source)}")
    run(f"INSERT INTO {target} VALUES ('{COMPLETE}', '')")
