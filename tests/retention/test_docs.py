"""docs/retention.md stays true: every YAML example is a valid rules file and means what the text
says; every retention route and server setting it names exists."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from logharbor.server.config import ServerConfig
from logharbor.server.features.retention.delete import STEPS
from logharbor.server.features.retention.routes import retention_router
from logharbor.server.features.retention.rules import RetentionPolicy

DOC = Path(__file__).resolve().parents[2] / "docs" / "retention.md"


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)


def test_every_yaml_example_is_a_valid_rules_file() -> None:
    blocks = _yaml_blocks()
    assert len(blocks) >= 2
    for block in blocks:
        RetentionPolicy.model_validate(yaml.safe_load(block))


def test_the_first_example_means_what_the_text_says() -> None:
    policy = RetentionPolicy.model_validate(yaml.safe_load(_yaml_blocks()[0]))
    assert policy.rule_for({"source": "alb", "level": "ERROR"}).name == "alb"  # type: ignore[union-attr]
    assert policy.rule_for({"source": "app", "level": "FATAL"}).name == "errors"  # type: ignore[union-attr]
    assert policy.rule_for({"source": "app", "level": "DEBUG"}).name == "debug"  # type: ignore[union-attr]
    assert policy.rule_for({"source": "app", "level": "INFO"}).name == "everything-else"  # type: ignore[union-attr]
    day = 86_400 * 10**9
    debug = policy.rules[0].plan()
    assert debug.tier_at(2 * day) == "hot" and debug.tier_at(3 * day) is None
    alb = policy.rules[1].plan()
    assert [alb.tier_at(d * day) for d in (1, 8, 31, 366)] == ["hot", "warm", "cold", None]


def test_routes_and_settings_named_in_the_doc_exist() -> None:
    text = DOC.read_text()
    paths = {route.path for route in retention_router().routes}  # type: ignore[attr-defined]
    for path in paths:
        assert f"{path}`" in text, f"docs/retention.md does not document {path}"
    for name in ("cold_storage", "cold_endpoint", "retention_interval_s", "disk_max_bytes", "disk_min_free_bytes"):
        assert name in ServerConfig.model_fields
        assert f"| `{name}` |" in text


def test_the_delete_steps_in_the_doc_are_the_jobs() -> None:
    section = DOC.read_text().split("## Delete by query", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"^\| ((?:`\w+`(?:, )?)+) \|", section, flags=re.M)
    steps = [s for cell in named for s in re.findall(r"`(\w+)`", cell)]
    assert steps == list(STEPS)
