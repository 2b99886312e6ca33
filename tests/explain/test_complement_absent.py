"""The complement baseline is every other record of the window, including those that lack the
attribute the query names: on the attributes text an absent attribute reads as NULL, so
``k:x`` is NULL (not false) there, and ``NOT (k:x)`` left them out of the baseline."""

from __future__ import annotations

from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.features.explain import ExplainRequest, explain

from .conftest import load
from .data import WINDOW_NS

START_NS = 1_793_534_400 * 10**9 + 40 * 86400 * 10**9  # a day of its own in the shared store


def test_the_complement_counts_records_without_the_attribute(explain_store: EmbeddedStore) -> None:
    focus = (START_NS, START_NS + WINDOW_NS)
    step = WINDOW_NS // 400
    records = []
    for i in range(300):  # 100 with k=x, 100 with k=y, 100 without k
        extra = [{"k": "x"}, {"k": "y"}, {}][i % 3]
        records.append({"timestamp": START_NS + i * step, "service": "cmp", "message": f"m {i % 7}",
                        "host": f"h{i % 2}", **extra})
    load(explain_store, records, "complement-absent")
    answer = explain(explain_store, ExplainRequest(q="service:cmp AND k:x", focus=focus, mode="complement"),
                     scope=None, settings={})
    assert answer["focus"]["count"] == 100
    assert answer["baseline"]["count"] == 200, answer["baseline"]
