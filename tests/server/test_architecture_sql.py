"""SQL text lives in the store and the query compilers only (issue #23).

ClickHouse SQL was written in ~16 files (DDL among features, queries in traces, services,
retention, alerts, tail …). This check reads the source (``ast``), so it holds for code no test
happens to run.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "logharbor"

#: a statement's opening keywords, as SQL is written here (upper case); prose says "select" in lower case
SQL_TEXT = re.compile(r"\b(SELECT|INSERT INTO|CREATE (TABLE|VIEW|MATERIALIZED|DATABASE|OR REPLACE)|"
                      r"ALTER TABLE|DROP (TABLE|VIEW)|OPTIMIZE TABLE|SYSTEM (START|STOP|FLUSH|SYNC)|"
                      r"DELETE FROM|TRUNCATE TABLE|RENAME TABLE|EXCHANGE TABLES)\b")

#: where SQL text may be written: the store, and the two query compilers (their output is a
#: compiled query, SQL + parameters, that the store runs)
SQL_HOMES = ("server/engine/store/", "server/features/query/", "server/features/loki/")

#: not the log store: the metadata database (SQLite or PostgreSQL through SQLAlchemy) and the
#: leader's PostgreSQL advisory lock speak their own SQL to their own database
OTHER_DATABASES = ("server/meta/", "server/leader.py")

def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring constants (prose may quote SQL to explain it)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def sql_outside_homes(root: Path = SRC) -> dict[str, list[int]]:
    """Files (relative to ``root``) with SQL text outside :data:`SQL_HOMES`, and its lines."""
    found: dict[str, list[int]] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(SQL_HOMES + OTHER_DATABASES):
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _docstrings(tree)
        lines = sorted({node.lineno for node in ast.walk(tree)
                        if isinstance(node, ast.Constant) and isinstance(node.value, str)
                        and id(node) not in skip and SQL_TEXT.search(node.value)})
        if lines:
            found[rel] = lines
    return found


def test_no_sql_text_outside_the_store_and_the_compilers() -> None:
    found = sql_outside_homes()
    assert not found, ("SQL text outside engine/store/ and the query compilers (give the store a named "
                       f"method or a builder in engine/store/sql/): {found}")


def test_the_scan_finds_sql_where_it_is_written(tmp_path: Path) -> None:
    """The check above can fail: SQL in an f-string, a plain string and a joined one is found;
    a docstring and lower-case prose are not."""
    feature = tmp_path / "server" / "features" / "thing.py"
    feature.parent.mkdir(parents=True)
    feature.write_text('"""Runs SELECT count() to explain itself."""\n'
                       'T = "logs"\n'
                       'A = f"SELECT count() FROM {T}"\n'
                       'B = ("ALTER TABLE x " "MODIFY SETTING y = 1")\n'
                       'C = "select the rows a user wants"\n')
    (tmp_path / "server" / "engine" / "store").mkdir(parents=True)
    (tmp_path / "server" / "engine" / "store" / "ok.py").write_text('S = "DROP TABLE IF EXISTS t"\n')
    assert sql_outside_homes(tmp_path) == {"server/features/thing.py": [3, 4]}


