"""Issue #26 item 10: ``logharbor demo &`` stops on ``kill -INT`` (a shell starts a background job
with SIGINT ignored), every process it started with it; and the commands it prints run as
printed from a shell where the venv is not activated."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from tests.conftest import free_port


def _as_a_background_job() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what `sh -c 'cmd &'` does to a job


def test_background_demo_stops_on_sigint_and_prints_runnable_commands(tmp_path: Path) -> None:
    port = free_port()
    bare_path = "/usr/local/bin:/usr/bin:/bin"  # no venv on it
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGHARBOR_")} | {"PATH": bare_path}
    proc = subprocess.Popen(
        [sys.executable, "-m", "logharbor.cli.main", "demo", "--generated", "--port", str(port),
         "--backlog", "300", "--rate", "2", "--data-dir", str(tmp_path / "demo")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        preexec_fn=_as_a_background_job)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C" in line:
                break
        out = "".join(lines)
        assert "Ctrl-C" in out, out
        commands = re.findall(r"^  (.+?) query '", out, re.MULTILINE)
        assert commands and len(set(commands)) == 1, out
        shown = commands[0]
        assert shown != "logharbor" or any(Path(d, "logharbor").exists() for d in bare_path.split(":"))
        # the command as printed, from a shell without the venv: it runs
        ran = subprocess.run(["sh", "-c", f"{shown} --version"], env=env, capture_output=True, text=True,
                             timeout=120)
        assert ran.returncode == 0 and ran.stdout.startswith("logharbor "), (shown, ran.stderr)
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200

        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, rest
        assert "demo stopped" in rest
        try:  # the server it started is stopped with it
            httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
            raise AssertionError("the demo's server still answers after the demo stopped")
        except httpx.ConnectError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
