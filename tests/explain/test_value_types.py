"""Values of two JSON types are two values in explain: Python holds ``True == 1 == 1.0`` and
``-0.0 == 0.0`` (equal, one hash), so counting sampled values in a dict keyed by them merged
``true`` with ``1`` (and showed whichever came first): a switch from one to the other was no
change at all. Each value keeps its JSON type and its exact text in the answer, its filter and
an alert's summary."""

from __future__ import annotations

from typing import Any

from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.features.explain import ExplainRequest, explain
from logharbor.server.features.explain.alerting import summary_text
from logharbor.server.features.query import ast, parse

from .conftest import load

BASE_NS = 1_793_707_200 * 10**9  # 2026-11-03T12:00:00Z: a range no other explain test loads
WINDOW_NS = 600 * 10**9
PER_WINDOW = 40
#: (baseline value, focus value) of each attribute: equal in Python, different in JSON
SWITCHED: dict[str, tuple[Any, Any]] = {"flag": (1, True), "off": (0, False), "ratio": (1, 1.0),
                                        "zero": (0.0, -0.0)}


def _records() -> list[dict[str, Any]]:
    out = []
    for window in (0, 1):
        for i in range(PER_WINDOW):
            at = BASE_NS + window * WINDOW_NS + i * (WINDOW_NS // PER_WINDOW)
            out.append({"timestamp": at, "service": "explain-types", "message": f"m {i}",
                        "attributes": {name: pair[window] for name, pair in SWITCHED.items()}})
    return out


def test_values_of_two_json_types_are_two_values(explain_store: EmbeddedStore) -> None:
    load(explain_store, _records(), "explain-types")
    answer = explain(explain_store, ExplainRequest(q="service:explain-types",
                                                   focus=(BASE_NS + WINDOW_NS, BASE_NS + 2 * WINDOW_NS)),
                     scope=None, settings={})
    rose = {v["field"]: v for v in answer["values"]}
    fell = {v["field"]: v for v in answer["fell"]}
    for name, (before, after) in SWITCHED.items():
        up, down = rose[name], fell[name]
        # the type and the sign kept (1 == True and 0.0 == -0.0 in Python: compare the reprs)
        assert (type(up["value"]), repr(up["value"])) == (type(after), repr(after)), up
        assert (type(down["value"]), repr(down["value"])) == (type(before), repr(before)), down
        assert up["focus"]["count"] == PER_WINDOW and up["baseline"]["count"] == 0 and up["significant"]
        assert down["focus"]["count"] == 0 and down["baseline"]["count"] == PER_WINDOW
    assert rose["flag"]["filter"] == "flag:true" and fell["flag"]["filter"] == "flag:1"
    assert parse(rose["zero"]["filter"]).filter == ast.Match("zero", ast.Word("-0.0")), rose["zero"]  # zero:\\-0.0
    assert rose["ratio"]["filter"] == "ratio:1.0"
    text = summary_text(answer)
    assert "=True" not in text and "=False" not in text, text
