"""``pip install logharbor`` (no extras) is the sdk alone, in a clean venv: ``import logharbor.sdk``
works and pulls in no chDB, boto3, server or CLI; the ``logharbor`` command of such an install,
and of one with only the cli extra, says which extra to install instead of a traceback.

The project itself is installed with ``--no-deps --no-build-isolation`` from a copy of the
source tree; only its declared requirements (pyproject, versions from requirements/lock.txt) and
the build backend come from the package registry that pip is configured with."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from tests.conftest import ROOT

HEAVY = ("chdb", "boto3", "botocore", "psycopg", "cryptography", "logharbor.server", "logharbor.agent",
         "typer", "fastapi", "pydantic")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def run(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout,
                          check=False, cwd="/")


def pip(venv: Path, *args: str | Path) -> None:
    done = run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", *args)
    assert done.returncode == 0, done.stderr[-3000:]


def distributions(venv: Path) -> set[str]:
    site = next((venv / "lib").glob("python3*/site-packages"))
    return {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}


def copy_project(dest: Path) -> Path:
    """pyproject, README and src/ without the built UI (a symlink here) or bytecode."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "src", dest / "src", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "dist"))
    return dest


@pytest.mark.e2e  # a venv and pip installs: ~30 s on an idle machine
@pytest.mark.timeout(240)
def test_a_plain_install_is_the_sdk_alone(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", venv)
    assert made.returncode == 0, made.stderr
    probe = run(venv / "bin" / "python", "-m", "pip", "index", "versions", "orjson", timeout=30)
    if probe.returncode != 0:
        pytest.skip("the package registry is unreachable (`pip index versions orjson` failed: "
                    f"{probe.stderr.strip()[-300:]}); this test installs orjson and httpx from it")
    lock = ROOT / "requirements" / "lock.txt"
    pip(venv, "setuptools>=68", "wheel")  # the build backend, for --no-build-isolation
    tools = distributions(venv)
    pip(venv, "--no-deps", "--no-build-isolation", copy_project(tmp_path / "project"))
    pip(venv, "-c", lock, *PROJECT["dependencies"])

    checked = run(venv / "bin" / "python", "-c", "import sys, logharbor.sdk as sdk; sdk.configure(service='s'); "
                  f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "[]", checked.stdout
    brought = distributions(venv) - tools  # what the project and its declared requirements brought
    assert brought <= {"logharbor", "orjson", "httpx", "httpcore", "h11", "anyio", "idna", "certifi",
                       "sniffio", "typing_extensions"}, brought

    bare = run(venv / "bin" / "logharbor", "query", "*")
    assert bare.returncode == 1 and "Traceback" not in bare.stderr, bare.stderr
    assert "logharbor[cli]" in bare.stderr and "logharbor[server]" in bare.stderr, bare.stderr

    pip(venv, "-c", lock, *PROJECT["optional-dependencies"]["cli"])  # the client commands only
    (tmp_path / "agent.yaml").write_text("sources: {}\n")
    for command, extra in ((["agent", "-c", tmp_path / "agent.yaml"], "agent"),
                           (["server", "--port", "0"], "server"), (["server", "--help"], "server"),
                           (["wal", "verify", tmp_path], "server")):
        done = run(venv / "bin" / "logharbor", *command)
        assert done.returncode == 1 and "Traceback" not in done.stderr, (command, done.stderr)
        assert f"install logharbor[{extra}]" in done.stderr, (command, done.stderr)
    helped = run(venv / "bin" / "logharbor", "--help")  # the command list says what each needs
    assert helped.returncode == 0 and "needs logharbor[server]" in helped.stdout, helped.stdout
