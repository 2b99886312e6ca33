"""Fixtures for the query tests: the golden corpus in a real embedded store (chDB)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logharbor.record import normalize
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row

from .corpus import records


@pytest.fixture(scope="package")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's one chDB data path: chDB opens one path per process, so every store of these
    tests opens this one, each with a table of its own (a second path fails in a one-process run)."""
    return tmp_path_factory.mktemp("query-chdb") / "store"


@pytest.fixture(scope="package")
def golden_store(chdb_path: Path) -> Iterator[EmbeddedStore]:
    """The corpus loaded once into a chDB store; closed at the end (one chDB path per process)."""
    store = EmbeddedStore(chdb_path)
    store.open()
    received = 1_800_000_000_000_000_000
    rows = b"\n".join(encode_row(normalize(r, received_ns=received)) for r in records())
    store.insert(rows, dedup_token="golden-corpus")
    yield store
    store.close()
