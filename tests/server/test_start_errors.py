"""A server that cannot reach a database it is told to use says so in one line naming the
setting and the reason, without the URL's password, and exits non-zero: never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("flag", "url", "names"), [
    ("--meta-url", "postgresql://u:hunter2pw@127.0.0.1:1/db", "--meta-url"),
    ("--store", "clickhouse://u:hunter2pw@127.0.0.1:1/db", "127.0.0.1:1"),
])
def test_unreachable_database_at_start_is_one_clear_line(tmp_path: Path, flag: str, url: str, names: str) -> None:
    result = subprocess.run([sys.executable, "-m", "logharbor.cli.main", "server", "--data-dir",
                             str(tmp_path / "data"), "--port", "0", flag, url],
                            capture_output=True, text=True, cwd=ROOT, timeout=120)
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    assert "Traceback" not in out, out
    assert "hunter2pw" not in out, out
    line = next((ln for ln in out.splitlines() if "cannot start" in ln), None)
    assert line is not None, out
    assert names in line and "refused" in line.lower(), line
