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
def golden_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    """The corpus loaded once into a chDB store; closed at the end (one chDB path per process)."""
    path: Path = tmp_path_factory.mktemp("golden")
    store = EmbeddedStore(path / "store")
    store.open()
    received = 1_800_000_000_000_000_000
    rows = b"\n".join(encode_row(normalize(r, received_ns=received)) for r in records())
    store.insert(rows, dedup_token="golden-corpus")
    yield store
    store.close()
