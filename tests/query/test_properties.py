"""Property tests: printing round-trips, and hostile text never reaches SQL as text."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterator

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import examples

from logharbor.server.engine.store.base import StoreError
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.sqlsafe import quote_string
from logharbor.server.features.query import QueryError, ast, compile_ast, parse, to_text
from logharbor.server.features.query.compiler import exact_fields
from logharbor.server.features.query.fields import attribute_keys, attributes_of, quoted_keys
from logharbor.server.features.query.lexer import FIELD_NAME

#: examples per property; raise it locally (QUERY_EXAMPLES=5000) to search harder
EXAMPLES = int(os.environ.get("QUERY_EXAMPLES") or examples(300))

# ------------------------------------------------------------------------------------ AST strategy

_RESERVED = {"by", "as", "asc", "desc", "_exists_"}
names = st.from_regex(FIELD_NAME, fullmatch=True).filter(
    lambda n: n.lower() not in _RESERVED and len(n) <= 20
)
values = st.text(min_size=1, max_size=12)
any_text = st.text(max_size=12)


@st.composite
def wildcards(draw: st.DrawFn) -> ast.Wildcard:
    parts = draw(st.lists(st.one_of(st.sampled_from(["*", "?"]), st.text(min_size=1, max_size=4)),
                          min_size=1, max_size=4))
    pattern = "".join(p if p in ("*", "?") else re.sub(r"([*?\\])", r"\\\1", p) for p in parts)
    if not any(p in ("*", "?") for p in parts):
        pattern += "*"
    if pattern == "*":
        pattern = "a*"
    return ast.Wildcard(pattern)


regexes = st.text(alphabet="ab .*+()[]/^$|d-", min_size=1, max_size=10).map(ast.Regex)
plain_matchers = st.one_of(values.map(ast.Word), any_text.map(ast.Phrase), wildcards(), regexes)
field_matchers = st.one_of(
    plain_matchers,
    st.builds(ast.Compare, st.sampled_from([">", ">=", "<", "<="]), any_text),
    st.builds(ast.Range, st.none() | any_text, st.none() | any_text, st.booleans(), st.booleans()),
)
leaves = st.one_of(
    st.builds(ast.Match, st.none(), plain_matchers),
    st.builds(ast.Match, names, field_matchers),
    st.builds(ast.Match, st.just("pattern_id"), plain_matchers),
    st.builds(ast.Exists, names),
    st.just(ast.MatchAll()),
)
filters = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(ast.Not, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: ast.And(tuple(xs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: ast.Or(tuple(xs))),
    ),
    max_leaves=6,
)


@st.composite
def aggs(draw: st.DrawFn) -> ast.Agg:
    fn = draw(st.sampled_from(["count", "count_uniq", "sum", "avg", "min", "max", "p50", "p99", "rate",
                               "first", "last"]))
    arg = None if fn == "rate" else draw(names) if fn != "count" else draw(st.none() | names)
    return ast.Agg(fn, arg, draw(st.none() | names))


name_tuples = st.lists(names, min_size=1, max_size=3).map(tuple)
pipes = st.one_of(
    st.builds(ast.Where, filters),
    st.builds(ast.Fields, name_tuples),
    st.builds(ast.Dedup, name_tuples),
    st.builds(ast.Limit, st.integers(0, 10**6)),
    st.lists(st.builds(ast.SortKey, names, st.booleans()), min_size=1, max_size=2).map(
        lambda ks: ast.Sort(tuple(ks))),
    st.builds(ast.Stats, st.lists(aggs(), min_size=1, max_size=2).map(tuple),
              st.lists(names, max_size=2).map(tuple)),
    st.builds(ast.Timechart, st.sampled_from(["", "1m", "30s", "1h"]),
              st.lists(aggs(), min_size=1, max_size=2).map(tuple), st.lists(names, max_size=1).map(tuple)),
    st.builds(ast.Top, st.integers(0, 100), names, st.booleans()),
    st.builds(ast.Patterns, st.none() | st.sampled_from(["1h", "15m", "30s", "2d", "0s", "x"])),
)
queries = st.builds(ast.Query, filters, st.lists(pipes, max_size=3).map(tuple))


@settings(max_examples=EXAMPLES, deadline=None)
@given(queries)
def test_print_parse_round_trip(query: ast.Query) -> None:
    text = to_text(query)
    assert parse(text) == query, text


# ------------------------------------------------------------------------------- hostile strings

_FRAGMENTS = ['"', "'", "\\", "--", ";", "\x00", "ü", "Ω", "😀", "status:", "user_id:", "message:", "(", ")",
              "[", " TO ", "]", "{", "}", "*", "?", "/", "|", " stats count() by ", " AND ", " OR ", "NOT ",
              "{p0:String}", "`", "DROP TABLE logs", " ", ">=", "_exists_:", "-", "+", "1e309", "\n",
              "now-1h", "_time:", " | where ", " | sort by ", ",", "' OR 1=1 --", "$(id)", "\u2028"]
hostile = st.one_of(
    st.text(max_size=40),
    st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=3), max_size=12).map("".join),
)
_ALLOWED_LITERALS = {"'UTC'", "'%Y-%m-%dT%H:%i:%S.%fZ'", "'second'", "''", "'{}'"}
_HOSTILE_CHARS = set("'\"\\;`{}\x00\n\r\t")  # none of these is ever in the skeleton


def _values(query: ast.Query) -> list[str]:
    """Every user value in a parsed query (what must only ever travel as a parameter)."""
    out: list[str] = []

    def walk(f: ast.Filter) -> None:
        if isinstance(f, ast.And | ast.Or):
            for item in f.items:
                walk(item)
        elif isinstance(f, ast.Not):
            walk(f.operand)
        elif isinstance(f, ast.Match):
            m = f.matcher
            if isinstance(m, ast.Range):
                out.extend(v for v in (m.lo, m.hi) if v is not None)
            elif isinstance(m, ast.Wildcard | ast.Regex):
                out.append(m.pattern)
            else:
                out.append(m.value)

    walk(query.filter)
    for p in query.pipes:
        if isinstance(p, ast.Where):
            walk(p.filter)
    return out


def _names(node: object) -> Iterator[str]:
    """Every field name a query's AST holds (filters, pipes, sort keys, aggregate arguments)."""
    if isinstance(node, str):
        return
    if isinstance(node, tuple | list):
        for item in node:
            yield from _names(item)
        return
    if not dataclasses.is_dataclass(node):
        return
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if f.name in ("field", "arg", "name") and isinstance(value, str):
            yield value
        elif f.name in ("names", "by") and isinstance(value, tuple):
            yield from (v for v in value if isinstance(v, str))
        else:
            yield from _names(value)


def _key_literals(query: ast.Query) -> set[str]:
    """The string literals an attribute path may put in SQL: each key of each name the query
    holds, quoted by sqlsafe (keys are names, not values: ATTRTEXT §4), and the type name."""
    keys: set[str] = set()
    for name in _names(query):
        quoted = quoted_keys(name)
        if quoted is not None:
            keys.update(quoted)
        else:
            parts = name.split(".")
            keys.update(k for spelling in attribute_keys(parts[1:] if parts[0] == "attributes" else parts)
                        for k in spelling)
    return {quote_string(k) for k in keys} | {"'Nullable(String)'"}


def _engine_safe(params: dict[str, object]) -> bool:
    """chDB reads string parameters TSV-escaped (see test_store_parameter_escaping)."""
    return not any(isinstance(v, str) and any(c in v for c in "\\\t\n\r") for v in params.values())


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hostile)
def test_hostile_text_never_reaches_sql(golden_store: EmbeddedStore, text: str) -> None:
    try:
        query = parse(text)
        compiled = compile_ast(query, table=golden_store.table, limit=5, max_limit=10)
    except QueryError as exc:
        assert exc.code and exc.message
        return
    sql = compiled.sql
    allowed = _ALLOWED_LITERALS | _key_literals(query)
    for literal in re.findall(r"'(?:[^'\\]|\\.)*'", sql):
        assert literal in allowed, (literal, sql)
    for ident in re.findall(r"`((?:[^`\\]|\\.)*)`", sql):
        assert FIELD_NAME.fullmatch(ident), (ident, sql)
    # what is left once identifiers, placeholders and the compiler's own literals are taken out
    # is the compiler's skeleton: plain ASCII with no quote, backslash, semicolon or comment
    skeleton = re.sub(r"`(?:[^`\\]|\\.)*`", "I", sql)
    skeleton = re.sub(r"\{p\d+:[A-Za-z0-9()]+\}", "P", skeleton)
    for literal in sorted(allowed, key=len, reverse=True):
        skeleton = skeleton.replace(literal, "L")
    assert skeleton.isascii() and skeleton.isprintable(), skeleton
    assert not set("'\"\\;`") & set(skeleton) and "--" not in skeleton, skeleton
    assert set(compiled.params) == set(re.findall(r"\{(p\d+):", sql))
    for value in _values(query):
        if len(value) >= 2 and (any(ch in value for ch in _HOSTILE_CHARS) or not value.isascii()):
            assert value not in skeleton, (value, skeleton)
    if _engine_safe(compiled.params):
        try:
            golden_store.query(compiled.sql, compiled.params)
        except StoreError as exc:  # only a regex RE2 refuses may get this far
            assert "re2" in str(exc).lower(), (text, sql, exc)


def test_store_parameter_escaping(golden_store: EmbeddedStore) -> None:
    hostile = "a\\tb\\ \t tab \n newline \\x41 '\" \\"
    rows = golden_store.query("SELECT {p:String} AS v, {a:Array(String)} AS arr",
                              {"p": hostile, "a": [hostile, "o'k", "plain"]})
    assert rows == [{"v": hostile, "arr": [hostile, "o'k", "plain"]}]


def test_word_boundary_regex(golden_store: EmbeddedStore) -> None:
    compiled = compile_ast(parse("message:/\\bdeclined\\b/"), table=golden_store.table, limit=50)
    rows = golden_store.query(compiled.sql, compiled.params)
    assert sorted(attributes_of(row["attributes"])["rid"] for row in rows) == ["r01", "r16"]


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(queries, st.booleans())
def test_every_compiled_query_runs(golden_store: EmbeddedStore, query: ast.Query, window: bool) -> None:
    """Any query either is refused with a QueryError or runs on the engine: never a SQL error."""
    times = {"time_from_ns": 1_793_534_400_000_000_000, "time_to_ns": 1_793_535_600_000_000_000} if window else {}
    try:
        compiled = compile_ast(query, table=golden_store.table, limit=5, max_limit=10, **times)
    except QueryError:
        return
    if _engine_safe(compiled.params):
        rows = [exact_fields(compiled, row) for row in golden_store.query(compiled.sql, compiled.params)]
        assert len(rows) <= 10
        assert all(list(row) == compiled.columns for row in rows)


def test_exists_after_a_projection_runs(golden_store: EmbeddedStore) -> None:
    """Regression (found by the property above): `_exists_` on an attribute a pipe projected
    referred to the `attributes` column, which the projection had dropped."""
    compiled = compile_ast(parse("* | fields rid | where _exists_:rid | stats count() as n"),
                           table=golden_store.table, limit=5)
    rows = golden_store.query(compiled.sql, compiled.params)
    assert rows and int(rows[0]["n"]) > 0
