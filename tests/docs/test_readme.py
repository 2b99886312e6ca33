"""The README's commands, run as written (issue #26 item 13: its quick tour's curl was a 415).

The quick tour runs in bash from a fresh directory, with only what a reader has too: the
venv's ``logharbor`` (the block's ``.venv/bin/`` points at this interpreter's venv) and the
port moved to a free one. The install lines at the top are what CI itself runs (``.ci/run``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import ROOT, free_port

README = (ROOT / "README.md").read_text(encoding="utf-8")


def block(after: str, lang: str) -> str:
    """The first ``lang`` code block after the line ``after``."""
    tail = README.split(after, 1)[1]
    found = re.search(rf"```{lang}\n(.*?)```", tail, flags=re.S)
    assert found, (after, lang)
    return found[1]


def _as_written(script: str, port: int) -> str:
    venv_bin = str(Path(sys.executable).parent)
    return script.replace(".venv/bin/", venv_bin + "/").replace("8080", str(port))


@pytest.mark.e2e
def test_quick_tour(tmp_path: Path) -> None:
    script = block("## Quick tour", "bash")
    lines = [line for line in script.splitlines() if line.strip()]
    query_line = next(line for line in lines if "logharbor query" in line)
    assert lines[-1] == query_line and "content-type: application/x-ndjson" in script
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGHARBOR_")}
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # no venv activated
    env["LOGHARBOR_SERVER"] = f"http://127.0.0.1:{port}"  # the CLI's default, 127.0.0.1:8080, moved too
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with stdout.open("w") as out_file, stderr.open("w") as err_file:  # files: the server keeps them open
        proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", _as_written(script, port)], cwd=tmp_path,
                                env=env, stdout=out_file, stderr=err_file,
                                start_new_session=True)  # the server it starts with & is in its group
    try:
        code = proc.wait(timeout=180)
        out, err = stdout.read_text(), stderr.read_text()
        assert code == 0, (out, err)
        assert '{"accepted":1,"rejected":[]}' in out, (out, err)
        # the record is stored within --batch-max-age: the README's query again until it counts it
        key = (tmp_path / "data" / "admin.key").read_text().strip()
        command = _as_written(query_line, port)
        deadline = time.monotonic() + 60
        while "service=checkout count()=1" not in out:
            assert time.monotonic() < deadline, (out, err)
            done = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True,
                                  env={**env, "LOGHARBOR_API_KEY": key}, timeout=60)
            assert done.returncode == 0, done.stderr
            out = done.stdout
            time.sleep(0.2)
        # the same curl without the header (curl's default form type): a 415 that says the fix
        refused = httpx.post(f"http://127.0.0.1:{port}/api/v1/logs", content=b'{"message":"x"}\n',
                             headers={"authorization": f"Bearer {key}",
                                      "content-type": "application/x-www-form-urlencoded"}, timeout=30)
        assert refused.status_code == 415
        assert "add -H 'content-type: application/x-ndjson'" in refused.json()["error"]["message"]
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        proc.wait(timeout=60)
    _wait_stopped(port)


def _wait_stopped(port: int) -> None:
    """The server the tour started (in the script's process group, sent SIGTERM) has stopped."""
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
        except httpx.ConnectError:
            return
        assert time.monotonic() < deadline, "the quick tour's server did not stop"
        time.sleep(0.2)


def test_python_snippet() -> None:
    code = "from fastapi import FastAPI\napp = FastAPI()\n" + block("In a Python app:", "python")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
