"""``python -m logharbor.agent -c agent.yaml [--check]``: the agent command without the full CLI."""

from __future__ import annotations

import sys

import typer

from logharbor.cli.agent import register


def main() -> None:
    """Run the ``agent`` command as the whole program."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.callback()
    def _root() -> None:
        """logharbor agent."""

    register(app)
    app(["agent", *sys.argv[1:]], prog_name="logharbor")


if __name__ == "__main__":
    main()
