"""docs/alerts.md: every rule file validates with ``logharbor alerts apply --check``, every
channel, silence and dashboard example with the server's models, and the rule table names
every field of the rule model."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
from tests.cli.terminal import in_process
from tests.conftest import ROOT

from logharbor.server.features.alerts.channels import KINDS, validate_config
from logharbor.server.features.alerts.rules import Rule
from logharbor.server.features.alerts.silences import SilenceCreate
from logharbor.server.features.dashboards.service import Dashboard

DOC = ROOT / "docs" / "alerts.md"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(info: str) -> list[str]:
    return [body for tag, body in FENCE.findall(DOC.read_text()) if tag.strip() == info]


@pytest.mark.parametrize("index", range(len(blocks("yaml rules"))))
def test_rule_files_pass_apply_check(index: int, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(blocks("yaml rules")[index])
    done = in_process("alerts", "apply", "-f", str(path), "--check")  # the CLI's own check, in this process
    assert done.code == 0, done.err
    assert re.fullmatch(r"\d+ rule\(s\) valid\n", done.out)


def test_channel_silence_and_dashboard_examples_validate() -> None:
    channels = [orjson.loads(b) for b in blocks("json channel")]
    assert {c["kind"] for c in channels} == set(KINDS)  # every registered kind has an example
    for channel in channels:
        validate_config(channel["kind"], channel["config"])
    for body in blocks("json silence"):
        SilenceCreate.model_validate(orjson.loads(body)).times(1_800_000_000_000_000_000)
    dashboards = [Dashboard.model_validate(orjson.loads(b)) for b in blocks("json dashboard")]
    assert {p.type for d in dashboards for p in d.panels} == {"timechart", "table", "single", "top", "logs"}


def test_rule_table_covers_the_model() -> None:
    text = DOC.read_text()
    for field in Rule.model_fields.values():
        name = field.alias or next(k for k, v in Rule.model_fields.items() if v is field)
        if name != "description":
            assert f"| `{name}` |" in text, name
