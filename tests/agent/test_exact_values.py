"""The agent and the sdk ship every JSON value as it was: integers beyond 64 bits stay integers.

The server keeps integers of any size exactly (docs/record.md), but the agent's ``json`` parser
read lines with orjson, which turns ``18446744073709551617`` into ``1.8446744073709552e19``, and
its Elasticsearch sink re-read each record the same way; the sdk wrote such integers as strings.
The property: a JSON object written by an app, parsed by the agent and encoded for its sinks (or
logged through the sdk), reads back equal, type for type, to what was written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import examples
from tests.record.values import BIG_INTS, attribute_sets, typed

from logharbor import exactjson
from logharbor.agent.pipeline import encode
from logharbor.agent.sinks.elasticsearch import Config, ElasticsearchSink
from logharbor.agent.types import Ack, Chunk
from logharbor.formats.json import JsonParser
from logharbor.sdk.formatter import render

META = {"source": "file", "host": "h", "file": "/var/log/app.log"}
STAMP = 1_700_000_000_000_000_000
#: ways an application writes the line (the standard library also writes ints of any size)
WRITERS = [lambda obj: json.dumps(obj, ensure_ascii=False), lambda obj: json.dumps(obj),
           lambda obj: exactjson.dumps(obj).decode()]


def _own_keys(attrs: dict[str, Any]) -> dict[str, Any]:
    """Keys that are no canonical alias (``ts`` with a random value is the timestamp's business)."""
    return {f"k{key}": value for key, value in attrs.items()}


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attribute_sets, st.sampled_from(range(len(WRITERS))))
def test_a_json_line_is_shipped_as_written(attrs: dict[str, Any], writer: int) -> None:
    written = {"msg": "m", **_own_keys(attrs)}
    record = JsonParser().parse(WRITERS[writer](written))
    assert "parse_error" not in record, record
    assert typed(record) == typed(written)
    payload = encode(Chunk([], Ack(1), 0, dict(META), [record], STAMP)).payload
    shipped = exactjson.loads_exact(payload.rstrip(b"\n"))
    assert typed(shipped) == typed({**META, "timestamp": STAMP, **written})


def test_the_elasticsearch_sink_keeps_wide_integers_when_it_adds_a_timestamp(tmp_path: Path) -> None:
    cfg = Config.model_validate({"type": "elasticsearch", "url": "http://127.0.0.1:9",
                                 "timestamp_field": "@timestamp", "index": "logs-%Y.%m.%d"})
    sink = ElasticsearchSink("es", cfg, tmp_path / "data")
    line = exactjson.dumps({"timestamp": STAMP, "message": "m", "ids": BIG_INTS, "f": -0.0, "one": 1.0})
    action, source = sink.bulk(line + b"\n").splitlines()
    assert orjson.loads(action) == {"create": {"_index": "logs-2023.11.14"}}
    doc = exactjson.loads_exact(source)
    assert doc["ids"] == BIG_INTS and typed(doc["f"]) == typed(-0.0) and typed(doc["one"]) == typed(1.0)
    assert doc["@timestamp"] == "2023-11-14T22:13:20.000000000Z"


def test_a_line_orjson_refuses_is_refused_on_the_exact_path_too() -> None:
    """The exact reader takes a lone surrogate escape; orjson (and the encoder) refuse it, so a
    line with a wide integer and one must come back unparsed (kept whole), not crash the encoder."""
    for line in ('{"a": "\\ud800", "n": 18446744073709551617}', '{"a": "\\ud800"}',
                 '{"n": 18446744073709551617, "f": 1e400}', '{"n": 18446744073709551617, "x": NaN}'):
        record = JsonParser().parse(line)
        assert record.get("parse_error") and record["message"] == line
        encode(Chunk([], Ack(1), 0, dict(META), [record], STAMP))


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(attribute_sets)
def test_the_sdk_writes_integers_of_any_size_as_numbers(attrs: dict[str, Any]) -> None:
    line = render({"message": "m", **attrs})
    assert typed(exactjson.loads_exact(line)) == typed({"message": "m", **attrs})
