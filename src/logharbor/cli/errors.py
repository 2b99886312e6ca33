"""The one error type of the ``logharbor`` command, and what a missing extra becomes.

A :class:`CliError` is something the user can act on: the root command (``main.Root``) prints it
as one message on stderr, ``<prog>: <message>`` (``logharbor server: --tls-cert and --tls-key go
together``), and exits with its code, never with a traceback. Commands raise it; nothing else
prints and exits by hand. (A plain exception, not click's: typer carries its own copy of click.)
"""

from __future__ import annotations

import sys
from typing import IO

__all__ = ["COMMAND_EXTRAS", "CliError", "missing_extra"]

#: which ``pip install 'logharbor[…]'`` extra each command needs (the client commands: ``cli``)
COMMAND_EXTRAS = {"server": "server", "demo": "server", "migrate": "server", "wal": "server",
                  "store": "server", "agent": "agent"}


class CliError(Exception):
    """A message for the user and an exit code (1: failed, 2: bad usage or configuration);
    ``prog`` names the command in the message (default: the command that raised it)."""

    def __init__(self, message: str, code: int = 1, *, prog: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.prog = prog

    def show(self, prog: str, file: IO[str] | None = None) -> None:
        print(f"{self.prog or prog}: {self.message}", file=file or sys.stderr, flush=True)


def missing_extra(command: str, exc: ModuleNotFoundError) -> CliError:
    """``logharbor agent`` without the agent extra: which extra to install, not a traceback."""
    extra = COMMAND_EXTRAS.get(command, "cli")
    return CliError(f"this command needs the Python package '{(exc.name or '?').split('.')[0]}', which "
                    f"comes with logharbor's {extra} extra: install logharbor[{extra}] "
                    f"(pip install 'logharbor[{extra}]', or scripts/install.sh in a checkout)",
                    1, prog=f"logharbor {command}")
