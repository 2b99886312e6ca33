"""How many terms one query may have: the clause limit (Elasticsearch's ``max_clause_count``).

Why: the engine plans a query before its timeout starts to count, and planning grows with the
terms; each term on an attribute the table has never seen costs about 2.5 ms to plan and its
share of every block read. 1024 terms (the classic Elasticsearch default) plan in about 2.5 s;
3000 took 9 s before a single row was read, with the timeout unable to stop it. So every filter,
from the query language, LogQL (each matcher and line filter), live tail and alert rules, is
counted as it compiles, and a query with more terms is refused at once, naming the limit.

The server sets the limit at start (``--query-max-clauses``); one server runs per process.
"""

from __future__ import annotations

from .errors import QueryTooLargeError

__all__ = ["DEFAULT_MAX_CLAUSES", "TooManyClausesError", "max_clauses", "set_max_clauses"]

DEFAULT_MAX_CLAUSES = 1024
_limit = DEFAULT_MAX_CLAUSES


class TooManyClausesError(QueryTooLargeError):
    """More terms than ``query_max_clauses``."""

    code = "too_many_clauses"


def set_max_clauses(limit: int) -> None:
    """The server's clause limit (``query_max_clauses``), for every query compiled from now on."""
    global _limit
    if limit < 1:
        raise ValueError("the clause limit must be at least 1")
    _limit = limit


def max_clauses() -> int:
    return _limit


def too_many(limit: int, position: int | None) -> TooManyClausesError:
    where = f" at {position}" if position is not None else ""
    error = TooManyClausesError(
        f"the query has more than {limit} terms{where} (field matches, words and phrases, LogQL matchers "
        f"and line filters count one each), the most one query may have (query_max_clauses); split it "
        "or use fewer terms", position)
    error.detail = {"limit": limit, "setting": "query_max_clauses"}
    return error
