"""docs/sdk.md stays true: every configure() option is in its table and every example runs."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from sdk_helpers import ROOT, Receiver, parse_lines

from logharbor import sdk

DOC = ROOT / "docs" / "sdk.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_every_configure_option_is_documented() -> None:
    text = DOC.read_text()
    for name in inspect.signature(sdk.configure).parameters:
        assert f"| `{name}` |" in text, f"docs/sdk.md does not document configure({name}=…)"


def test_the_record_example_is_valid_json() -> None:
    (example,) = re.findall(r"```json\n(.*?)```", DOC.read_text(), flags=re.S)
    record = orjson.loads(example.replace("\n", ""))
    assert record["level"] == "INFO" and len(record["trace_id"]) == 32


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "example.py"
    script.write_text(code)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_example_runs(index: int, tmp_path: Path) -> None:
    code = EXAMPLES[index]
    receiver = None
    if "ship_to=" in code:
        receiver = Receiver()
        code = code.replace("http://127.0.0.1:8080", receiver.url)
    try:
        ten_lines = "async def pay(" in code
        if ten_lines:  # serve one request in-process to see the lines the page promises
            code += ("\nfrom starlette.testclient import TestClient\n"
                     "TestClient(app).post('/orders/o-42/pay')\nsdk.flush()\n")
        done = _run(code, tmp_path)
        assert done.returncode == 0, done.stderr
        # stdout is the default output: every JSON line there is a canonical record
        records = parse_lines("\n".join(x for x in done.stdout.splitlines() if x.startswith('{"')))
        assert all(r["timestamp"].endswith("Z") and r["service"] and r["level"] for r in records)
        if ten_lines:
            (declined,) = [r for r in records if r["message"] == "payment declined"]
            (access,) = [r for r in records if r["logger"] == "logharbor.access"]
            assert declined["message"] == "payment declined" and declined["service"] == "checkout"
            assert declined["user_id"] == "u-123" and declined["order_id"] == "o-42"
            assert declined["amount"] == 12.5 and declined["trace_id"] == access["trace_id"]
            assert access["http"]["route"] == "/orders/{order_id}/pay"
        if receiver is not None:
            assert [r["message"] for r in receiver.delivered()] == ["report built"]
            assert receiver.requests[0]["headers"]["Authorization"] == "Bearer lh_writer_key"
        if "Redactor.from_config" in code:
            out = done.stdout.splitlines()
            assert out[0] == "[EMAIL] paid [CARD] from [IPV4]"
            assert "'password': '[REDACTED]'" in out[1] and "1234567812345678" in out[1]
    finally:
        if receiver is not None:
            receiver.stop()
