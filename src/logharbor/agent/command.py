"""What ``logharbor agent -c agent.yaml [--check]`` does, without a command-line library.

The ``logharbor`` CLI and ``python -m logharbor.agent`` both call :func:`run_agent`: the agent
owns its command, the CLI only mounts it (so the agent never imports the CLI). SIGTERM/SIGINT stop
it cleanly; SIGHUP re-reads the config file and applies the difference (an invalid file is logged
and the running config kept). An agent reading only stdin exits by itself at the end of its input.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path

from logharbor.agent import telemetry
from logharbor.agent.config import ConfigError, load_config
from logharbor.agent.pipeline import Agent
from logharbor.agent.types import AgentError
from logharbor.filemodes import private_umask
from logharbor.formatversion import NewerFormat

__all__ = ["run_agent"]


def run_agent(config: Path, *, check: bool = False) -> int:
    """Run (or with ``check`` only validate) the agent of ``config``; the process's exit status.

    0: every record delivered (or the config is valid), 1: a stdin agent ended with records
    undelivered, 2: a bad config or an agent that could not start (the reason is on stderr).
    """
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    if check:
        print(f"{config}: ok ({len(cfg.sources)} sources, {len(cfg.transforms)} transforms, "
              f"{len(cfg.sinks)} sinks)")
        return 0
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
        return Agent(cfg, config).run(stop, reload)
    except AgentError as exc:
        print(f"{config}: {exc}", file=sys.stderr)
        return 2
    except NewerFormat as exc:  # state of a newer release: nothing was written
        telemetry.event(logging.ERROR, "agent cannot start: state written by a newer release", error=str(exc))
        print(f"logharbor agent: cannot start: {exc}", file=sys.stderr)
        return 2
