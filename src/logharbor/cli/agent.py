"""``logharbor agent -c agent.yaml [--check]``: run the host collector, or only validate its config.

The command itself is :func:`logharbor.agent.command.run_agent` (``python -m logharbor.agent``
runs the same); this module only mounts it on the ``logharbor`` app.
"""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the ``agent`` command to the ``logharbor`` app."""

    @app.command("agent")
    def agent(
        config: Path = typer.Option(..., "--config", "-c", help="Path of agent.yaml."),
        check: bool = typer.Option(False, "--check", help="Validate the config and exit."),
    ) -> None:
        """Tail files and other sources, and ship their records at least once to the sinks."""
        from logharbor.agent.command import run_agent  # the agent's imports only when it runs

        status = run_agent(config, check=check)
        if status:
            raise typer.Exit(status)
