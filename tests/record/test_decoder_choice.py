"""Which decoder ingest runs (logharbor.server.ingest.decoder): the compiled copy only when it is
built from the sources beside it, the Python path otherwise, with the reason said."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from logharbor.server.ingest import decoder

PACKAGE = Path(decoder.__file__).resolve().parents[2]


def _package_copy(tmp_path: Path, digests: dict[str, str] | None) -> Path:
    """The record path's sources copied under ``tmp_path``, with a BUILD.json of ``digests``."""
    for rel in decoder.SOURCES.values():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(PACKAGE / rel, tmp_path / rel)
    if digests is not None:
        (tmp_path / "_native").mkdir(exist_ok=True)
        (tmp_path / "_native" / "BUILD.json").write_text(json.dumps({"sources": digests}))
    return tmp_path


def _digests(package: Path) -> dict[str, str]:
    return {name: decoder._digest(package / rel) for name, rel in decoder.SOURCES.items()}


def test_not_built_runs_python(tmp_path: Path) -> None:
    modules, reason = decoder.compiled_modules(_package_copy(tmp_path, None))
    assert modules is None and reason.startswith("not built")


def test_a_source_changed_since_the_build_runs_python(tmp_path: Path) -> None:
    package = _package_copy(tmp_path, None)
    digests = _digests(package)
    (package / "_native").mkdir(exist_ok=True)
    (package / "_native" / "BUILD.json").write_text(json.dumps({"sources": digests}))
    with (package / "record.py").open("a") as f:
        f.write("\n# edited after the build\n")
    modules, reason = decoder.compiled_modules(package)
    assert modules is None and reason == "stale: record.py changed since the build (run scripts/build_native.py)"


def test_an_unreadable_build_record_runs_python(tmp_path: Path) -> None:
    package = _package_copy(tmp_path, None)
    (package / "_native").mkdir(exist_ok=True)
    (package / "_native" / "BUILD.json").write_text("{")
    modules, reason = decoder.compiled_modules(package)
    assert modules is None and "unreadable" in reason


def test_pure_python_is_chosen_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGHARBOR_PURE_PYTHON", "1")
    assert decoder.compiled_modules() == (None, "LOGHARBOR_PURE_PYTHON is set")


@pytest.mark.skipif(decoder.COMPILED is None, reason=f"compiled path not in use here: {decoder.REASON}")
def test_a_current_build_runs_compiled() -> None:
    """A current build runs the C normaliser, with the compiled loop for the lines it hands back."""
    assert decoder.PATH == "rowc" and decoder.RELEASES_GIL is True
    assert decoder.ROWC is not None and decoder.decode_ndjson_payload is decoder._rowc_decode
    assert decoder.ROWC._fallback is decoder.COMPILED["ndjson"].decode_ndjson_payload  # type: ignore[index]
    modules, _ = decoder.compiled_modules(PACKAGE)
    assert modules is not None and set(modules) == set(decoder.SOURCES)


def test_a_fresh_process_says_which_path_and_why() -> None:
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent), "LOGHARBOR_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", "from logharbor.server.ingest import decoder as d; "
                          "print(d.PATH, '|', d.REASON, '|', d.decode_ndjson_payload.__module__)"],
                         env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.split(" | ") == ["python", "LOGHARBOR_PURE_PYTHON is set", "logharbor.server.ingest.ndjson\n"]


def test_the_python_path_does_not_claim_to_release_the_gil(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent), "LOGHARBOR_PURE_PYTHON": "1"}
    out = subprocess.run([sys.executable, "-c", "from logharbor.server.ingest import decoder as d; "
                          "print(d.RELEASES_GIL, d.ROWC)"], env=env, capture_output=True, text=True, timeout=60,
                         check=True).stdout
    assert out.split() == ["False", "None"]


@pytest.mark.parametrize("body", ['{"sources": []}', '{"sources": "x"}', '{"sources": null}', '[]', 'null',
                                  '{"sources": {"record": 5}}', '{"sources": {"record": ["a"]}}'])
def test_a_malformed_build_record_runs_python(tmp_path: Path, body: str) -> None:
    """Any BUILD.json that is not {"sources": {name: digest}} is a reason for the Python path,
    never an exception at import (the server would not start)."""
    package = _package_copy(tmp_path, None)
    (package / "_native").mkdir(exist_ok=True)
    (package / "_native" / "BUILD.json").write_text(body)
    modules, reason = decoder.compiled_modules(package)
    assert modules is None and ("unreadable" in reason or reason.startswith("stale")), reason


def test_a_source_missing_runs_python(tmp_path: Path) -> None:
    package = _package_copy(tmp_path, None)
    digests = _digests(package)
    (package / "_native").mkdir(exist_ok=True)
    (package / "_native" / "BUILD.json").write_text(json.dumps({"sources": digests}))
    (package / "server" / "ingest" / "ndjson.py").unlink()
    modules, reason = decoder.compiled_modules(package)
    assert modules is None and "server/ingest/ndjson.py" in reason, reason


def test_compiled_modules_from_another_place_are_not_used(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The build record vouches for the modules beside it only: a compiled logharbor._native found
    elsewhere on sys.path (another install, another Python's build) is not run under this
    package's BUILD.json. (No compiler here: the import answers a module compiled elsewhere.)"""
    package = _package_copy(tmp_path, None)
    (package / "_native").mkdir(exist_ok=True)
    (package / "_native" / "BUILD.json").write_text(json.dumps({"sources": _digests(package)}))
    elsewhere = tmp_path / "site-packages" / "logharbor" / "_native"

    def compiled_elsewhere(name: str) -> types.ModuleType:
        module = types.ModuleType(name)
        module.__file__ = str(elsewhere / f"{name.rsplit('.', 1)[1]}.cpython-311-x86_64-linux-gnu.so")
        return module

    monkeypatch.setattr(decoder.importlib, "import_module", compiled_elsewhere)
    modules, reason = decoder.compiled_modules(package)
    assert modules is None and "not the one built beside" in reason, reason
    beside = package / "_native"
    monkeypatch.setattr(decoder.importlib, "import_module", lambda name: types.SimpleNamespace(
        __file__=str(beside / f"{name.rsplit('.', 1)[1]}.cpython-311-x86_64-linux-gnu.so")))
    modules, reason = decoder.compiled_modules(package)
    assert modules is not None and reason == "built from these sources"
