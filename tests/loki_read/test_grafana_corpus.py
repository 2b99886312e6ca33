"""The queries Grafana's Logs Drilldown app sends, in the shape its query builders interpolate them.

Drilldown (grafana/logs-drilldown, ``src/services/variables.ts``, ``fields.ts``, ``query.ts``)
builds every query from one stream selector template: ``{labels} levels metadata patterns
line-filters | json | logfmt | drop __error__, __error_details__ fields``, where an empty variable
leaves its blanks behind. Its panels wrap that in ``sum by (x) (count_over_time(… [$__auto]))``
(service list, levels, labels and fields tabs) or ``avg_over_time(… | unwrap x | __error__="" […])
by ()`` (numeric fields), and it calls the resource routes (``index/volume`` by
``service_name``, ``detected_fields``, ``detected_labels``, ``patterns``,
``detected_field/{name}/values``). Each case here is such a query over the golden corpus, with
the answer's shape (as ``test_grafana.check_success`` checks it) and its values.
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.conftest import ServerProcess

from .conftest import END_NS, START_NS, get
from .test_grafana import check_success

#: what Drilldown puts after the selector when no level, pattern, line or field filter is set
MIXED = "      | json | logfmt | drop __error__, __error_details__ "


def _range(loki: ServerProcess, query: str, result_type: str) -> dict[str, Any]:
    return check_success(get(loki, "/loki/api/v1/query_range", query=query, direction="backward",
                             limit="1000", start=str(START_NS), end=str(END_NS), step="60000ms"),
                         result_type)


def _totals(data: dict[str, Any], label: str) -> dict[str, float]:
    return {s["metric"].get(label, ""): sum(float(v) for _, v in s["values"]) for s in data["result"]}


def _messages(data: dict[str, Any]) -> list[str]:
    return sorted(line for s in data["result"] for _, line in s["values"])


CHECKOUT = sorted(["payment declined for order o-42", "payment accepted", "retrying payment after timeout",
                   "payment declined: insufficient funds"])


def test_service_list(loki: ServerProcess) -> None:
    """The landing page: one volume bar per service, then a time series per service."""
    volume = get(loki, "/loki/api/v1/index/volume", query='{service_name=~".+"}', aggregateBy="series",
                 targetLabels="service_name", limit="5000", start=str(START_NS), end=str(END_NS))
    data = check_success(volume, "vector")
    assert {s["metric"]["service_name"] for s in data["result"]} == {
        "api", "auth", "billing", "checkout", "edge", "i18n", "search", "worker"}
    series = _range(loki, 'sum by (service_name) (count_over_time({service_name=~".+"} [60s]))', "matrix")
    assert _totals(series, "service_name") == {"api": 3, "auth": 2, "billing": 2, "checkout": 4, "edge": 2,
                                               "i18n": 1, "search": 3, "worker": 3}


#: the Logs tab: (query, the messages it finds)
LOGS_TAB = [
    ('{service_name="checkout"}' + MIXED, CHECKOUT),
    ('{service_name="checkout"} | detected_level="error"' + MIXED,
     ["payment declined for order o-42", "payment declined: insufficient funds"]),
    ('{service_name="checkout"} | detected_level=~"error|warn"' + MIXED,
     ["payment declined for order o-42", "payment declined: insufficient funds", "retrying payment after timeout"]),
    ('{service_name="checkout"}  |~ "(?i)PAYMENT D"' + MIXED,
     ["payment declined for order o-42", "payment declined: insufficient funds"]),
    ('{service_name="checkout"} |> "payment declined <_>"' + MIXED, ["payment declined for order o-42"]),
    ('{service_name="checkout"} !> "payment declined <_>"' + MIXED,
     ["payment accepted", "payment declined: insufficient funds", "retrying payment after timeout"]),
    ('{service_name="checkout"}' + MIXED + '| http_status=~"5.."',
     ["payment declined for order o-42", "retrying payment after timeout"]),
    ('{service_name="checkout"}' + MIXED + '| http_status > 499 | user_id="u-123"',
     ["payment declined for order o-42", "retrying payment after timeout"]),
    ('{service_name="checkout", host!="web-1"}' + MIXED, ["payment accepted", "retrying payment after timeout"]),
]


@pytest.mark.parametrize(("query", "expected"), LOGS_TAB,
                         ids=["logs", "level", "levels", "line-filter-i", "pattern", "not-pattern", "field-regex",
                              "field-compare", "label-exclude"])
def test_logs_tab(loki: ServerProcess, query: str, expected: list[str]) -> None:
    """The Logs tab: the selector template with each kind of filter Drilldown adds."""
    data = _range(loki, query, "streams")
    assert _messages(data) == expected
    for stream in data["result"]:  # the fields of | json are stream labels, as Loki shows them
        assert stream["stream"]["service_name"] == "checkout"


#: the level volume and the Labels and Fields tabs: (query, its series label, total per value)
BREAKDOWNS = [
    ('sum by (detected_level) (count_over_time({service_name="checkout"}' + MIXED + ' [60s]))', "detected_level",
     {"error": 2, "info": 1, "warn": 1}),
    ('sum by (host) (count_over_time({service_name="checkout"} | host!="" [60s]))', "host",
     {"web-1": 2, "web-2": 1, "web-3": 1}),
    ('sum by (user_id) (count_over_time({service_name="checkout"}' + MIXED + '| user_id!="" [60s]))', "user_id",
     {"u-123": 2, "u-124": 1, "u-126": 1}),
    ('sum by (http_status) (count_over_time({service_name=~".+"} | detected_level="error"' + MIXED
     + '| http_status!="" [60s]))', "http_status", {"402": 1, "500": 1, "502": 2, "504": 1}),
]
#: the numeric field panel
AVG_PANEL = 'avg_over_time({service_name="worker"}' + MIXED + '| n!="" | unwrap n | __error__="" [60s]) by ()'


@pytest.mark.parametrize(("query", "label", "expected"), BREAKDOWNS,
                         ids=["levels", "labels-tab", "fields-tab", "fields-tab-filtered"])
def test_breakdown_panels(loki: ServerProcess, query: str, label: str, expected: dict[str, float]) -> None:
    """The level volume and the Labels and Fields tabs: one series per value of the label."""
    assert _totals(_range(loki, query, "matrix"), label) == expected


def test_detected_level_is_in_lower_case_as_in_loki(loki: ServerProcess) -> None:
    """Drilldown keys its level colours and filters on Loki's names (``error``), not ``ERROR``."""
    data = _range(loki, '{service_name="checkout", detected_level=~"error|warn"}', "streams")
    assert sorted({s["stream"]["detected_level"] for s in data["result"]}) == ["error", "warn"]
    assert {s["stream"]["level"] for s in data["result"]} == {"ERROR", "WARN"}
    values = get(loki, "/loki/api/v1/detected_field/detected_level/values", query='{service_name="checkout"}',
                 start=str(START_NS), end=str(END_NS))
    assert values.json() == {"values": ["error", "info", "warn"]}


def test_numeric_field_panel(loki: ServerProcess) -> None:
    """A float field: ``avg_over_time(… | unwrap x | __error__="" [$__auto]) by ()``, one series."""
    data = _range(loki, AVG_PANEL, "matrix")
    assert [s["metric"] for s in data["result"]] == [{}]
    assert [v for _, v in data["result"][0]["values"]] == ["5", "12", "7.5"]


def test_resource_routes(loki: ServerProcess) -> None:
    """What the tabs list before they query: fields with types, labels with cardinality, patterns,
    and the values of one field for its filter."""
    window = {"start": str(START_NS), "end": str(END_NS)}
    fields = get(loki, "/loki/api/v1/detected_fields", query='{service_name="checkout"}' + MIXED, **window)
    assert fields.status_code == 200, fields.text
    by_name = {f["label"]: f for f in fields.json()["fields"]}
    assert set(by_name["http_status"]) == {"label", "type", "cardinality", "parsers", "jsonPath"}
    assert by_name["http_status"]["type"] == "int" and by_name["http_status"]["cardinality"] == 4
    assert by_name["http_duration_ms"]["type"] == "float" and by_name["user_id"]["cardinality"] == 3
    labels = get(loki, "/loki/api/v1/detected_labels", query='{service_name="checkout"}', **window).json()
    cardinality = {d["label"]: d["cardinality"] for d in labels["detectedLabels"]}
    assert cardinality["host"] == 3 and cardinality["env"] == 2 and cardinality["service_name"] == 1
    patterns = get(loki, "/loki/api/v1/patterns", query='{service_name="checkout"}', step="60s", **window).json()
    assert patterns["status"] == "success"
    assert sum(n for p in patterns["data"] for _, n in p["samples"]) == 4
    assert {p["level"] for p in patterns["data"]} == {"error", "info", "warn"}
    values = get(loki, "/loki/api/v1/detected_field/http_status/values", query='{service_name="checkout"}', **window)
    assert values.status_code == 200 and sorted(values.json()["values"]) == ["200", "402", "502", "503"]
