"""`logharbor demo` as a user runs it: it starts, prints where to look, and the queries it
suggests find the reference stack's records."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import free_port


@pytest.mark.parametrize("mode", [[], ["--generated"]], ids=["real-stack", "generated"])
def test_demo_prints_working_queries(tmp_path: Path, mode: list[str]) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "logharbor.cli.main", "demo", "--port", str(port), "--backlog", "1500",
         "--requests", "150", "--rate", "5", "--duration", "180", "--data-dir", str(tmp_path / "demo"), *mode],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 240  # the demo waits up to 90 s for a trace's three layers
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Ctrl-C" in line:
            break
    out = "".join(lines)
    try:
        key = re.search(r"LOGHARBOR_API_KEY=(lh_\S+)", out)
        assert key, out
        assert f"http://127.0.0.1:{port}" in out
        queries = re.findall(r"logharbor query '(.+?)' --since 1h", out)
        assert len(queries) == 4, out
        headers = {"authorization": f"Bearer {key[1]}"}
        results: dict[str, list[dict]] = {}  # type: ignore[type-arg]
        for q in queries:
            deadline = time.monotonic() + 90  # the last slice is searchable within a batch interval
            while True:
                response = httpx.post(f"http://127.0.0.1:{port}/api/v1/query", headers=headers,
                                      json={"q": q, "from": "now-1h", "limit": 500}, timeout=60)
                assert response.status_code == 200, response.text
                results[q] = response.json()["rows"]
                if results[q] or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        errors = results["service:checkout AND level:ERROR"]
        assert errors and all(r["service"] == "checkout" and r["level"] == "ERROR" for r in errors)
        assert all("payment declined" in r["message"] for r in results['"payment declined"'])
        traces = [q for q in queries if q.startswith("trace_id:")]
        if traces:  # a failed request's three layers were searchable in time: its trace
            layers = {r["source"] for r in results[traces[0]]}
            assert layers == {"alb", "nginx", "app"}, layers
        else:  # on a slow machine the demo says so and suggests the NGINX errors instead
            assert "source:nginx AND status:>=500" in queries, out
            rows = results["source:nginx AND status:>=500"]
            assert rows and all(r["source"] == "nginx" for r in rows), rows[:3]
        templates = results["level:>=WARN | patterns"]
        assert templates and all(set(t) >= {"pattern_id", "template", "count"} for t in templates)
        # the explain command it prints: the checkout errors set apart from the rest of the hour
        explain = re.search(r"logharbor explain '(.+?)' --since 1h --baseline complement", out)
        assert explain, out
        response = httpx.post(f"http://127.0.0.1:{port}/api/v1/explain", headers=headers, timeout=120,
                              json={"q": explain[1], "since": "1h", "baseline": "complement"})
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["focus"]["count"] > 0 and answer["values"], answer
        assert answer["statistic"]["tests"] > 0 and "message" in {x["field"] for x in answer["left_out"]}
        if answer["focus"]["count"] >= 30:  # the checkout errors are app records: source=app at least
            assert answer["values"][0]["significant"], (answer["focus"], answer["values"][:3])
    finally:
        proc.terminate()
        proc.wait(timeout=60)
