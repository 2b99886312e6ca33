"""scripts/install.sh: installs the extras the README's commands need, with the locked versions,
and counts a Debian package as installed only when dpkg says ``install ok installed``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from tests.conftest import ROOT

SCRIPT = (ROOT / "scripts" / "install.sh").read_text()
LOCK = ROOT / "requirements" / "lock.txt"


def installed_function() -> str:
    (line,) = [ln for ln in SCRIPT.splitlines() if ln.startswith("installed() {")]
    return line


@pytest.mark.parametrize(("status", "installed"), [
    ("install ok installed", True),
    ("deinstall ok config-files", False),  # removed, not purged: `dpkg -s` still succeeds
    ("install ok half-configured", False),
    ("install ok unpacked", False),
    ("", False),  # dpkg-query knows no such package
])
def test_a_package_counts_as_installed_only_when_dpkg_says_so(tmp_path: Path, status: str,
                                                              installed: bool) -> None:
    """dpkg itself cannot be put in these states here without root and a real package, so a
    stand-in dpkg-query on PATH answers what dpkg answers in each state."""
    fake = tmp_path / "dpkg-query"
    code = 0 if status else 1
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' '{status}'\nexit {code}\n")
    fake.chmod(0o755)
    done = subprocess.run(["bash", "-c", f"{installed_function()}\ninstalled nginx-light", "x"],
                          env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, check=False, timeout=30)
    assert (done.returncode == 0) is installed


def test_install_uses_the_lock_and_the_extras_the_readme_needs() -> None:
    assert re.search(r'pip install .*-c requirements/lock\.txt -e "\.\[\$extra\]"', SCRIPT)
    assert "extra=server" in SCRIPT and "[ $want_test = 1 ] && extra=test" in SCRIPT
    assert not re.search(r"^[^#]*dpkg -s ", SCRIPT, flags=re.M)  # its exit code says nothing of the state


def test_the_lock_pins_every_requirement_of_every_extra() -> None:
    """Every package a declared requirement names (extras followed) has an exact version in the
    lock, inside the range pyproject allows."""
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    for text in [*project["dependencies"], *(r for e in ("cli", "agent", "server", "test") for r in extras[e])]:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if name == "logharbor":
            continue
        assert name in pins, f"{name} is not in requirements/lock.txt (run scripts/lock.py)"
        assert req.specifier.contains(pins[name], prereleases=True), (text, pins[name])
    assert "starlette" in pins and "starlette" not in str(project), "fastapi brings starlette"


def test_install_builds_the_compiled_record_path_and_goes_on_without_it() -> None:
    """The build is tried (gcc and the Python headers from apt, Cython from the lock); a failure is
    said on stderr and the install goes on (the server runs the Python record path)."""
    assert "apt_pkgs+=(gcc libc6-dev python3-dev)" in SCRIPT
    assert "extra=server,native" in SCRIPT
    assert re.search(r"if ! \.venv/bin/python scripts/build_native\.py .*; then\n\s+echo .*not built", SCRIPT)


def test_build_native_says_why_it_did_not_build(tmp_path: Path) -> None:
    shadow = tmp_path / "Cython"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('no Cython here')\n")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_native.py")], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 1
    assert "build_native: not built, no Cython here (pip install cython)" in done.stderr
