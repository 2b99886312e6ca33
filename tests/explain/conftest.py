"""A chDB store shared by the explain tests (one chDB path per process), loaded per test at a
time range of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logharbor.record import normalize
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row


@pytest.fixture(scope="package")
def explain_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    path: Path = tmp_path_factory.mktemp("explain")
    store = EmbeddedStore(path / "store")
    store.open()
    yield store
    store.close()


def load(store: EmbeddedStore, records: list[dict], token: str) -> None:  # type: ignore[type-arg]
    """Insert ``records`` as the server stores them."""
    received = 1_800_000_000_000_000_000
    rows = b"\n".join(encode_row(normalize(r, received_ns=received)) for r in records)
    store.insert(rows, dedup_token=token)
