"""The pure parts of the trace endpoint: reading ids, the timing breakdown and the waterfall."""

from __future__ import annotations

from typing import Any

import pytest

from logharbor.record import normalize
from logharbor.server.errors import ApiError
from logharbor.server.features.traces.routes import parse_trace_key
from logharbor.server.features.traces.service import breakdown, waterfall

TRACE = "5759e988bd862e3fe1be46a994272793"


@pytest.mark.parametrize(("text", "trace_id", "request_id"), [
    (TRACE, TRACE, TRACE),  # 32 hex: a W3C id or an NGINX $request_id, both searched
    ("Root=1-5759e988-bd862e3fe1be46a994272793", TRACE, None),
    ("Self=1-5759e989-aaaaaaaaaaaaaaaaaaaaaaaa;Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", TRACE, None),
    ("1-5759e988-bd862e3fe1be46a994272793", TRACE, None),
    ("X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793", TRACE, None),
    ("traceparent: 00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01", TRACE, None),
    ("  req-42  ", None, "req-42"),
])
def test_ids_are_read_in_every_form(text: str, trace_id: str | None, request_id: str | None) -> None:
    key = parse_trace_key(text)
    assert (key.trace_id, key.request_id) == (trace_id, request_id)


@pytest.mark.parametrize("text", ["", "   ", "a\nb", "x" * 513, "tab\there"])
def test_unusable_ids_are_refused(text: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_trace_key(text)
    assert info.value.status == 400


def rec(source: str, ts_ms: float, duration_ms: float | None = None, **attrs: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {"timestamp": int(1_800_000_000_000_000_000 + ts_ms * 1e6), "source": source,
                           "service": source, "message": source, **attrs}
    if duration_ms is not None:
        raw["http"] = {"duration_ms": duration_ms}
    return normalize(raw, received_ns=0)


def test_gaps_are_differences_of_what_each_layer_measured() -> None:
    records = [
        rec("nginx", 5.0, 90.0, upstream_response_time_ms=80.0),
        rec("app", 6.0, 70.0, instance="shop-9092"),
        rec("app", 7.0),  # a plain log line: no duration, not the app's measurement
        rec("alb", 100.0, 101.0, request_processing_ms=0.5, target_processing_ms=100.0,
            response_processing_ms=0.5),
    ]
    t = breakdown(records)
    assert t["alb"]["target_processing_ms"] == 100.0
    assert t["nginx"] == {"record": 0, "request_time_ms": 90.0, "upstream_response_time_ms": 80.0,
                          "upstream": None}
    assert t["app"]["record"] == 1 and t["app"]["instance"] == "shop-9092"
    assert t["gaps"] == {"alb_to_nginx_ms": 10.0, "nginx_overhead_ms": 10.0, "nginx_to_app_ms": 10.0}

    bars = {b["label"]: b for b in waterfall(records, t)["bars"]}
    assert bars["alb"]["start_ms"] == 0.0
    assert bars["alb → target"]["start_ms"] == 0.5
    # each layer is centred in its caller's window: half of each gap before it
    assert bars["nginx"]["start_ms"] == pytest.approx(0.5 + 5.0)
    assert bars["nginx → upstream"]["start_ms"] == pytest.approx(5.5 + 5.0)
    assert bars["app shop-9092"]["start_ms"] == pytest.approx(10.5 + 5.0)
    assert bars["app shop-9092"]["duration_ms"] == 70.0


def test_missing_layers_leave_their_values_unknown() -> None:
    records = [rec("app", 10.0, 25.0), rec("app", 12.0)]
    t = breakdown(records)
    assert t["alb"] is None and t["nginx"] is None
    assert t["app"]["duration_ms"] == 25.0
    assert t["gaps"] == {"alb_to_nginx_ms": None, "nginx_overhead_ms": None, "nginx_to_app_ms": None}
    fall = waterfall(records, t)
    assert [b["label"] for b in fall["bars"]] == ["app app"]
    assert fall["bars"][0]["start_ms"] == 0.0  # the app's own start: its log time minus its duration
    assert [e["at_ms"] for e in fall["events"]] == [25.0, 27.0]


def test_an_amazon_root_gives_its_time_as_a_hint() -> None:
    assert parse_trace_key("Root=1-5759e988-bd862e3fe1be46a994272793").epoch_s == 0x5759e988
    assert parse_trace_key("Self=1-00000001-aaaaaaaaaaaaaaaaaaaaaaaa;Root=1-5759e988-bd862e3fe1be46a994272793"
                           ).epoch_s == 0x5759e988
    assert parse_trace_key("1-5759e988-bd862e3fe1be46a994272793").epoch_s == 0x5759e988
    assert parse_trace_key(TRACE).epoch_s is None  # a W3C id's first digits are random
