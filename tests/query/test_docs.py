"""docs/query.md: every example compiles, runs on the corpus, and round-trips through the printer."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.features.query import compile_query, parse, to_text
from logharbor.server.features.query.parser import is_function

DOC = (Path(__file__).resolve().parents[2] / "docs" / "query.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, flags=re.S)


QUERIES = [b.strip() for b in blocks("query")]
CLI_QUERIES = [shlex.split(line[2:])[2] for b in blocks("console") for line in b.splitlines()
               if line.startswith("$ logharbor query ")]


def test_the_page_has_examples() -> None:
    assert len(QUERIES) >= 15
    assert len(CLI_QUERIES) >= 4


@pytest.mark.parametrize("text", QUERIES + CLI_QUERIES)
def test_example_runs(golden_store: EmbeddedStore, text: str) -> None:
    query = parse(text)
    assert parse(to_text(query)) == query
    compiled = compile_query(text, table=golden_store.table, time_from_ns=None, time_to_ns=None,
                             limit=None, max_limit=1000)
    golden_store.query(compiled.sql, compiled.params)


@pytest.mark.parametrize("code", blocks("python"))
def test_python_example(code: str) -> None:
    exec(compile(code, "docs/query.md", "exec"), {})  # noqa: S102 -- our own documentation


def test_every_function_is_documented() -> None:
    section = DOC.split("### Functions", 1)[1].split("## Errors", 1)[0]
    names = set(re.findall(r"\b([a-z_0-9]+)\([a-z]*\)", section))
    assert {"count", "count_uniq", "sum", "avg", "min", "max", "p50", "p90", "p95", "p99", "rate",
            "first", "last"} <= names
    assert all(is_function(name) for name in names)


def test_every_pipe_is_documented() -> None:
    for pipe in ("where", "fields", "sort", "limit", "head", "stats", "timechart", "top", "rare", "dedup",
                 "patterns"):
        assert f"`{pipe}" in DOC, pipe
