"""The substring guards in front of an attribute's JSON parse are sound (filters.stored_needle,
filters.key_needle): whenever a record's attribute has a text form ``v``, the needle of ``v`` is
in the record's stored text, so ``position(attributes, needle) > 0 AND <parse>`` never drops a
row that ``<parse>`` alone keeps.

The text forms are the engine's own (``JSONExtract``, real chDB), of texts written by both
writers the store has: the encoder (orjson / exactjson, what an insert stores) and the engine's
JSON serialisation (what a table migrated from the old JSON column holds), over values with
quotes, backslashes, slashes, control and non-ASCII characters, ``<>&'``, numbers of every
spelling, objects and arrays. Then the compiled queries themselves find each record by each of
its values (end to end through the query compiler, on the logs table)."""

# the SQL here is fixed text and a quoted table name; every value is a parameter
# ruff: noqa: S608
from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import examples

from logharbor import exactjson
from logharbor.record import normalize
from logharbor.server.engine.store.attributes import PROMOTED
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.features.query import compile_query
from logharbor.server.features.query.compiler import exact_fields
from logharbor.server.features.query.fields import field_text, promoted_columns, promoted_in
from logharbor.server.features.query.filters import key_needle, stored_needle, wildcard_needle

EXAMPLES = int(os.environ.get("QUERY_EXAMPLES") or examples(40))

_chars = st.characters(blacklist_categories=("Cs",))
#: strings that reach every escaping rule: quotes, backslash, slash, controls, <>&', non-ASCII
_texts = st.one_of(
    st.text(_chars, max_size=12),
    st.text(st.sampled_from('ab1 "\\/\n\t\x01\x7f<>&\'é🙂\u2028.-_:{}[]'), max_size=10),
    st.sampled_from(["13", "13.0", "1e3", "-0", "true", "false", "null", "{}", "[]", " 13 ", "0x0D",
                     "+13", "u-123", "a.b", ""]),
)
_scalars = st.one_of(
    _texts, st.booleans(), st.none(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([13.0, -0.0, 1e20, 1.5e-7, 1e-5]),
)
_values = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(_texts, inner, max_size=3)), max_leaves=6)
_objects = st.dictionaries(_texts, _values, min_size=1, max_size=4)


@pytest.fixture(scope="module")
def store(chdb_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(chdb_path, table="attr_guard")  # the package's chDB path (conftest)
    s.open()
    yield s
    s.close()


def _text_forms(store: EmbeddedStore, texts: list[str], *, engine_written: bool) -> list[tuple[str, str, list[Any]]]:
    """(stored text, key, [text form of that key]) for every top-level key of every text."""
    stored = "CAST(CAST(t AS JSON) AS String)" if engine_written else "t"
    rows = store.query(
        f"SELECT s, arrayMap(k -> (k, JSONExtract(s, k, 'Nullable(String)')), JSONExtractKeys(s)) AS kv "
        f"FROM (SELECT {stored} AS s FROM (SELECT arrayJoin({{texts:Array(String)}}) AS t))",
        {"texts": texts})
    return [(row["s"], k, v) for row in rows for k, v in row["kv"]]


def _check(found: list[tuple[str, str, Any]]) -> None:
    for text, key, form in found:
        needle = key_needle(key)
        assert needle is None or needle in text, (text, key, needle)
        needle = key_needle(key, tail=".")
        if needle is not None and any(k.startswith(key + ".") for k in exactjson.loads(text)):
            assert needle in text, (text, key, needle)
        if form is None:
            continue
        needle = stored_needle(form)
        assert needle is None or needle in text, (text, key, form, needle)
        half = len(form) // 2
        for pattern in (_escape(form[:half]) + "*" + _escape(form[half + 1:]), _escape(form) + "*",
                        _escape(form[:3]) + "?" + _escape(form[4:])):
            needle = wildcard_needle(pattern)  # every one of these patterns matches ``form``
            assert needle is None or needle in text, (text, key, form, pattern, needle)


def _escape(text: str) -> str:
    """``text`` as the literal part of a wildcard (``*``, ``?`` and ``\\`` escaped)."""
    return "".join("\\" + ch if ch in "*?\\" else ch for ch in text)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_objects, min_size=1, max_size=20))
def test_a_guard_is_in_the_encoder_text_of_every_value_it_guards(store: EmbeddedStore,
                                                                   objects: list[dict[str, Any]]) -> None:
    texts = [exactjson.dumps(o).decode() for o in objects]
    _check(_text_forms(store, texts, engine_written=False))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(st.text(st.sampled_from("abk_-é"), min_size=1, max_size=4),
                                st.one_of(_texts, st.integers(min_value=-(2**63), max_value=2**63 - 1),
                                          st.floats(allow_nan=False, allow_infinity=False), st.booleans()),
                                min_size=1, max_size=4), min_size=1, max_size=20))
def test_a_guard_is_in_the_engine_written_text_too(store: EmbeddedStore, objects: list[dict[str, Any]]) -> None:
    """Rows migrated from the JSON column hold the engine's serialisation (``/`` as ``\\/``,
    ``1.0`` as ``1``): the guards hold there as well."""
    texts = [exactjson.dumps(o).decode() for o in objects]
    _check(_text_forms(store, texts, engine_written=True))


@pytest.mark.parametrize(("value", "needle"), [
    ("u-123", '"u-123"'), ("true", "true"), ('say "hi" now', "say "), ("a/b/cde", "cde"),
    ("13", None), ("13.0", None), ("1e3", None), (" 13 ", None), ("-0", None), ("inf", None),
    ('{"y":1}', None), ("[1]", None), ("ab", '"ab"'), ("a\"b", None), ("", None), ("café", "caf"),
])
def test_which_values_get_a_guard(value: str, needle: str | None) -> None:
    """Number-like values and objects' or arrays' text never get one (their text form is not the
    stored text); a plain string is searched with its quotes, others by their longest plain run."""
    assert stored_needle(value) == needle


@pytest.mark.parametrize(("pattern", "needle"), [
    ("app/shop*", "shop"), ("abc*", "abc"), ("true*", "true"), ("u\\*x*", "u*x"),
    ("*abc", None), ("1*", None), ("e-1*", None), ('{"a*', None), ("[1*", None), ("ab*cd", None),
])
def test_which_wildcards_get_a_guard(pattern: str, needle: str | None) -> None:
    """Only a pattern that starts with a literal other than ``{``/``[`` and has a literal no
    number's text has: an object's, array's or number's text form is not the stored text."""
    assert wildcard_needle(pattern) == needle


_ids = itertools.count()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["k", "user_id", "error_code", "x.y", "a\"q", "s/t"]),
                       st.one_of(_texts, st.integers(min_value=-(2**70), max_value=2**70), st.booleans(),
                                 st.sampled_from([13.0, -0.0, 1e20, 1.5e-7])), min_size=1, max_size=3))
def test_each_value_finds_its_record_through_the_compiler(store: EmbeddedStore, attributes: dict[str, Any]) -> None:
    """``key:"<text form>"`` finds the record, promoted key or not, through the guard (end to end)."""
    rid = f"g{next(_ids)}"
    record = normalize({"service": "guard", "message": "m", "rid": rid, **attributes})
    assert store.insert(encode_row(record), dedup_token=rid) == 1
    sql = ("SELECT arrayMap(k -> (k, JSONExtract(attributes, k, 'Nullable(String)')), JSONExtractKeys(attributes)) "
           f"AS kv FROM {store.table} WHERE JSONExtract(attributes, 'rid', 'Nullable(String)') = {{rid:String}}")
    forms = store.query(sql, {"rid": rid})
    for key, form in forms[0]["kv"]:
        if key == "rid" or form is None:
            continue
        escaped = form.replace("\\", "\\\\").replace('"', '\\"')
        compiled = compile_query(f'rid:{rid} AND {field_text(key)}:"{escaped}"', table=store.table,
                                 time_from_ns=None, time_to_ns=None, limit=10, max_limit=10)
        assert [exact_fields(compiled, r) for r in store.query(compiled.sql, compiled.params)], (key, form)


def test_the_default_promoted_columns_are_recognised() -> None:
    """schema.sql's promoted columns are read by the compiler, and the store agrees on which they
    are (an edit that breaks their exact form would silently turn every search on them into a
    parse of every row)."""
    assert {"user_id", "order_id", "error_code", "logger", "duration_ms"} <= set(promoted_columns())
    assert dict(promoted_columns()) == dict(PROMOTED)


_TUPLE = "Tuple(a Nullable(String), b LowCardinality(Nullable(String)), c Nullable(Float64))"


@pytest.mark.parametrize(("lines", "expected"), [
    (["attr_a Nullable(String) MATERIALIZED JSONExtract(attributes, 'a', 'Nullable(String)') CODEC(ZSTD(1)),"],
     {"a": "attr_a"}),
    ([f"p {_TUPLE} MATERIALIZED JSONExtract(attributes, '{_TUPLE}') CODEC(ZSTD(1)),",
      "attr_a Nullable(String) ALIAS p.a,", "attr_b LowCardinality(Nullable(String)) ALIAS p.b,",
      "attr_c Nullable(Float64) ALIAS p.c,", "attr_d Nullable(String) ALIAS p.d,"],
     {"a": "attr_a", "b": "attr_b"}),
    # not the text form: a number type, another key, another column, a different tuple type
    (["attr_a Nullable(Float64) MATERIALIZED JSONExtract(attributes, 'a', 'Nullable(Float64)'),",
      "attr_b Nullable(String) MATERIALIZED JSONExtractString(attributes, 'b'),",
      "attr_c Nullable(String) MATERIALIZED JSONExtract(message, 'c', 'Nullable(String)'),",
      f"p {_TUPLE} MATERIALIZED JSONExtract(attributes, 'Tuple(a String)'),", "attr_e Nullable(String) ALIAS p.a,"],
     {}),
])
def test_only_a_column_holding_the_text_form_is_promoted(lines: list[str], expected: dict[str, str]) -> None:
    assert promoted_in(lines) == expected
