"""The parts of metric evaluation done in the server: step points, vector aggregation, time params."""

from __future__ import annotations

import pytest

from logharbor.server.errors import ApiError
from logharbor.server.features.loki.execute import aggregate, points
from logharbor.server.features.loki.logql import RangeAgg, VectorAgg, parse_logql
from logharbor.server.features.loki.routes import loki_time

NS = 1_000_000_000
SERIES = {
    (("host", "a"), ("service", "x")): {60: 1.0, 120: 5.0},
    (("host", "b"), ("service", "x")): {60: 3.0},
    (("host", "c"), ("service", "y")): {60: 2.0, 120: 7.0},
}


def vector(op: str, **kw: object) -> VectorAgg:
    inner = parse_logql('count_over_time({a="b"}[1m])')
    assert isinstance(inner, RangeAgg)
    return VectorAgg(op, inner, **kw)  # type: ignore[arg-type]


def test_points_are_aligned_to_the_step() -> None:
    assert points(61, 300, 60) == [120, 180, 240, 300]
    assert points(60, 60, 60) == [60]
    assert points(61, 100, 60) == []


@pytest.mark.parametrize(("op", "kw", "expected"), [
    ("sum", {"by": ("service",)}, {(("service", "x"),): {60: 4.0, 120: 5.0}, (("service", "y"),): {60: 2.0, 120: 7.0}}),
    ("avg", {"by": ("service",)}, {(("service", "x"),): {60: 2.0, 120: 5.0}, (("service", "y"),): {60: 2.0, 120: 7.0}}),
    ("count", {}, {(): {60: 3.0, 120: 2.0}}),
    ("max", {"without": ("host",)}, {(("service", "x"),): {60: 3.0, 120: 5.0}, (("service", "y"),): {60: 2.0, 120: 7.0}}),
    ("min", {}, {(): {60: 1.0, 120: 5.0}}),
])
def test_aggregations(op: str, kw: dict[str, object], expected: dict[object, object]) -> None:
    assert aggregate(vector(op, **kw), SERIES) == expected


def test_topk_and_bottomk_per_step_and_group() -> None:
    top = aggregate(vector("topk", param=1), SERIES)
    assert top == {(("host", "b"), ("service", "x")): {60: 3.0}, (("host", "c"), ("service", "y")): {120: 7.0}}
    bottom = aggregate(vector("bottomk", param=1, by=("service",)), SERIES)
    assert bottom == {(("host", "a"), ("service", "x")): {60: 1.0, 120: 5.0},
                      (("host", "c"), ("service", "y")): {60: 2.0, 120: 7.0}}


@pytest.mark.parametrize(("text", "ns"), [
    ("1793534400", 1793534400 * NS),  # seconds (up to 10 digits)
    ("1793534400000000000", 1793534400 * NS),  # nanoseconds, as Grafana sends
    ("1793534400.5", 1793534400 * NS + NS // 2),  # float seconds
    ("2026-11-01T12:00:00Z", 1793534400 * NS),
    (None, 42),
])
def test_loki_time(text: str | None, ns: int) -> None:
    assert loki_time(text, 42) == ns


def test_bad_time_is_a_400() -> None:
    with pytest.raises(ApiError) as err:
        loki_time("yesterday-ish", 0)
    assert err.value.status == 400
