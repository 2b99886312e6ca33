"""``logharbor store check|repair DATA_DIR``: find and mend damaged table definitions of a
stopped server's embedded store (see ``logharbor.server.engine.store.startcheck``)."""

from __future__ import annotations

from pathlib import Path

import typer

from logharbor.cli.client import die

__all__ = ["register"]

store_app = typer.Typer(
    help="Check (check) and mend (repair) the table definitions of a stopped server's embedded store.",
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


def register(app: typer.Typer) -> None:
    app.add_typer(store_app, name="store")
