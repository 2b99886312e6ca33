"""A sink URL that is rejected or echoed never shows its password or a token in its query."""

from __future__ import annotations

from pathlib import Path

import pytest

from logharbor.agent.config import ConfigError, load_config
from logharbor.agent.sinks.connections import redact_url

SECRETS = ("hunter2", "tok3n", "k3y")


@pytest.mark.parametrize("sink", ["logharbor", "elasticsearch"])
@pytest.mark.parametrize("url", [
    "ftp://alice:hunter2@logs.example:21/x?token=tok3n&api_key=k3y",
    "ftp://alice:hunter2@/no-host?token=tok3n",
    "http://:hunter2@?api_key=k3y",
])
def test_rejected_sink_url_is_reported_without_its_secrets(tmp_path: Path, sink: str, url: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(f"sources: {{a: {{type: file, include: [x]}}}}\n"
                    f"sinks: {{s: {{type: {sink}, url: '{url}'}}}}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "sinks.s.url" in text and "http:// or https://" in text
    for secret in SECRETS:
        assert secret not in text, text


def test_redact_url_keeps_what_helps_and_masks_what_is_secret() -> None:
    out = redact_url("https://alice:hunter2@logs.example:8443/api?token=tok3n&tenant=acme&API_KEY=k3y")
    assert "alice" in out and "logs.example:8443/api" in out and "tenant=acme" in out
    for secret in SECRETS:
        assert secret not in out
    assert redact_url("http://logs.example/x") == "http://logs.example/x"
    # not a parseable URL at all: still no password-looking userinfo left
    assert "hunter2" not in redact_url("http://alice:hunter2@[bad")
