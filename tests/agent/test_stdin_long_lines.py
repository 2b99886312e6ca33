"""Long lines through a pipe (``app | logharbor agent``): a line longer than a read is joined, one
over ``max_line_bytes`` ships cut and marked; a real agent process ships to the counting receiver.
Regression: a line longer than ``read_block_bytes`` used to ship as several records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.agent.conftest import ROOT, write_config


def test_stdin_joins_long_lines_and_cuts_over_long_ones_marked(tmp_path: Path, receiver_factory: Any) -> None:
    r = receiver_factory()
    cfg = write_config(tmp_path / "agent.yaml", {
        "data_dir": str(tmp_path / "state"), "metrics": {"port": 0},
        "sources": {"in": {"type": "stdin", "read_block_bytes": 4096, "max_line_bytes": 20_000}},
        "sinks": {"srv": {"type": "logharbor", "url": r.url, "compression": "none",
                          "batch": {"timeout_secs": 0.1}}}})
    log = tmp_path / "agent.log"
    proc = subprocess.Popen([sys.executable, "-m", "logharbor.agent", "-c", str(cfg)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    assert proc.stdin is not None
    long, over = "l" * 15_000, "o" * 50_000
    data = f"a\n{long}\n{over}\nb\nno newline at the end".encode()
    for i in range(0, len(data), 3000):  # in pieces, as an app writes
        proc.stdin.write(data[i:i + 3000])
        proc.stdin.flush()
    proc.stdin.close()
    assert proc.wait(60) == 0, log.read_text()[-3000:]
    recs = r.records()
    assert [x["message"] for x in recs] == ["a", long, "o" * 20_000, "b", "no newline at the end"]
    assert recs[2]["truncated"] is True and recs[2]["original_bytes"] == 50_000
    assert all("truncated" not in x for i, x in enumerate(recs) if i != 2)
    assert "line longer than the limit shipped truncated" in log.read_text()
