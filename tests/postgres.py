"""Debian's PostgreSQL, run by the tests on loopback (initdb + pg_ctl in a temporary directory).

Used by the ``pg_url`` fixture (tests/conftest.py) and directly by tests that stop and start the
database under a running server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

__all__ = ["Postgres"]


def _pg_tool(name: str) -> str | None:
    """Debian keeps the server tools in /usr/lib/postgresql/<version>/bin, off the PATH."""
    found = shutil.which(name)
    if found is None:
        candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
        found = str(candidates[-1]) if candidates else None
    return found


INITDB = _pg_tool("initdb")
PG_CTL = _pg_tool("pg_ctl")


def _as_postgres(*cmd: str) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else list(cmd)


class Postgres:
    """One throw-away cluster: ``start()`` (initdb the first time), ``stop()``, ``url``, ``close()``."""

    def __init__(self, port: int) -> None:
        if INITDB is None or PG_CTL is None:
            pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
        pytest.importorskip("psycopg")
        self.port = port
        self.root = Path(tempfile.mkdtemp(prefix="lh-pg-"))
        self.data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        subprocess.run(_as_postgres(INITDB, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
                       check=True, capture_output=True, timeout=120)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> Postgres:
        assert PG_CTL is not None
        subprocess.run(_as_postgres(PG_CTL, "-D", str(self.data), "-l", str(self.root / "log"), "-w", "-o",
                                    f"-h 127.0.0.1 -p {self.port} -k {self.root}", "start"),
                       check=True, capture_output=True, timeout=120)
        return self

    def stop(self, mode: str = "fast") -> None:
        assert PG_CTL is not None
        subprocess.run(_as_postgres(PG_CTL, "-D", str(self.data), "-m", mode, "stop"), capture_output=True,
                       timeout=60)

    def close(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
