"""``logharbor store check|repair DATA_DIR``: find and mend damaged table definitions of a
stopped server's embedded store (see ``logharbor.server.engine.store.startcheck``);
``logharbor store duplicates DATA_DIR [--remove]``: the copies an earlier release's tier mover
left (``logharbor.server.engine.store.duplicates``)."""

from __future__ import annotations

from pathlib import Path

import typer

from logharbor.cli.client import die

__all__ = ["register"]

store_app = typer.Typer(
    help="Check (check) and mend (repair) the table definitions of a stopped server's embedded store; "
         "find (duplicates) the copies an earlier release's tier mover left.",
    no_args_is_help=True)

_DATA_DIR = typer.Argument(..., metavar="DATA_DIR",
                           help="the server's data directory (the one holding store/)")
_TABLE = typer.Option("logs", "--table", help="the server's logs table name (its --table)")


def _store_dir(data_dir: Path) -> Path:
    if not (data_dir / "store" / "metadata").is_dir():
        die(f"{data_dir}: no embedded store here (expected {data_dir / 'store'})")
    return data_dir / "store"


@store_app.command("check")
def check(data_dir: Path = _DATA_DIR) -> None:
    """List damaged table definitions; exit 1 when there are some."""
    from logharbor.server.engine.store.startcheck import find_damaged

    damaged = find_damaged(_store_dir(data_dir))
    if not damaged:
        typer.echo(f"store {data_dir / 'store'}: every table definition reads whole")
        return
    for d in damaged:
        kind = "holds data: `logharbor store repair` writes it back" if d.holds_data else \
            "holds no data: set aside at the next start (or by repair)"
        typer.echo(f"DAMAGED {d.path}: table {d.database}.{d.table or '-'}: {d.problem}; {kind}")
    raise typer.Exit(1)


@store_app.command("repair")
def repair(data_dir: Path = _DATA_DIR, table: str = _TABLE,
           dry_run: bool = typer.Option(False, "--dry-run", help="say what would be done, change nothing")
           ) -> None:
    """Write damaged definitions back from logharbor's schema (the server must be stopped)."""
    from logharbor.server.engine.store.startcheck import repair as mend

    _store_dir(data_dir)
    try:
        lines = mend(data_dir, table=table, dry_run=dry_run)
    except ValueError as exc:
        die(str(exc))
    for line in lines:
        typer.echo(("would: " if dry_run else "") + line)


@store_app.command("duplicates")
def duplicates(data_dir: Path = _DATA_DIR, table: str = _TABLE,
               remove: bool = typer.Option(False, "--remove", help="remove the old mover's extra copies "
                                           "(each record kept as many times as it was sent)"),
               cold_storage: str = typer.Option("cold", help="the server's --cold-storage"),
               cold_endpoint: str | None = typer.Option(None, help="the server's --cold-endpoint"),
               encryption_key_file: Path | None = typer.Option(None, help="key file of an encrypted store"),
               store_url: str | None = typer.Option(None, "--store", metavar="URL",
                                                    help="the server's ClickHouse --store (one server, "
                                                         "not a cluster) instead of DATA_DIR/store"),
               ) -> None:
    """List records the tier mover of an earlier release copied more than once (the server must be
    stopped; opening the store upgrades it first, as a start would); exit 1 when some are left."""
    from logharbor.sealing import Sealer
    from logharbor.server.engine.store.base import Store, StoreError
    from logharbor.server.engine.store.clickhouse import ClickHouseStore
    from logharbor.server.engine.store.coldstore import cold_store_from_url
    from logharbor.server.engine.store.duplicates import describe, find_duplicates, remove_duplicates
    from logharbor.server.engine.store.embedded import EmbeddedStore
    from logharbor.server.engine.store.tiers import Tiers

    if store_url is None:
        _store_dir(data_dir)
    try:
        store: Store
        if store_url is not None:
            store = ClickHouseStore(store_url, table=table, writer_id="duplicates")
            if store.cluster:
                die("--store: not on a cluster (its rows sit behind a Distributed table, which a DELETE "
                    "cannot reach); point it at one server", 2)
        else:
            sealer = Sealer.from_file(encryption_key_file) if encryption_key_file else None
            store = EmbeddedStore(data_dir / "store", table=table, sealer=sealer)
        store.open()
    except (StoreError, ValueError, OSError) as exc:
        die(f"cannot open the store {store_url or data_dir}: {exc}")
    try:
        cold = None if store.storage_policy else cold_store_from_url(cold_storage, data_dir,
                                                                     endpoint=cold_endpoint)
        tiers = Tiers(store, cold)
        tiers.open()
        groups = find_duplicates(tiers)
        for group in groups:
            typer.echo(describe(group))
        extra = sum(g.extra_rows for g in groups)
        listed = [g for g in groups if not g.removable]
        typer.echo(f"{len(groups)} records in more than one place: {extra} extra copies of the old "
                   f"mover, {len(listed)} listed only")
        if remove and extra:
            removed = remove_duplicates(tiers, groups)
            left = [g for g in find_duplicates(tiers) if g.removable]
            typer.echo(f"removed {removed} extra copies; {len(left)} records still in more than one place")
            if removed != extra or left:
                raise typer.Exit(1)
            groups = listed
        if groups:
            raise typer.Exit(1)
    except StoreError as exc:
        die(str(exc))
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")
