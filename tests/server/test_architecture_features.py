"""The shape of a feature (issue #23, docs/architecture.md "The shape of a feature"): each feature's
HTTP is its ``routes.py``, the logic is in its service modules.

Read from the source with ``ast`` (nothing is imported), so the rules hold for code no test runs:

- every ``APIRouter(…)`` under ``server/features/`` is made in a ``routes.py``;
- a feature's ``routes`` module is imported only by ``server/app.py`` and its own package (which
  may re-export the router): what another feature needs of it lives in a service or helper
  module (the trace view once imported the query API's routes for its time parameters);
- a ``routes.py`` builds no SQL: it imports neither the SQL builders (``engine/store/sql/``) nor
  SQLAlchemy; the services do.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
FEATURES = SRC / "logharbor" / "server" / "features"
_NO_SQL = ("logharbor.server.engine.store.sql", "sqlalchemy")


def _module(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.Module, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, dotted target) of every import, relative ones resolved; ``from a import b`` gives
    ``a.b`` (a module or a name in ``a``: a prefix match treats both alike)."""
    package = module if is_package else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return out


def _within(target: str, module: str) -> bool:
    return target == module or target.startswith(module + ".")


def shape_failures(root: Path = SRC) -> list[str]:
    """Every break of the three rules under ``root`` (a ``src`` folder), as ``file:line: what``."""
    features = root / "logharbor" / "server" / "features"
    failures = []
    for path in sorted(root.rglob("*.py")):
        module = _module(path, root)
        tree = ast.parse(path.read_text(), str(path))
        where = path.relative_to(root)
        in_features = features in path.parents
        if in_features and path.name != "routes.py":
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == \
                        "APIRouter":
                    failures.append(f"{where}:{node.lineno}: an APIRouter outside routes.py")
        for line, target in _imports(tree, module, path.name == "__init__.py"):
            parts = target.split(".")
            if len(parts) > 5 and parts[:3] == ["logharbor", "server", "features"] and parts[4] == "routes":
                owner = ".".join(parts[:4])
                if module not in ("logharbor.server.app", owner) and not _within(module, owner + ".routes"):
                    failures.append(f"{where}:{line}: imports {'.'.join(parts[:5])} (another feature's HTTP)")
            if in_features and path.name == "routes.py" and any(_within(target, n) for n in _NO_SQL):
                failures.append(f"{where}:{line}: routes.py imports {target} (SQL belongs to a service)")
    return failures


def test_features_have_the_routes_and_service_shape() -> None:
    assert FEATURES.is_dir()
    assert shape_failures() == []


def test_each_rule_can_fail(tmp_path: Path) -> None:
    feature = tmp_path / "logharbor" / "server" / "features"
    for name in ("query", "traces"):
        (feature / name).mkdir(parents=True)
        (feature / name / "__init__.py").write_text("")
    (feature / "query" / "routes.py").write_text(
        "from fastapi import APIRouter\n"
        "from logharbor.server.engine.store.sql.traces import lookup_sql\n"
        "router = APIRouter()\n")
    (feature / "traces" / "service.py").write_text(
        "from fastapi import APIRouter\n"
        "from logharbor.server.features.query.routes import request_time\n"
        "router = APIRouter()\n")
    (feature / "query" / "__init__.py").write_text("from .routes import router\n")  # its own: allowed
    found = shape_failures(tmp_path)
    assert any("traces/service.py:3: an APIRouter outside routes.py" in f for f in found), found
    assert any("traces/service.py:2: imports logharbor.server.features.query.routes" in f for f in found), found
    assert any("query/routes.py:2: routes.py imports logharbor.server.engine.store.sql" in f for f in found), found
    assert len(found) == 3, found
