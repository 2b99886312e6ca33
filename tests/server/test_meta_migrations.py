"""The metadata database opens a data dir an older release wrote: new nullable columns are added
in place, old rows keep their values, and the new column is usable at once (SQLite here; the same
function runs on PostgreSQL in tests/alerts/test_postgres.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, inspect, select

from logharbor.server.features.alerts.tables import alert_states
from logharbor.server.meta.db import READABLE_FROM, SCHEMA_VERSION, MetaStore, add_missing_columns, metadata


def old_alert_states(engine) -> None:  # type: ignore[no-untyped-def]
    """``alert_states`` as the first release made it: every column but ``details``."""
    old = MetaData()
    Table("alert_states", old, *[Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
                                 for c in alert_states.columns if c.name != "details"])
    old.create_all(engine)


def test_an_old_database_gets_the_new_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    engine = create_engine(url)
    old_alert_states(engine)
    with engine.begin() as conn:
        conn.execute(insert(alert_states).values(
            rule_id=1, group_key="{}", group_labels={}, state="firing", value=3.0, updated_ns=1))
    engine.dispose()

    meta = MetaStore(url)
    meta.create()  # what the server does on start
    columns = {c["name"] for c in inspect(meta.engine).get_columns("alert_states")}
    assert "details" in columns
    with meta.engine.begin() as conn:
        row = conn.execute(select(alert_states)).mappings().one()
        assert (row["state"], row["value"], row["details"]) == ("firing", 3.0, None)
        conn.execute(alert_states.update().values(details={"median": 0.0, "mad": 0.0}))
        assert conn.execute(select(alert_states.c.details)).scalar_one() == {"median": 0.0, "mad": 0.0}
    assert add_missing_columns(meta.engine) == []  # a second start has nothing to add
    meta.close()


def test_a_new_column_that_is_not_nullable_is_refused(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    Table("lh_probe_table", MetaData(), Column("id", Integer, primary_key=True)).create(engine)
    probe = Table("lh_probe_table", metadata, Column("id", Integer, primary_key=True),
                  Column("must_have", String(10), nullable=False))
    try:
        with pytest.raises(RuntimeError, match=r"lh_probe_table\.must_have is new and not nullable"):
            add_missing_columns(engine)
    finally:
        metadata.remove(probe)
        engine.dispose()


def test_the_schema_row_is_written_by_the_first_start_and_read_by_the_next(tmp_path: Path) -> None:
    """A database of the releases before the row (schema 0) is brought to this schema and stamped;
    a restart finds the row and writes nothing; a newer one is refused before any DDL
    (tests/upgrade/test_newer_release_files.py)."""
    url = f"sqlite:///{tmp_path / 'meta.db'}"
    engine = create_engine(url)
    old_alert_states(engine)  # an older release's database: no logharbor_schema table
    engine.dispose()
    meta = MetaStore(url)
    try:
        assert meta.schema() == (0, 0)
        meta.create()
        assert meta.schema() == (SCHEMA_VERSION, READABLE_FROM)
    finally:
        meta.close()
    written = (tmp_path / "meta.db").read_bytes()
    again = MetaStore(url)
    try:
        again.create()
        assert again.check_schema() == (SCHEMA_VERSION, READABLE_FROM)
    finally:
        again.close()
    assert (tmp_path / "meta.db").read_bytes() == written  # a restart writes nothing
