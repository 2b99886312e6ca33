"""End to end: an app on the sdk ships straight into a real ``logharbor server`` and is found again."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _key(server) -> str | None:  # type: ignore[no-untyped-def]
    """The server's admin key when it runs with authentication (the fixture knows it)."""
    for name in ("admin_key", "api_key", "key"):
        value = getattr(server, name, None)
        if isinstance(value, str) and value:
            return value
    key_file = Path(server.data_dir) / "admin.key"  # written on first start
    return key_file.read_text().strip() if key_file.exists() else None


def test_app_ships_into_the_server_and_queries_back(server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    admin = _key(server)
    # the app ships with a writer key, as an app should (ingest only)
    key = server.create_key("writer") if hasattr(server, "create_key") and admin else admin
    script = tmp_path / "app.py"
    script.write_text(f"""
import logging
from logharbor import sdk
sdk.configure(service="sdk-e2e", env="test", version="2.0.0", output=None,
              ship_to={server.url!r}, api_key={key!r})
log = sdk.get_logger("e2e")
for i in range(120):
    with sdk.context(trace_id="5759e988bd862e3fe1be46a994272793", request_id=f"req-{{i}}"):
        log.info("order %d placed", i, extra={{"order_no": i, "http": {{"status": 200 + i % 2,
                                                                      "method": "POST"}}}})
try:
    raise ValueError("card declined")
except ValueError:
    log.exception("payment failed", extra={{"email": "carol@example.com"}})
""")
    subprocess.run([sys.executable, str(script)], check=True, timeout=60)
    headers = {"Authorization": f"Bearer {admin}"} if admin else {}
    deadline = time.monotonic() + 30
    rows: list = []
    while time.monotonic() < deadline:
        with server.client(headers=headers) as client:
            response = client.post("/api/v1/query", json={"q": "service:sdk-e2e", "limit": 1000})
        assert response.status_code == 200, response.text
        answer = response.json()
        rows = [dict(zip(answer["columns"], row, strict=True)) if isinstance(row, list) else row
                for row in answer["rows"]]
        if len(rows) >= 121:
            break
        time.sleep(0.2)
    assert len(rows) == 121
    failed = [row for row in rows if row.get("message") == "payment failed"]
    assert len(failed) == 1
    text = str(failed[0])
    assert "ValueError" in text and "card declined" in text
    assert "carol@example.com" not in text  # masked in the app, before it left
    placed = [row for row in rows if str(row.get("message", "")).startswith("order ")]
    assert len(placed) == 120
    assert {row.get("trace_id") for row in placed} == {"5759e988bd862e3fe1be46a994272793"}
    assert {row.get("level") for row in placed} == {"INFO"}
