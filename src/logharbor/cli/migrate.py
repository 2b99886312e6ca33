"""``logharbor migrate --from DATA_DIR --to clickhouse://…``: move an embedded store into ClickHouse.

Run it on a stopped server's data directory (chDB lets one process own a data path). It copies
the logs table — and the warm tier, if retention made one — day partition by day partition, each
day in chunks of whole minutes of at most ``--chunk-rows`` rows. Every chunk is one insert whose
deduplication token names the table, the day and the chunk's minutes, so a chunk sent twice is
stored once. Progress is kept per day (and per chunk within the day being copied) in
``DATA_DIR/migrate.json``: after an interruption the same command carries on where it stopped,
and at worst re-sends chunks the target then ignores. The source is only read. With
``--meta-to`` the metadata tables are copied too (:func:`copy_metadata`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from logharbor.durable import write_atomic
from logharbor.formatversion import NewerFormat
from logharbor.server.engine.store.sql import migrate as migrate_sql

__all__ = ["Migration", "register"]

MINUTE_NS = 60 * 10**9
_TOKEN_SAFE = re.compile(r"[^a-z0-9_.-]")


@dataclass
class Chunk:
    """Whole minutes ``[start_ns, end_ns)`` of one day of one table, and how many rows they hold."""

    table: str
    day: str
    start_ns: int
    end_ns: int
    rows: int

    @property
    def token(self) -> str:
        """The same chunk always gets the same token (it is what makes a re-run harmless)."""
        name = _TOKEN_SAFE.sub("_", self.table.lower())
        return f"migrate-{name}-{self.day}-{self.start_ns // MINUTE_NS}-{self.end_ns // MINUTE_NS}"


@dataclass
class MigrationProgress:
    """What ``migrate.json`` holds: per table, the finished days and the finished chunks of others."""

    path: Path
    target: str
    days: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> day -> rows copied
    chunks: set[str] = field(default_factory=set)  # tokens of chunks done in unfinished days
    meta: dict[str, int] = field(default_factory=dict)  # metadata table -> rows copied (-1: skipped)

    @classmethod
    def load(cls, path: Path, target: str) -> MigrationProgress:
        if not path.exists():
            return cls(path, target)
        data = orjson.loads(path.read_bytes())
        if data.get("target") != target:
            raise ValueError(f"{path} records a migration to {data.get('target')}; move it away to start "
                             f"a migration to {target}")
        return cls(path, target, data.get("days", {}), set(data.get("chunks", [])), data.get("meta", {}))

    def save(self) -> None:
        """Write atomically (temp file, fsync, rename): a crash leaves the old or the new state."""
        write_atomic(self.path, orjson.dumps({"target": self.target, "days": self.days,
                                              "chunks": sorted(self.chunks), "meta": self.meta},
                                             option=orjson.OPT_INDENT_2))


class Migration:
    """Copies the tables of an opened embedded store into an opened ClickHouse store."""

    def __init__(self, source: Any, target: Any, progress: MigrationProgress, *,
                 chunk_rows: int = 200_000) -> None:
        self.source = source
        self.target = target
        self.progress = progress
        self.chunk_rows = chunk_rows

    def tables(self) -> list[str]:
        """The logs table and, when retention made one, its warm tier."""
        names = [self.source.table_name, f"{self.source.table_name}_warm"]
        present = self.source.existing_tables(names)
        return [n for n in names if n in present]

    def plan(self, table: str) -> dict[str, list[Chunk]]:
        """Per day not yet finished, its chunks: whole minutes packed up to ``chunk_rows`` rows."""
        done = self.progress.days.get(table, {})
        rows = self.source.query(migrate_sql.minutes_sql(table), {})
        days: dict[str, list[Chunk]] = {}
        for row in rows:
            day, start, n = row["day"], int(row["m"]) * 10**9, int(row["n"])
            if day in done:
                continue
            chunks = days.setdefault(day, [])
            last = chunks[-1] if chunks else None
            if last is not None and last.end_ns == start and last.rows + n <= self.chunk_rows:
                last.end_ns, last.rows = start + MINUTE_NS, last.rows + n
            else:
                chunks.append(Chunk(table, day, start, start + MINUTE_NS, n))
        return days

    def read(self, chunk: Chunk) -> bytes:
        """The chunk's rows as JSONEachRow in the target's column order (tier-only columns left out)."""
        return b"".join(self.source.stream(migrate_sql.chunk_sql(chunk.table),
                                           {"lo": chunk.start_ns, "hi": chunk.end_ns}))

    def run(self, on_chunk: Any = None) -> dict[str, int]:
        """Copy everything not yet copied; counts of days and rows copied now (and days skipped)."""
        plans = {table: self.plan(table) for table in self.tables()}
        totals = {"days": 0, "rows": 0, "skipped_days": sum(len(d) for d in self.progress.days.values())}
        for table, days in plans.items():
            for day, chunks in days.items():
                copied = 0
                for chunk in chunks:
                    if chunk.token not in self.progress.chunks:
                        payload = self.read(chunk)
                        if payload.strip():
                            self.target.insert(payload, dedup_token=chunk.token)
                        self.progress.chunks.add(chunk.token)
                        self.progress.save()
                    copied += chunk.rows
                    if on_chunk is not None:
                        on_chunk(chunk)
                self.progress.days.setdefault(table, {})[day] = copied
                self.progress.chunks -= {c.token for c in chunks}
                self.progress.save()
                totals["days"] += 1
                totals["rows"] += copied
        return totals

    def pending_rows(self) -> int:
        """Rows still to copy (for the progress bar's total)."""
        return sum(c.rows for t in self.tables() for chunks in self.plan(t).values() for c in chunks)


def copy_metadata(source_url: str, target_url: str, progress: MigrationProgress) -> dict[str, int]:
    """Copy every metadata table (keys, rules, alert state, dashboards, retention) into ``target_url``.

    Table by table, each in one transaction; a table that already has rows in the target is left
    alone (reported as -1), so a re-run never duplicates. On PostgreSQL the id sequences are moved
    past the copied ids, so the next key or rule made there does not collide.
    """
    from sqlalchemy import Integer, func, insert, inspect, select

    import logharbor.server.features.alerts.tables
    import logharbor.server.features.retention.tables  # noqa: F401 - both register their tables in metadata
    from logharbor.server.meta.db import MetaStore, advance_sequence, metadata, schema_info

    source, target = MetaStore(source_url), MetaStore(target_url)
    try:
        source.check_schema()  # a newer release's database is refused, not copied into an older schema
        target.create()
        present = set(inspect(source.engine).get_table_names())
        for table in metadata.sorted_tables:
            if table.name in progress.meta or table.name not in present or table is schema_info:
                continue  # (the schema row is the target's own, written by its create())
            with source.engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(select(table)).mappings()]
            with target.engine.begin() as conn:
                if conn.execute(select(func.count()).select_from(table)).scalar():
                    progress.meta[str(table.name)] = -1
                else:
                    if rows:
                        conn.execute(insert(table), rows)
                    keys = list(table.primary_key.columns)
                    if (target.engine.dialect.name == "postgresql" and rows and len(keys) == 1
                            and isinstance(keys[0].type, Integer)):
                        top = conn.execute(select(func.max(keys[0]))).scalar()
                        advance_sequence(conn, str(table.name), str(keys[0].name), int(top))
                    progress.meta[str(table.name)] = len(rows)
            progress.save()
        return dict(progress.meta)
    finally:
        source.close()
        target.close()


def convert_in_place(url: str, table: str, console: Console) -> int:
    """Bring the ClickHouse store at ``url`` up to this release's layout; the exit code.

    On a cluster an old-layout logs table is converted (store/clusterconvert.py: copied, checked,
    swapped; the same command after a crash carries on); on one server the store's own start
    does it (store/attrmigrate.py). Then the store is opened as a server opens it, which creates
    what else is missing."""
    from logharbor.server.engine.store.base import StoreError
    from logharbor.server.engine.store.clickhouse import ClickHouseStore
    from logharbor.server.engine.store.clusterconvert import ClusterConversion

    try:
        store = ClickHouseStore(url, table=table, writer_id="migrate")
    except StoreError as exc:
        console.print(f"logharbor migrate: {exc}")
        return 2
    try:
        if store.cluster:
            store.connect()
            job = ClusterConversion(store, say=console.print)
            if job.needed():
                rows = job.run()
                console.print(f"converted {store.local_name} on cluster {store.cluster}: {rows} rows, "
                              f"{len(job.copied)} day partitions copied now")
            else:
                console.print(f"{store.local_name} on cluster {store.cluster}: already this release's layout")
        store.open()
        console.print(f"{store.url.redacted()}: the store opens with this release")
        return 0
    except StoreError as exc:
        console.print(f"logharbor migrate: {exc}\nthe old table is kept until the copy is checked: run the "
                      "same command again to carry on")
        return 1
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    @app.command("migrate")
    def migrate(
        from_dir: Path | None = typer.Option(None, "--from", help="a stopped server's data directory; "
                                             "without it, the ClickHouse store --to is brought up to this "
                                             "release's layout in place (a cluster's old tables converted)"),
        to: str = typer.Option(..., "--to", help="a ClickHouse URL: clickhouse://host:8123/db, with "
                                                    "user:pass@ and ?cluster=NAME as needed"),
        table: str = typer.Option("logs", help="name of the logs table (the server's --table)"),
        chunk_rows: int = typer.Option(200_000, min=1, help="rows per insert at most (whole minutes)"),
        encryption_key_file: Path | None = typer.Option(None, help="key file of an encrypted store"),
        meta_to: str | None = typer.Option(None, "--meta-to", metavar="URL",
                                           help="also copy the metadata (keys, rules, dashboards…) into this "
                                                "PostgreSQL database: postgresql://host/db, with "
                                                "user:pass@ as needed"),
    ) -> None:
        """Move an embedded store into ClickHouse, day by day; resumable (DATA_DIR/migrate.json).
        Without --from: convert the ClickHouse store --to in place (resumable: run it again)."""
        from logharbor.sealing import Sealer
        from logharbor.server.engine.store.base import StoreError
        from logharbor.server.engine.store.clickhouse import ClickHouseStore
        from logharbor.server.engine.store.embedded import EmbeddedStore

        console = Console(stderr=True)
        if from_dir is None:
            raise typer.Exit(convert_in_place(to, table, console))
        store_dir = from_dir / "store"
        if not store_dir.is_dir():
            console.print(f"logharbor migrate: {from_dir} has no store/: is it a logharbor data directory?")
            raise typer.Exit(2)
        try:
            target = ClickHouseStore(to, table=table, writer_id="migrate")
            sealer = Sealer.from_file(encryption_key_file) if encryption_key_file else None
            progress = MigrationProgress.load(from_dir / "migrate.json", target.url.redacted())
            source = EmbeddedStore(store_dir, table=table, sealer=sealer)
            source.open()
        except (StoreError, ValueError, OSError) as exc:
            console.print(f"logharbor migrate: {exc}")
            raise typer.Exit(2) from None
        try:
            target.open()
            job = Migration(source, target, progress, chunk_rows=chunk_rows)
            started = time.monotonic()
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TextColumn("rows"), TimeRemainingColumn(), console=console) as bar:
                task = bar.add_task(f"{store_dir} → {target.url.redacted()}", total=job.pending_rows())

                def advance(chunk: Chunk) -> None:
                    bar.update(task, advance=chunk.rows, description=f"{chunk.table} {chunk.day}")

                totals = job.run(advance)
            seconds = max(time.monotonic() - started, 1e-9)
            rate = totals["rows"] / seconds
            console.print(f"migrated {totals['rows']} rows in {totals['days']} day partitions ({rate:,.0f} "
                          f"rows/s); {totals['skipped_days']} day partitions were already done")
            if meta_to:
                url = meta_to
                if url.startswith(("postgresql://", "postgres://")):
                    url = "postgresql+psycopg://" + url.split("://", 1)[1]
                copied = copy_metadata(f"sqlite:///{from_dir / 'meta.db'}", url, progress)
                kept = sorted(name for name, n in copied.items() if n < 0)
                console.print(f"metadata: {sum(n for n in copied.values() if n > 0)} rows in "
                              f"{sum(1 for n in copied.values() if n >= 0)} tables copied"
                              + (f"; left alone (target not empty): {', '.join(kept)}" if kept else ""))
        except StoreError as exc:
            console.print(f"logharbor migrate: {exc}\nprogress is kept in {progress.path}: "
                          f"run the same command again to carry on")
            raise typer.Exit(1) from None
        except NewerFormat as exc:
            console.print(f"logharbor migrate: {exc}")
            raise typer.Exit(2) from None
        finally:
            source.close()
            target.close()
