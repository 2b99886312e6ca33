"""``POST /api/v1/explain`` on a real server: the answer, the key's scope, and 4xx JSON bodies
that name what was wrong."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
from tests.cli.terminal import in_process
from tests.conftest import ServerProcess

from .data import WINDOW_NS, records

START_NS = 1_793_534_400 * 10**9  # 2026-11-01T12:00:00Z
FOCUS = {"from": "2026-11-01T12:30:00Z", "to": "2026-11-01T13:00:00Z"}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("explain") / "data", "--batch-max-age", "0.2").start()
    try:
        rows = list(records(3, START_NS, 10000, planted=True))
        for i, row in enumerate(rows):  # a second service the scoped key must not see
            if i % 10 == 0:
                row["service"] = "billing"
        server.ingest(rows)
        yield server
    finally:
        server.stop()


def post(server: ServerProcess, body: dict, key: str | None = None) -> httpx.Response:  # type: ignore[type-arg]
    headers = {"authorization": f"Bearer {key or server.api_key}"}
    return httpx.post(server.url + "/api/v1/explain", json=body, headers=headers, timeout=60)


def test_the_answer_names_the_cause_and_its_patterns(loaded: ServerProcess) -> None:
    response = post(loaded, {"q": "level:ERROR", **FOCUS})
    assert response.status_code == 200, response.text
    answer = response.json()
    top = [(v["field"], v["value"]) for v in answer["values"] if v["significant"]][:6]
    assert ("host", "web-7") in top and ("version", "1.4.3") in top, top
    first = answer["values"][0]
    assert {"field", "value", "filter", "focus", "baseline", "lift", "g", "p", "significant"} <= set(first)
    # the one-click filter finds exactly the focus records it counts
    check = loaded.query(f"level:ERROR AND {first['filter']} | stats count() as n", **FOCUS)
    assert check["rows"][0]["n"] == first["focus"]["count"]
    templates = [p for p in answer["patterns"] if "upstream returned" in p["template"]]
    assert templates and templates[0]["status"] == "new", answer["patterns"]
    assert answer["statistic"]["correction"] == "Bonferroni"


def test_a_scoped_key_sees_only_its_services(loaded: ServerProcess) -> None:
    key = loaded.create_key("reader", services=["billing"])
    answer = post(loaded, {"q": "*", **FOCUS}, key).json()
    want = sum(1 for i, r in enumerate(records(3, START_NS, 10000, planted=True))
               if i % 10 == 0 and r["timestamp"] >= START_NS + WINDOW_NS)
    assert answer["focus"]["count"] == want
    assert all(v["value"] != "checkout" for v in answer["values"] + answer["fell"])


@pytest.mark.parametrize(("body", "code"), [
    ({"q": "status:", **FOCUS}, "query_syntax"),
    ({"q": "* | stats count()", **FOCUS}, "filter_only"),
    ({"q": "status:abc", **FOCUS}, "type_mismatch"),
    ({"q": "*"}, "invalid_time"),
    ({"q": "*", "from": "yesterday-ish"}, "invalid_time"),
    ({"q": "*", "from": FOCUS["to"], "to": FOCUS["from"]}, "invalid_time"),
    ({"q": "*", **FOCUS, "baseline": "window"}, "invalid_time"),
    ({"q": "*", **FOCUS, "baseline": "window", "baseline_from": "2026-11-01T12:40:00Z",
      "baseline_to": "2026-11-01T13:10:00Z"}, "invalid_baseline"),
    ({"q": "*", **FOCUS, "baseline_from": "2026-11-01T11:00:00Z"}, "invalid_baseline"),
    ({"q": "*", **FOCUS, "baseline": "complement"}, "invalid_baseline"),
])
def test_bad_input_is_a_4xx_that_names_it(loaded: ServerProcess, body: dict, code: str) -> None:  # type: ignore[type-arg]
    response = post(loaded, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code, response.text
    assert response.json()["error"]["message"]


def test_an_unknown_key_or_bad_value_type_is_refused(loaded: ServerProcess) -> None:
    assert post(loaded, {"q": "*", **FOCUS, "alpha": 2}).status_code in (400, 422)
    assert post(loaded, {"q": "*", **FOCUS, "colour": 1}).status_code in (400, 422)
    assert httpx.post(loaded.url + "/api/v1/explain", json={"q": "*", **FOCUS}, timeout=30).status_code == 401


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOGHARBOR_SERVER": server.url, "LOGHARBOR_API_KEY": server.api_key, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "logharbor.cli.main", "explain", *args], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_cli_prints_one_line_per_value_into_a_pipe_and_json_on_request(loaded: ServerProcess) -> None:
    done = cli(loaded, "level:ERROR", "--from", FOCUS["from"], "--to", FOCUS["to"])  # a real process, a pipe
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines and all(" focus=" in line and " baseline=" in line for line in lines), lines
    assert any(line.startswith("host=web-7 ") and line.endswith(" significant") for line in lines), lines
    assert "Bonferroni" in done.stderr and "together:" in done.stderr
    env = {"LOGHARBOR_SERVER": loaded.url, "LOGHARBOR_API_KEY": loaded.api_key, "COLUMNS": "200"}
    run = in_process("explain", "level:ERROR", "--from", FOCUS["from"], "--to", FOCUS["to"], "-o", "json", "-n", "3",
                     env=env)
    assert run.code == 0, run.err
    assert len(json.loads(run.out)["values"]) <= 3
    run = in_process("explain", "status:", "--since", "1h", env=env)
    assert run.code == 1 and "query_syntax" in run.err
    run = in_process("explain", "level:ERROR", env=env)
    assert run.code == 2 and "--since" in run.err
