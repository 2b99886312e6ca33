"""A LogQL conformance corpus of our own: one query per construct of Loki's grammar
(``pkg/logql/syntax/syntax.y``), each sent the way Grafana sends it. Valid → 200 with the result
type Loki gives; invalid → 400 naming a position. The counts are in docs/grafana.md."""

from __future__ import annotations

import pytest
from tests.conftest import ServerProcess

from .conftest import END_NS, START_NS, get

S = '{service="checkout"}'
U = '{source="app"} | unwrap duration_ms'
#: (construct, query, result type)
VALID = [
    ("selector =", S, "streams"), ("selector != =~ !~", '{service=~"api|auth", env!="dev", host!~"x.*"}', "streams"),
    ("regex matching the empty value beside another", '{service="api", user_id=~".*"}', "streams"),
    ("line filters", f'{S} |= "payment" != "x" |~ "pay(ment)?" !~ "zzz"', "streams"),
    ("line filter or", f'{S} |= "accepted" or "declined"', "streams"),
    ("pattern line filter", f'{S} |> "<_> declined <_>" or "payment accepted"', "streams"),
    ("negated pattern line filter", f'{S} !> "<_> declined <_>"', "streams"),
    ("ip line filter", '{service="edge"} != ip("10.0.0.0/8")', "streams"),
    ("ip label filter", '{service="api"} | client_ip = ip("192.168.0.0/16")', "streams"),
    ("# comment", f'{S} # |= "nothing"\n| json', "streams"), ("uppercase keywords", f'SUM BY (service) (COUNT_OVER_TIME({S}[5m]))', "matrix"),
    ("json", f'{S} | json', "streams"), ("json with expressions", f'{S} | json sku="order.items.sku", user_id', "streams"),
    ("json bracket path", f'{S} | json sku="order[\\"items\\"][\\"sku\\"]"', "streams"),
    ("logfmt flags and expressions", f'{S} | logfmt --strict --keep-empty who="user_id", host', "streams"),
    ("unpack", f'{S} | unpack', "streams"), ("regexp", f'{S} | regexp `(?P<word>\\w+)`', "streams"),
    ("pattern", f'{S} | pattern "<verb> <_>"', "streams"),
    ("label filters and/or/parens/comma", f'{S} | json | (status >= 500 or level="error"), env!="dev" and host=~"web.*"',
     "streams"),
    ("duration and bytes filters", '{source="app"} | duration_ms > 0ms | size < 250kB', "streams"),
    ("negative number filter", f'{S} | status > -1', "streams"),
    ("__error__ filters", f'{S} | json | __error__="" | __error__ !~ ".+"', "streams"),
    ("line_format", f'{S} | line_format "{{{{.service}}}} {{{{__line__}}}}"', "streams"),
    ("label_format", f'{S} | label_format who=user_id, tag="{{{{.service}}}}"', "streams"),
    ("drop/keep, conditional", f'{S} | drop host="web-1", env | keep service, level=~"ERROR|WARN", host', "streams"),
    ("decolorize", f'{S} | decolorize', "streams"),
    ("count_over_time, range before the pipeline", f'count_over_time({S}[5m] |= "payment")', "matrix"),
    ("rate, bytes_over_time, bytes_rate", f'rate({S}[5m]) + bytes_over_time({S}[5m]) - bytes_rate({S}[5m])', "matrix"),
    ("parenthesised log range", f'count_over_time(({S} |= "payment")[5m])', "matrix"),
    ("absent_over_time", 'absent_over_time({service="nothing-here"}[5m])', "matrix"),
    ("sum/avg/min/max_over_time", f'sum_over_time({U} [5m]) / avg_over_time({U} [5m])', "matrix"),
    ("max_over_time by", f'max_over_time({U} [5m]) by (host)', "matrix"),
    ("min_over_time without", f'min_over_time({U} [5m]) without (host)', "matrix"),
    ("quantile_over_time by, .99", f'quantile_over_time(.99, {U} [5m]) by (service)', "matrix"),
    ("first/last_over_time", f'first_over_time({U} [5m]) - last_over_time({U} [5m])', "matrix"),
    ("stddev/stdvar_over_time", f'stddev_over_time({U} [5m]) + stdvar_over_time({U} [5m])', "matrix"),
    ("rate with unwrap, rate_counter", f'rate({U} [5m]) + rate_counter({U} [5m])', "matrix"),
    ("unwrap duration()/bytes()", '{source="app"} | unwrap duration(latency) [5m]', None),
    ("offset", f'count_over_time({S}[5m] offset 1h)', "matrix"),
    ("post-unwrap filter", f'sum_over_time({U} | __error__="" [5m])', "matrix"),
    ("sum/avg/min/max/count by/without", f'sum by (level) (count_over_time({S}[5m])) / count without (host) '
     f'(count_over_time({S}[5m]))', "matrix"),
    ("stddev/stdvar", f'stddev(count_over_time({S}[5m])) + stdvar(count_over_time({S}[5m]))', "matrix"),
    ("topk/bottomk/approx_topk", f'topk(2, count_over_time({S}[5m])) or bottomk(1, count_over_time({S}[5m]))',
     "matrix"),
    ("approx_topk", f'approx_topk(2, count_over_time({S}[5m]))', "matrix"),
    ("sort/sort_desc", f'sort_desc(sum by (host) (count_over_time({S}[5m])))', "matrix"),
    ("by ()", f'sum by () (count_over_time({S}[5m]))', "matrix"),
    ("comparison filter", f'sum by (host) (count_over_time({S}[1h])) > 0', "matrix"),
    ("comparison bool", f'sum by (host) (count_over_time({S}[1h])) >= bool 2', "matrix"),
    ("% ^ and precedence", f'sum(count_over_time({S}[1h])) % 3 ^ 2 * 2', "matrix"),
    ("and/or/unless", f'count_over_time({S}[1h]) and count_over_time({S}[1h]) unless '
     'count_over_time({service="api"}[1h])', "matrix"),
    ("on/ignoring/group_left", f'sum by (host, level) (count_over_time({S}[1h])) / ignoring (level) group_left '
     f'sum by (host) (count_over_time({S}[1h]))', "matrix"),
    ("on () group_right", f'sum by (service) (count_over_time({S}[1h])) / on () group_right '
     f'sum by (service, host) (count_over_time({S}[1h]))', "matrix"),
    ("label_replace", f'label_replace(sum by (host) (count_over_time({S}[1h])), "n", "$1", "host", "web-(.*)")',
     "matrix"),
    ("vector, literals", 'vector(1) + 1 - -1', "matrix"), ("scalar comparison", "1 >= 1 > bool 0", "matrix"),
    ("or vector()", f'sum(count_over_time({S}[1h])) or vector(0)', "matrix"),
]
INVALID = [
    ("selector matching everything", '{env!="dev"}', 0), ("empty selector", "{}", 0),
    ("only empty-matching regex", '{host=~".*"}', 0), ("unterminated selector", '{service="x"', 12),
    ("text after the query", f'{S} "x"', 21), ("unknown function", 'unk({a="b"}[5m])', 0),
    ("grouping on sum_over_time", f'sum_over_time({U} [5m]) by (host)', 0),
    ("absent_over_time by", f'absent_over_time({S}[5m]) by (host)', 0),
    ("approx_topk by", f'approx_topk(2, count_over_time({S}[5m])) by (host)', 0),
    ("unwrap on count_over_time", f'count_over_time({U} [5m])', 0),
    ("missing unwrap", f'avg_over_time({S}[5m])', 0), ("topk without k", f'topk(count_over_time({S}[5m]))', 5),
    ("fractional k", f'topk(1.5, count_over_time({S}[5m]))', 5), ("parameter to sum", f'sum(3, count_over_time({S}[5m]))', 4),
    ("log query in binary op", f'{S} + {S}', 21), ("literal in set op", f'count_over_time({S}[5m]) or 1', 42),
    ("bad range", f'rate({S}[5minutes])', 25), ("ip with >", f'{S} | addr >= ip("1.2.3.4")', 28),
    ("hex number", f'{S} | status > 0x10', 33), ("bad escape", f'{S} |= "\\d"', 24),
    ("bool on arithmetic", f'count_over_time({S}[5m]) + bool 1', 42), ("label_replace bad regex",
     f'label_replace(count_over_time({S}[5m]), "a", "$1", "b", "(")', 0),
    ("only a comment", '# {service="x"}', 0), ("lookaround (not RE2)", f'{S} |~ "(?=x)"', 21),
]


@pytest.mark.parametrize(("construct", "query", "kind"), VALID, ids=[c for c, _, _ in VALID])
def test_valid_construct_is_answered(loki: ServerProcess, construct: str, query: str, kind: str | None) -> None:
    if kind is None:  # a log query with unwrap: Loki refuses it outside a range aggregation too
        response = get(loki, "/loki/api/v1/query_range", query=query, start=str(START_NS), end=str(END_NS))
        assert response.status_code == 400
        query = f"sum_over_time({query.replace(' [5m]', '')} [5m])"
        kind = "matrix"
    response = get(loki, "/loki/api/v1/query_range", query=query, start=str(START_NS), end=str(END_NS),
                   step="60000ms", limit="1000", direction="backward")
    assert response.status_code == 200, (construct, response.text)
    assert response.json()["data"]["resultType"] == kind


@pytest.mark.parametrize(("construct", "query", "position"), INVALID, ids=[c for c, _, _ in INVALID])
def test_invalid_construct_is_a_400_with_a_position(loki: ServerProcess, construct: str, query: str,
                                                    position: int) -> None:
    response = get(loki, "/loki/api/v1/query_range", query=query, start=str(START_NS), end=str(END_NS))
    assert response.status_code == 400, (construct, response.text)
    body = response.json()
    assert body["status"] == "error" and body["error"]["code"] == "invalid_logql"
    assert body["error"]["detail"]["position"] == position, body["message"]
