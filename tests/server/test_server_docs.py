"""docs/server.md stays true: its config table covers every setting and its example runs."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import orjson
from tests.conftest import ServerProcess

from logharbor.server.config import ServerConfig

DOC = Path(__file__).resolve().parents[2] / "docs" / "server.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), flags=re.S)


def test_every_setting_is_documented() -> None:
    text = DOC.read_text()
    for name in ServerConfig.model_fields:
        assert f"| `{name}` |" in text, f"docs/server.md does not document {name}"


def test_the_ingest_example_answers_as_documented(server: ServerProcess) -> None:
    (body,) = blocks("ndjson")
    (answer,) = blocks("json")
    response = httpx.post(server.url + "/api/v1/logs", content=body.encode(),
                          headers={"content-type": "application/x-ndjson", **server.headers}, timeout=30)
    assert response.status_code == 200
    assert response.json() == orjson.loads(answer)
