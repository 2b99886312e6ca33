"""docs/grafana.md: every LogQL example parses (and runs); every refused one is refused by name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.conftest import ServerProcess

from logharbor.server.features.health.recorded import load_rules
from logharbor.server.features.loki.logql import LogQLError, parse_logql

from .conftest import get, query_range

DOC = (Path(__file__).resolve().parents[2] / "docs" / "grafana.md").read_text(encoding="utf-8")


def block(kind: str) -> list[str]:
    found = re.findall(rf"```{kind}\n(.*?)```", DOC, re.DOTALL)
    assert found, f"no ```{kind} block in docs/grafana.md"
    return [line for text in found for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("example", block("logql"))
def test_examples_parse_and_run(loki: ServerProcess, example: str) -> None:
    parse_logql(example)
    if example.startswith("vector("):
        assert get(loki, "/loki/api/v1/query", query=example).json()["data"]["result"][0]["value"][1] == "2"
        return
    step = "60000ms"
    if "quantile_over_time" in example:  # documented: over a range query, range = step
        step = re.findall(r"\[(\w+)\]", example)[0]
    data = query_range(loki, example, step=step)
    assert data["resultType"] in ("streams", "matrix")


@pytest.mark.parametrize("example", block("logql-unsupported"))
def test_refused_examples_are_refused(loki: ServerProcess, example: str) -> None:
    with pytest.raises(LogQLError):
        parse_logql(example)
    response = get(loki, "/loki/api/v1/query_range", query=example)
    assert response.status_code == 400 and response.json()["message"]


def test_every_route_is_documented() -> None:
    for route in ("query_range", "/query`", "labels", "label/{name}/values", "series", "index/stats", "index/volume",
                  "detected_fields", "detected_labels", "/tail", "status/buildinfo", "/ready", "/metrics/recorded"):
        assert route in DOC, route


def test_recording_rule_examples_load(tmp_path: Path) -> None:
    blocks = [b for b in re.findall(r"```yaml\n(.*?)```", DOC, re.DOTALL) if "record:" in b]
    assert len(blocks) >= 2
    for i, text in enumerate(blocks):
        path = tmp_path / f"rules{i}.yaml"
        path.write_text(text)
        assert load_rules(path)
