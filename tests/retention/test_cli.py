"""``logharbor retention show | apply -f | preview | run | delete | storage`` against a real server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from tests.conftest import ROOT, ServerProcess

RULES_YAML = """\
rules:
  - name: debug
    match: {level: DEBUG}
    hot: 1d
    delete: 3d
    sample: {after: 1d, keep: 0.1}
  - name: alb
    match: {source: alb}
    hot: 7d
    warm: 30d
    cold: 365d
"""


def _cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LOGHARBOR_SERVER=server.url, LOGHARBOR_API_KEY=server.api_key)
    return subprocess.run([sys.executable, "-m", "logharbor.cli.main", "retention", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


@pytest.mark.e2e
def test_cli_round_trip(server: ServerProcess, tmp_path: Path) -> None:
    now = time.time()
    body = b"\n".join(orjson.dumps({"timestamp": now - age * 86_400, "source": "alb", "service": "edge",
                                    "message": f"hit {i}", "user_id": f"u-{i % 2}"})
                      for age in (1, 10, 40) for i in range(10))
    with server.client() as client:
        assert client.post("/api/v1/logs", content=body).status_code == 200
    server.wait_rows(30)
    rules = tmp_path / "retention.yaml"
    rules.write_text(RULES_YAML)
    applied = _cli(server, "apply", "-f", str(rules))
    assert applied.returncode == 0, applied.stderr
    assert "applied 2 retention rules" in applied.stdout
    shown = _cli(server, "show")
    assert "name: alb" in shown.stdout and "cold: 365d" in shown.stdout
    preview = orjson.loads(_cli(server, "preview", "--json").stdout)
    alb = next(r for r in preview["rules"] if r["rule"] == "alb")
    assert (alb["to_warm"], alb["to_cold"]) == (10, 10)
    assert _cli(server, "run").returncode == 0
    storage = orjson.loads(_cli(server, "storage", "--json").stdout)
    assert {t: f["records"] for t, f in storage["tiers"].items()} == {"hot": 10, "warm": 10, "cold": 10}
    deleted = _cli(server, "delete", "user_id:u-1")
    assert deleted.returncode == 0, deleted.stderr
    assert "done, 15 records deleted" in deleted.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: x\n    hot: soon\n")
    refused = _cli(server, "apply", "-f", str(bad))
    assert refused.returncode != 0 and "hot" in refused.stderr
