"""Run the real ``logharbor`` command the two ways people meet it: in a terminal (a
pseudo-terminal of a given size) and into a pipe. Both return what was printed and the exit code;
the terminal's output is what the screen received (with colours; :func:`plain` strips them).
:func:`in_process` runs the same command line in this process (typer's CliRunner, output captured
as a pipe would): for the many cases of one behaviour, beside one real process that shows it."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass

from tests.conftest import ROOT

CLI = [sys.executable, "-m", "logharbor.cli.main"]
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]")


@dataclass
class Run:
    out: str  # stdout (and, in a terminal, stderr too: one screen)
    err: str
    code: int

    @property
    def text(self) -> str:
        """The output without colour codes."""
        return plain(self.out)


def plain(text: str) -> str:
    return _ANSI.sub("", text)


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("LOGHARBOR_") and k not in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    env["TERM"] = "xterm-256color"
    env.update(extra or {})
    return env


def in_terminal(*args: str, columns: int, env: dict[str, str] | None = None, timeout: float = 120) -> Run:
    """``logharbor ARGS`` on a pseudo-terminal ``columns`` wide (stdin, stdout and stderr on it)."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    proc = subprocess.Popen([*CLI, *args], stdin=slave, stdout=slave, stderr=slave, env=_env(env), cwd=ROOT,
                            start_new_session=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"logharbor {' '.join(args)} did not finish: {b''.join(chunks)!r}")
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every end of the terminal's slave side is closed
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return Run(b"".join(chunks).decode(errors="replace").replace("\r\n", "\n"), "", code)


def in_pipe(*args: str, columns: int | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> Run:
    """``logharbor ARGS | …``: stdout and stderr are pipes; ``COLUMNS`` set when ``columns``."""
    extra = dict(env or {})
    if columns is not None:
        extra["COLUMNS"] = str(columns)
    done = subprocess.run([*CLI, *args], capture_output=True, text=True, env=_env(extra), cwd=ROOT,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    return Run(done.stdout, done.stderr, done.returncode)


def in_process(*args: str, env: dict[str, str] | None = None) -> Run:
    """``logharbor ARGS`` in this process through typer's CliRunner: stdout and stderr captured (not
    a terminal, as in a pipe), the environment as :func:`in_pipe` gives it (none of the caller's
    ``LOGHARBOR_*``). A crash is raised, not read as exit code 1."""
    from typer.testing import CliRunner

    from logharbor.cli.main import app

    unset: dict[str, str | None] = {k: None for k in os.environ
                                    if k.startswith("LOGHARBOR_") or k in ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR")}
    result = CliRunner().invoke(app, list(args), env={**unset, "TERM": "xterm-256color", **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Run(result.stdout, result.stderr, result.exit_code)
