"""The server reaches data through one ``Store`` protocol (issue #23).

Partial store protocols (``TierStore``, ``QueryStore``, ``_Executor``, …) filled the gaps of an
incomplete ``Store``, and callers probed stores with ``getattr`` and class names. These checks
read the source (``ast``), so they hold for code no test happens to run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from logharbor.server.engine.store.base import Store
from logharbor.server.engine.store.clickhouse import ClickHouseStore
from logharbor.server.engine.store.embedded import EmbeddedStore

SRC = Path(__file__).resolve().parents[2] / "src" / "logharbor"

#: method names only a store has: a Protocol declaring one of them is a partial store protocol
STORE_METHODS = {"insert_patterns", "query", "query_with_stats", "stream", "execute", "expose_view",
                 "run_on_rows", "schema_change", "set_merges"}


def _protocols() -> list[tuple[str, str, set[str]]]:
    """(file, class, method names) of every Protocol class under src/logharbor."""
    out = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    (isinstance(b, ast.Name) and b.id == "Protocol")
                    or (isinstance(b, ast.Attribute) and b.attr == "Protocol") for b in node.bases):
                methods = {n.name for n in node.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
                out.append((path.relative_to(SRC).as_posix(), node.name, methods))
    return out


def test_store_is_the_only_store_protocol() -> None:
    partial = [(f, name, sorted(methods & STORE_METHODS)) for f, name, methods in _protocols()
               if methods & STORE_METHODS and (f, name) != ("server/engine/store/base.py", "Store")]
    assert not partial, f"partial store protocols (use engine.store.base.Store): {partial}"
    assert ("server/engine/store/base.py", "Store") in {(f, n) for f, n, _ in _protocols()}


@pytest.mark.parametrize("make", [lambda tmp: EmbeddedStore(tmp / "store"),
                                  lambda tmp: ClickHouseStore("clickhouse://localhost:8123/logs")],
                         ids=["embedded", "clickhouse"])
def test_both_stores_have_every_member_of_the_protocol(make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = make(tmp_path)
    members = [name for name in dir(Store) if not name.startswith("_")] + list(Store.__annotations__)
    missing = [name for name in members if not hasattr(store, name)]
    assert not missing, f"{type(store).__name__} lacks {missing}"
    assert isinstance(store, Store)


def test_store_callers_do_not_probe_the_store() -> None:
    """No ``getattr(store, …)``/``hasattr(store, …)`` and no class-name checks: every member a
    caller needs is in the protocol."""
    probes = []
    for path in sorted((SRC / "server").rglob("*.py")):
        text = path.read_text()
        for number, line in enumerate(text.splitlines(), 1):
            if re.search(r"\b(getattr|hasattr)\((self\.)?(\w+\.)*store\b", line) \
                    or re.search(r"type\(\w*store\)\.__name__", line):
                probes.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert not probes, "\n".join(probes)
