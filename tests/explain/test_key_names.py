"""Explain names an attribute as /api/v1/fields does (fields.py key_segment), so the filter a
click on one of its rows adds is a query that parses and reads exactly that key."""

from __future__ import annotations

from logharbor.server.features.explain.engine import filter_text
from logharbor.server.features.explain.passes import attribute_name, flatten_attributes
from logharbor.server.features.query import parse
from logharbor.server.features.query.fields import resolve_field


def test_awkward_keys_are_named_as_a_query_reads_them() -> None:
    attributes = {"user name": "alice", "a.b": "lit", "a": {"b": "nested", "c d": 1}, "we`ird": "x",
                  "müşteri": "ç", "status": "ok", "1st": "one", "order": {"line items": {"sku": "A-1"}}}
    flat: dict[str, object] = {}
    flatten_attributes(attributes, "", flat)
    names = {attribute_name(name): value for name, value in flat.items()}
    assert names == {"`user name`": "alice", "`a.b`": "lit", "a.b": "nested", "a.`c d`": 1, "`we\\`ird`": "x",
                     "müşteri": "ç", "attributes.status": "ok", "`1st`": "one", "order.`line items`.sku": "A-1"}
    for name, value in names.items():
        query = parse(filter_text(name, value))
        assert query.filter.field == name  # type: ignore[attr-defined]
        assert resolve_field(name).kind == "dynamic", name
