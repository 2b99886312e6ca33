"""The ``logharbor`` command: one typer app; each command group lives in its own module and
registers itself here with one line."""

from __future__ import annotations

import typer

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

app = typer.Typer(
    name="logharbor",
    help="Centralized log collection: server, agent, query, tail, trace, demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def main() -> None:
    """Centralized log collection: server, agent, query, tail, trace, demo."""


for module in (server, agent, query, keys, tail, trace, demo, alerts, retention, migrate, wal, store):
    module.register(app)


if __name__ == "__main__":
    app()
