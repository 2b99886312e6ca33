"""``logharbor agent -c agent.yaml [--check]``: run the host collector, or only validate its config.

SIGTERM/SIGINT stop it cleanly; SIGHUP re-reads the config file and applies the difference
(an invalid file is logged and the running config kept). An agent reading only stdin exits by
itself at the end of its input: 0 when every record was delivered, 1 when not (2: bad config).
"""

from __future__ import annotations

import signal
import threading
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
        from logharbor.agent.config import ConfigError, load_config

        try:
            cfg = load_config(config)
        except ConfigError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        if check:
            typer.echo(f"{config}: ok ({len(cfg.sources)} sources, {len(cfg.transforms)} transforms, "
                       f"{len(cfg.sinks)} sinks)")
            return
        from logharbor.agent import telemetry
        from logharbor.agent.pipeline import Agent
        from logharbor.agent.types import AgentError
        from logharbor.filemodes import private_umask

        private_umask()  # every file the agent creates is its user's alone (docs/security.md)
        telemetry.setup_logging(cfg.log_level)
        stop = threading.Event()

        reload = threading.Event()

        def _stop(_signum: int, _frame: object) -> None:
            stop.set()

        def _reload(_signum: int, _frame: object) -> None:
            reload.set()  # the main loop reloads: a signal handler must not take locks

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGHUP, _reload)
        try:
            status = Agent(cfg, config).run(stop, reload)
        except AgentError as exc:
            typer.echo(f"{config}: {exc}", err=True)
            raise typer.Exit(2) from None
        if status:
            raise typer.Exit(status)
