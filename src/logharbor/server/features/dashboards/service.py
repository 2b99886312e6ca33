"""Saved queries and dashboards: stored in the metadata database, exported and imported as JSON
(the HTTP API is ``routes.py``).

A dashboard is a list of panels, each a query in the query language and a way to show it:
``timechart`` (a ``| timechart`` query), ``table``, ``single`` (one number: the first column of
the first row, or ``column``), ``top`` (a ``| top N field`` query) or ``logs`` (records). Every
query is compiled when the dashboard is saved, so a broken panel is a 400 then, not a blank
chart later. Export gives a versioned document that import takes back (on this server or
another), so dashboards can live in git like rule files. The server installs the reference
stack's dashboard (ALB → NGINX → checkout) when it has no dashboard yet.

Each document carries the scope of the key that created it and is seen (read, replaced, deleted)
only by keys whose scope covers it: a query text can name another tenant's users or services.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import delete, insert, select, update

from logharbor.models import InputModel
from logharbor.server.features.alerts.tables import dashboards, saved_queries
from logharbor.server.features.query import (
    QueryError,
    TimeParseError,
    compile_query,
    parse,
    parse_duration_ns,
)
from logharbor.server.features.query import ast as qast
from logharbor.server.meta.db import MetaStore
from logharbor.server.scopes import GLOBAL, Scope

__all__ = ["EXPORT_FORMAT", "Dashboard", "DashboardStore", "NameTaken", "Panel", "SavedQuery",
           "open_dashboards", "reference_dashboard"]

EXPORT_FORMAT = "logharbor.dashboard/v1"


def _check_query(text: str) -> str:
    try:
        return compile_query(text, table="logs", time_from_ns=None, time_to_ns=None, limit=None,
                             max_limit=10_000).kind
    except QueryError as exc:
        raise ValueError(f"query: {exc.message}") from None


def _check_range(text: str) -> None:
    try:
        parse_duration_ns(text)
    except TimeParseError as exc:
        raise ValueError(f"time_range: {exc}") from None


class Panel(InputModel):
    """One panel: a title, a query and how to show it."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(..., min_length=1, max_length=200)
    type: Literal["timechart", "table", "single", "top", "logs"]
    query: str = Field(..., min_length=1, max_length=16 * 1024)
    column: str | None = Field(None, description="single: the column to show (default the first)")
    unit: str | None = Field(None, max_length=20)
    width: int = Field(6, ge=1, le=12, description="grid columns out of 12")

    @model_validator(mode="after")
    def _check(self) -> Panel:
        kind = _check_query(self.query)
        last = parse(self.query).pipes[-1:] or [None]
        if self.type == "timechart" and kind != "timechart":
            raise ValueError("a timechart panel needs a '| timechart …' query")
        if self.type == "top" and not isinstance(last[0], qast.Top):
            raise ValueError("a top panel needs a query ending in '| top N field'")
        if self.type == "single" and kind != "table":
            raise ValueError("a single-value panel needs a '| stats …' query")
        if self.type == "logs" and kind != "records":
            raise ValueError("a logs panel shows records: a filter without stats, timechart or fields")
        return self


class Dashboard(BaseModel):
    """A named set of panels over one time range."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200, pattern=r"^[^/\x00-\x1f]+$")
    description: str = Field("", max_length=2000)
    time_range: str = Field("1h", description="default range, e.g. 15m, 1h, 7d")
    refresh: str | None = Field(None, description="auto-refresh period, e.g. 30s")
    panels: list[Panel] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _check(self) -> Dashboard:
        _check_range(self.time_range)
        if self.refresh is not None:
            _check_range(self.refresh)
        return self


class SavedQuery(BaseModel):
    """A named query with its default time range."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=200, pattern=r"^[^/\x00-\x1f]+$")
    query: str = Field(..., min_length=1, max_length=16 * 1024)
    description: str = Field("", max_length=2000)
    time_range: str = "15m"

    @model_validator(mode="after")
    def _check(self) -> SavedQuery:
        _check_query(self.query)
        _check_range(self.time_range)
        return self


def reference_dashboard() -> Dashboard:
    """The demo's dashboard for the reference stack: ALB → NGINX → checkout on 9092/9093."""
    p = Panel
    return Dashboard(name="Reference stack", time_range="1h", refresh="30s",
                     description="ALB → NGINX → checkout (ports 9092/9093): traffic, errors, latency.",
                     panels=[
        p(title="Requests by layer", type="timechart", width=12,
          query="_exists_:status | timechart span=1m count() by source"),
        p(title="5xx at the ALB", type="single", unit="requests",
          query="source:alb AND status:>=500 | stats count() as errors"),
        p(title="p99 latency, checkout", type="single", unit="ms",
          query="service:checkout AND _exists_:duration_ms | stats p99(duration_ms) as p99"),
        p(title="Status codes at NGINX", type="timechart",
          query="source:nginx | timechart span=1m count() by status"),
        p(title="Latency by layer", type="table",
          query="_exists_:duration_ms | stats p50(duration_ms) as p50, p95(duration_ms) as p95, "
                "p99(duration_ms) as p99 by service, source"),
        p(title="Slowest paths", type="table",
          query="source:nginx | stats p95(duration_ms) as p95, count() as n by path "
                "| sort p95 desc | limit 10"),
        p(title="Top error codes", type="top", query="level:ERROR | top 10 error_code"),
        p(title="Errors", type="logs", width=12, query="level:(ERROR OR FATAL)"),
    ])


class NameTaken(Exception):
    """A document of that name exists (another scope's, or one a create must not replace)."""


class DashboardStore:
    """CRUD for one of the two tables (dashboards or saved queries); bodies are JSON documents."""

    def __init__(self, meta: MetaStore, table: Any, model: type[BaseModel]) -> None:
        self.meta = meta
        self.table = table
        self.model = model

    def get(self, name: str, viewer: Scope = GLOBAL) -> dict[str, Any] | None:
        """One document with its times, or None (also when ``viewer`` does not cover it)."""
        with self.meta.engine.connect() as conn:
            row = conn.execute(select(self.table).where(self.table.c.name == name)).mappings().first()
        return _out(dict(row)) if viewer.sees(row) else None

    def list(self, viewer: Scope = GLOBAL) -> list[dict[str, Any]]:
        """Every document ``viewer`` covers, by name."""
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(self.table).order_by(self.table.c.name)).mappings().all()
        return [_out(dict(r)) for r in rows if viewer.sees(r)]

    def put(self, item: BaseModel, *, replace: bool = True, owner: Scope = GLOBAL) -> bool:
        """Store ``item``; True when it was created (scoped like ``owner``). With ``replace=False``
        an existing name is :class:`NameTaken`; a replaced document keeps its scope, which ``owner``
        must cover (else the name is taken too)."""
        now = time.time_ns()
        spec = item.model_dump()
        name = spec["name"]
        with self.meta.engine.begin() as conn:
            row = conn.execute(select(self.table).where(self.table.c.name == name)).mappings().first()
            if row is not None and not owner.sees(row):
                raise NameTaken(f"the name {name!r} is taken; choose another")
            if row is not None and not replace:
                raise NameTaken(f"{name!r} exists; PUT it to replace it")
            if row is None:
                conn.execute(insert(self.table).values(name=name, spec=spec, created_ns=now, updated_ns=now,
                                                       **owner.columns()))
            else:
                conn.execute(update(self.table).where(self.table.c.id == row["id"]).values(
                    spec=spec, updated_ns=now))
        return row is None

    def delete(self, name: str, viewer: Scope = GLOBAL) -> bool:
        """Delete by name; whether there was one ``viewer`` covers."""
        if self.get(name, viewer) is None:
            return False
        with self.meta.engine.begin() as conn:
            return conn.execute(delete(self.table).where(self.table.c.name == name)).rowcount > 0

    def install_reference(self) -> bool:
        """Install the reference stack's dashboard when there is no dashboard at all."""
        with self.meta.engine.connect() as conn:
            if conn.execute(select(self.table.c.id).limit(1)).first() is not None:
                return False
        return self.put(reference_dashboard())


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return {**row["spec"], "created_ns": row["created_ns"], "updated_ns": row["updated_ns"],
            "scope": Scope.from_row(row).as_json()}


def open_dashboards(app_state: Any, meta: MetaStore) -> None:
    """Put the two stores on ``app.state`` and install the reference dashboard on a fresh server."""
    app_state.dashboards = DashboardStore(meta, dashboards, Dashboard)
    app_state.saved_queries = DashboardStore(meta, saved_queries, SavedQuery)
    app_state.dashboards.install_reference()
