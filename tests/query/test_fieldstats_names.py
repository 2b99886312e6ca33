"""The "did you mean" of ``/api/v1/fields`` on the attributes text: the candidate names come from
a bounded sample of the range (the store's ``attribute_names_sql``), so a name outside that
sample is checked exactly before it is called a typo (fieldstats._in_range)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logharbor.record import normalize
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.features.query import fieldstats


@pytest.fixture(scope="module")
def store(chdb_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(chdb_path, table="fieldstats_names")  # the package's chDB path (conftest)
    s.open()
    records = [{"service": "names", "message": f"m{i}", "common_key": i} for i in range(40)]
    records.append({"service": "names", "message": "rare", "rare_key": "r", "a": {"b.c": 1}})
    rows = [encode_row(normalize(r)) for r in records]
    assert s.insert(b"\n".join(rows), dedup_token="fieldstats-names") == len(rows)
    yield s
    s.close()


def unknown(store: EmbeddedStore, text: str) -> list[str]:
    answer = fieldstats.field_stats(store, text, start=None, end=None, scope=None, settings={})
    return [u["field"] for u in answer.unknown]


def test_a_name_outside_the_sample_is_not_called_a_typo(store: EmbeddedStore,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fieldstats, "NAMES_SAMPLE", 1)  # the sample holds one record's names
    assert unknown(store, "rare_key:nothing") == []
    assert unknown(store, "a.b:nothing") == []  # a key going on with a dot: a field under a.b
    assert unknown(store, "rare_kye:nothing AND common_key:1") == ["rare_kye"]


def test_suggestions_come_from_the_sampled_names(store: EmbeddedStore) -> None:
    answer = fieldstats.field_stats(store, "comon_key:1", start=None, end=None, scope=None, settings={})
    assert answer.unknown and "common_key" in answer.unknown[0]["suggestions"]
