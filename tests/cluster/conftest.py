"""Fixtures for the cluster tests: the ClickHouse HTTP double (chDB behind ClickHouse's HTTP
interface, see chdouble.py), the stores the contract tests run against, and PostgreSQL.

PostgreSQL is the shared ``pg_url`` fixture of tests/conftest.py (Debian's initdb/pg_ctl on loopback).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import ROOT

USER, PASSWORD = "lh", "s3cret"
CLUSTER = "lh_cluster"  # the cluster the double serves (one local shard)


@dataclass
class Double:
    """A running ClickHouse double: ``url(db)`` is a ``--store`` URL for database ``db``."""

    port: int
    proc: subprocess.Popen[bytes]

    def url(self, database: str, cluster: str | None = None) -> str:
        tail = f"?cluster={cluster}" if cluster else ""
        return f"clickhouse://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}{tail}"


def start_double(path: Path) -> Double:
    """Start the double as its own process (chDB allows one data path per process)."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.cluster.chdouble", "--path", str(path),
                             "--user", USER, "--password", PASSWORD, "--cluster", CLUSTER],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if not line.startswith("ready "):
        proc.kill()
        raise RuntimeError(f"the ClickHouse double did not start: {line!r}")
    return Double(int(line.split()[1]), proc)


def stop_double(double: Double) -> None:
    assert double.proc.stdin is not None
    double.proc.stdin.close()
    try:
        double.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        double.proc.kill()
        double.proc.wait()


@pytest.fixture(scope="package")
def chdouble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Double]:
    """One double for the package; tests keep apart by database name."""
    double = start_double(tmp_path_factory.mktemp("chdouble") / "data")
    yield double
    stop_double(double)
