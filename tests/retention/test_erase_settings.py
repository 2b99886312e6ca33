"""The tables a delete erases get their cleanup settings at CREATE (store/base.py ERASURE_SETTINGS).

Set by ``ALTER … MODIFY SETTING`` on a new table, the engine kept the cleanup schedule the table
was loaded with: a fresh server's first delete waited ~35 s in its purge step for the replaced
parts to go (its default 30 s, whatever the table said), ~2 s with the settings in the CREATE.
So on a fresh store no ALTER is needed, and every erased table has them."""

from __future__ import annotations

from pathlib import Path

from tests.retention.helpers import open_tiers

from logharbor.server.engine.store.base import ERASURE_SETTINGS
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.engine.store.tiers import Tiers


def test_a_fresh_store_creates_its_tables_with_the_erasure_settings(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    altered: list[str] = []
    execute = EmbeddedStore.execute

    def spy(self: EmbeddedStore, sql: str, *args: object, **kwargs: object) -> object:
        if "MODIFY SETTING" in sql:
            altered.append(sql)
        return execute(self, sql, *args, **kwargs)

    monkeypatch.setattr(EmbeddedStore, "execute", spy)
    store, tiers, mover = open_tiers(tmp_path)
    try:
        assert altered == []  # everything was in the CREATE statements
        tables = [store.table_name, tiers.warm_name, store.patterns_name]
        rows = store.query("SELECT name, create_table_query AS q FROM system.tables "
                           "WHERE database = currentDatabase() AND name IN {t:Array(String)}", {"t": tables})
        assert sorted(r["name"] for r in rows) == sorted(tables)
        for row in rows:
            for key, value in ERASURE_SETTINGS.items():
                assert f"{key} = {value}" in row["q"], (row["name"], key)
    finally:
        mover.meta.engine.dispose()
        store.close()


def test_an_older_table_gets_them_at_start(tmp_path: Path) -> None:
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    try:  # a table made by a release before them: the settings it had then
        store.execute(f"ALTER TABLE {quote_identifier(store.table_name)} RESET SETTING max_cleanup_delay_period")
        Tiers(store, cold=None).open()  # type: ignore[arg-type]
        [row] = store.query("SELECT create_table_query AS q FROM system.tables WHERE database = "
                            "currentDatabase() AND name = {t:String}", {"t": store.table_name})
        assert f"max_cleanup_delay_period = {ERASURE_SETTINGS['max_cleanup_delay_period']}" in row["q"]
    finally:
        store.close()
