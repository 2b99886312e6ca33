"""LogQL text → logharbor's query AST (and the metric wrappers), and the constructs refused by name."""

from __future__ import annotations

import pytest

from logharbor.server.features.loki.lexer import whole_tokens
from logharbor.server.features.loki.logql import (
    Binary,
    Constant,
    LabelFormat,
    LogQLError,
    LogQuery,
    RangeAgg,
    VectorAgg,
    line_regex,
    parse_logql,
)
from logharbor.server.features.query import ast, parse, to_text


def log(text: str) -> LogQuery:
    expr = parse_logql(text)
    assert isinstance(expr, LogQuery)
    return expr


def test_selector_matchers_map_to_field_matches() -> None:
    q = log('{service="checkout", env!="dev", host=~"web-[12]", level!~"debug|trace"}')
    assert q.query.filter == ast.And((
        ast.Match("service", ast.Phrase("checkout")),
        ast.Not(ast.Match("env", ast.Phrase("dev"))),
        ast.Match("host", ast.Regex("^(?:web-[12])$")),
        ast.Not(ast.Match("level", ast.Regex("(?i)^(?:debug|trace)$"))),
    ))
    assert q.selector == ("service", "env", "host", "level")


def test_grafana_label_names_are_aliases() -> None:
    q = log('{service_name="api", detected_level="error"}')
    assert q.query.filter == ast.And((ast.Match("service", ast.Phrase("api")),
                                      ast.Match("level", ast.Phrase("error"))))
    assert q.selector == ("service_name", "detected_level")  # shown back under the names asked


def test_empty_label_value_means_absent() -> None:
    assert log('{a="b", user_id=""}').query.filter.items[1] == ast.Not(ast.Exists("user_id"))
    assert log('{user_id!=""}').query.filter == ast.Not(ast.Not(ast.Exists("user_id")))
    assert log('{a="b", user_id=~".*"}').query.filter.items[1] == ast.Or((
        ast.Match("user_id", ast.Regex("^(?:.*)$")), ast.Not(ast.Exists("user_id"))))
    for selector in ('{user_id=""}', '{a!="b"}', '{a=~".*"}', '{a!~"x"}', "{}"):  # Loki refuses these
        with pytest.raises(LogQLError, match="at least one regexp or equality matcher"):
            parse_logql(selector)


def test_line_filters_are_substring_and_regex_matches_on_message() -> None:
    q = log('{service="api"} |= "after 1500ms" != "db" |~ "time(out)?" !~ `(?i)ok$`')
    assert q.query.filter == ast.And((
        ast.Match("service", ast.Phrase("api")),
        ast.Match(None, ast.Regex("after 1500ms")),
        ast.Not(ast.Match(None, ast.Regex("db"))),
        ast.Match(None, ast.Regex("(?-s:time(out)?)")),  # Go's default: `.` stops at a newline
        ast.Not(ast.Match(None, ast.Regex("(?-s:(?i)ok$)"))),
    ))
    assert line_regex("a.b(c)*") == r"a\.b\(c\)\*"


@pytest.mark.parametrize(("literal", "words"), [
    ("timeout", []), ("after 1500ms calling", ["1500ms"]), (" a b ", ["a", "b"]), ("x-y-z", ["y"]),
    ("-x-", ["x"]), (" a", []), ("a b", []), ("", []), ("é wörld ", ["wörld"]),
])
def test_whole_words_of_a_substring_filter_narrow_through_the_index(literal: str, words: list[str]) -> None:
    assert whole_tokens(literal) == words
    if words:
        flt = log(f'{{a="b"}} |= "{literal}"').query.filter
        # on message only: a bare word would be free text (level, service, … too)
        assert flt.items[1:] == (*(ast.Match("message", ast.Word(w)) for w in words),
                                 ast.Match(None, ast.Regex(line_regex(literal))))


def test_or_between_line_filters() -> None:
    q = log('{a="b"} |= "x" or "y" != "z" or "w" |~ "p" or "q"')
    assert q.query.filter.items[1:] == (
        ast.Or((ast.Match(None, ast.Regex("x")), ast.Match(None, ast.Regex("y")))),
        ast.Not(ast.Or((ast.Match(None, ast.Regex("z")), ast.Match(None, ast.Regex("w"))))),
        ast.Or((ast.Match(None, ast.Regex("(?-s:p)")), ast.Match(None, ast.Regex("(?-s:q)")))),
    )
    assert log('{a="b"} |= ""').query.filter == ast.Match("a", ast.Phrase("b"))


def test_label_filters_with_typed_comparisons() -> None:
    q = log('{source="app"} | json | status >= 500 and duration_ms > 1s or level="error" | hits == 0')
    assert q.parsed
    assert q.query.filter == ast.And((
        ast.Match("source", ast.Phrase("app")),
        ast.Or((ast.And((ast.Match("status", ast.Compare(">=", "500")),
                         ast.Match("duration_ms", ast.Compare(">", "1000")))),
                ast.Match("level", ast.Phrase("error")))),
        ast.Match("hits", ast.Phrase("0")),
    ))
    assert log('{a="b"} | size > 1KiB').query.filter.items[1] == ast.Match("size", ast.Compare(">", "1024"))


def test_formats_and_drop() -> None:
    q = log('{a="b"} | logfmt | label_format who=user_id, tag="{{.service}}-{{.env}}" '
            '| line_format "{{.service}}: {{__line__}}" | drop __error__')
    assert q.parsed and q.line_format == "{{.service}}: {{__line__}}"
    assert q.label_formats == (LabelFormat("who", source="user_id"),
                               LabelFormat("tag", template="{{.service}}-{{.env}}"))
    renamed = log('{a="b"} | label_format who=user_id | who="u-123"')
    assert renamed.query.filter.items[1] == ast.Match("user_id", ast.Phrase("u-123"))
    assert log('{a="b"} | json p="order.items.sku"').label_formats == (LabelFormat("p", "order.items.sku"),)


def test_keep_drop_and_decolorize_shape_the_output_only() -> None:
    q = log('{a="b"} | keep service, host, level | drop level, __error__ | decolorize')
    assert q.keep == ("service", "host", "level") and q.drop == ("level",) and q.decolorize
    assert q.query.filter == ast.Match("a", ast.Phrase("b"))


def test_regexp_and_pattern_extract_for_output() -> None:
    q = log(r'{a="b"} | regexp "after (?P<ms>\\d+)ms" | pattern "<verb> <url> <_>"')
    assert [sorted(p.groupindex) for p in q.extractors] == [["ms"], ["url", "verb"]]
    assert q.extractors[1].match("GET /x 200").groupdict() == {"verb": "GET", "url": "/x"}


def test_metric_queries() -> None:
    expr = parse_logql('sum by (service) (rate({env="prod"} |= "timeout" [5m]))')
    assert isinstance(expr, VectorAgg) and expr.op == "sum" and expr.by == ("service",)
    assert isinstance(expr.inner, RangeAgg) and expr.inner.fn == "rate"
    assert expr.inner.range_ns == 300 * 10**9
    q = parse_logql('quantile_over_time(0.99, {source="nginx"} | unwrap duration_ms [1m])')
    assert isinstance(q, RangeAgg) and q.quantile == 0.99 and q.log.unwrap == "duration_ms"
    top = parse_logql('topk(3, sum(count_over_time({env="prod"}[1h])) without (host))')
    assert isinstance(top, VectorAgg) and top.param == 3 and isinstance(top.inner, VectorAgg)
    assert top.inner.without == ("host",)


def test_health_check_constant() -> None:
    assert parse_logql("vector(1)+vector(1)") == Constant(2.0)
    assert parse_logql("1 + 2 * 3") == Constant(7.0, is_vector=False)  # * and / before + and -
    assert parse_logql("(1 + 2) * 3") == Constant(9.0, is_vector=False)


def test_arithmetic_between_metric_queries() -> None:
    expr = parse_logql('sum(rate({a="b"} |= "error" [5m])) / sum(rate({a="b"}[5m])) * 100')
    assert isinstance(expr, Binary) and expr.op == "*" and expr.right == Constant(100.0, is_vector=False)
    assert isinstance(expr.left, Binary) and expr.left.op == "/"
    assert isinstance(expr.left.left, VectorAgg) and isinstance(expr.left.right, VectorAgg)


@pytest.mark.parametrize(("text", "named"), [
    ('{a="b"} | decolorize |= "x"', "line filter after decolorize"),
    ('{a="b"} / count_over_time({a="c"}[1m])', "not a log query"),
    ('{a="b"} | regexp "(?P<x>\\\\d+)" | x > 3', "extracted by regexp"),
    ('{a="b"} | line_format `{{ printf "%s" .a }}`', "template action"),
    ('{a="b"} | line_format "{{ .a | Reverse }}"', "template action"),
    ('{a="b"} | line_format "{{.a}}" |= "x"', "line filter after line_format"),
    ('sum_over_time({a="b"}[1m])', "without unwrap"),
    ('count_over_time({a="b"} | unwrap n [1m])', "with unwrap"),
    ('sum_over_time({a="b"} | unwrap n [1m]) by (x)', "grouping not allowed"),
    ('{a="b"} |~ "(?=x)"', "RE2"),
    ('{a="b"} |= "\\d"', "invalid escape"),
    ('{a="b"} |= ip("::1")', "IPv6"),
    ('count_over_time({a="b"}[0s])', "longer than zero"),
    ('distinct({a="b"})', "not a LogQL function"),
])
def test_unsupported_constructs_are_named(text: str, named: str | None) -> None:
    if named is None:
        parse_logql(text)
        return
    with pytest.raises(LogQLError) as err:
        parse_logql(text)
    assert named in err.value.message


def test_filters_print_as_native_queries() -> None:
    """The tail subscribes with the native text of the filter: it must parse back to the same AST."""
    for text in ('{service="checkout"} |= "payment" | status >= 500',
                 '{host=~"web-[12]"} != "ok" | user_id="u-123"',
                 '{level="error"} |~ "time(out)?" | json | duration_ms > 1s'):
        flt = log(text).query.filter
        assert parse(to_text(ast.Query(flt))).filter == flt
