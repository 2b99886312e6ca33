"""``logharbor query`` prints stored values as they are, integers beyond 64 bits included.

The server keeps such integers exactly (docs/record.md); the CLI read the streamed rows of
``--limit 0`` with orjson (``18446744073709551617`` printed as ``1.8446744073709552e+19`` in
CSV) and wrote ``-o json`` with it (a traceback: "Integer exceeds 64-bit range"). Each output is
read back here with a reader that keeps integers exact and compared with what was sent.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from tests.conftest import ServerProcess

from logharbor import exactjson

pytestmark = pytest.mark.slow  # the query CLI as processes

SENT = {"message": "cli exact", "service": "cliexact", "big": 18446744073709551617, "neg": -(2**63) - 1,
        "u64": 2**64 - 1, "f": -0.0, "one": 1.0, "nested": {"ids": [2**70, 1]}}


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGHARBOR_")}
    return subprocess.run([sys.executable, "-m", "logharbor.cli.query", "service:cliexact", "--since", "30d",
                           "--server", server.url, "--api-key", server.api_key, *args],
                          capture_output=True, text=True, env={**env, "COLUMNS": "200"}, timeout=120)


def _attributes(row: dict) -> dict:  # type: ignore[type-arg]
    return {k: row[k] for k in SENT if k not in ("message", "service")}


def _typed(value: object) -> object:
    return json.dumps(value)  # 1.0 vs 1, -0.0 vs 0.0 and big ints all differ in their JSON text


def test_every_output_keeps_integers_beyond_64_bits(server: ServerProcess) -> None:
    before = server.store_rows()
    with server.client() as client:  # orjson cannot write these integers: the exact writer does
        assert client.post("/api/v1/logs", content=exactjson.dumps(SENT)).json()["accepted"] == 1
    assert server.wait_rows(before + 1) > before
    want = _typed(_attributes(SENT))
    for args in (["-o", "json"], ["-o", "ndjson"], ["-o", "ndjson", "--limit", "0"]):
        result = cli(server, *args)
        assert result.returncode == 0, (args, result.stderr)
        lines = result.stdout.splitlines()
        row = json.loads(lines[0])["rows"][0] if args == ["-o", "json"] else json.loads(lines[0])
        assert _typed(_attributes(row)) == want, args
    result = cli(server, "-o", "csv", "--limit", "0")  # streamed: the attributes as one JSON cell
    assert result.returncode == 0, result.stderr
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert _typed(_attributes(json.loads(row["attributes"]))) == want
    result = cli(server, "-o", "csv")  # one column per attribute, nested ones as JSON text
    (row,) = csv.DictReader(io.StringIO(result.stdout))
    assert (row["big"], row["neg"], row["u64"]) == (str(SENT["big"]), str(SENT["neg"]), str(SENT["u64"]))
    assert json.loads(row["nested"]) == SENT["nested"]
