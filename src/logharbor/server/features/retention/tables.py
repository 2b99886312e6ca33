"""Retention's metadata tables, on the shared metadata of :mod:`logharbor.server.meta.db`.

``retention_policy`` holds the rules (one row, versioned by time); ``retention_moves`` is the
mover's intent log: a move is written here before it touches data, and each step updates its
state, so a restart finishes (or redoes) every move that was under way; ``retention_deletes``
holds delete-by-query jobs and their progress.
"""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, String, Table, Text

from logharbor.server.meta.db import metadata

__all__ = ["retention_deletes", "retention_moves", "retention_policy"]

retention_policy = Table(
    "retention_policy", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("spec", JSON, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Column("updated_by", String(64), nullable=True),
)

retention_moves = Table(
    "retention_moves", metadata,
    Column("id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),  # move (a copy, then a delete from the source)
    Column("rule", String(100), nullable=False),
    Column("source", String(8), nullable=False),  # hot | warm
    Column("dest", String(8), nullable=False),  # warm | cold
    Column("cond", Text, nullable=False),  # SQL condition built by the server, values in params
    Column("params", JSON, nullable=False),
    Column("cold_key", String(300), nullable=True),
    Column("state", String(16), nullable=False),  # copying → copied → done | failed
    Column("rows", BigInteger, nullable=True),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Column("error", Text, nullable=True),
    Index("ix_retention_moves_state", "state"),
)

retention_deletes = Table(
    "retention_deletes", metadata,
    Column("id", String(32), primary_key=True),
    Column("q", Text, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # pending → running → done | failed
    Column("progress", JSON, nullable=False),  # rows per tier, tiers_done
    Column("created_ns", BigInteger, nullable=False),
    Column("finished_ns", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
)
