"""The ``logharbor`` command: one typer app; each command group lives in its own module and
registers itself here with one line."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import typer

import logharbor
from logharbor.cli import (
    agent,
    alerts,
    demo,
    keys,
    migrate,
    query,
    retention,
    server,
    store,
    tail,
    trace,
    wal,
)
from logharbor.cli.help import HELP_NAMES, Group

app = typer.Typer(
    name="logharbor",
    help="Centralized log collection: server, agent, query, tail, trace, demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=Group,
    context_settings={"help_option_names": HELP_NAMES},
)


def package_version() -> str:
    """The installed distribution's version (the source tree's when it is not installed)."""
    try:
        return version("logharbor")
    except PackageNotFoundError:
        return logharbor.__version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"logharbor {package_version()}")
        raise typer.Exit(0)


@app.callback()
def main(
    _version: bool = typer.Option(False, "--version", "-V", is_eager=True, callback=_print_version,
                                  help="Print the version and exit."),
) -> None:
    """Centralized log collection: server, agent, query, tail, trace, demo."""


for module in (server, agent, query, keys, tail, trace, demo, alerts, retention, migrate, wal, store):
    module.register(app)


if __name__ == "__main__":
    app()
