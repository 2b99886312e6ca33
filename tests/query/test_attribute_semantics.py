"""What a query answers about attributes, recorded: the safety net of the attribute storage switch.

``attribute_corpus.py`` holds records whose attributes take every shape a storage could treat
differently (look-alike strings, 13 vs 13.0, -0.0, ints at and beyond 64 bits, null, {} and [],
mixed arrays, a dotted name in every spelling, keys needing quotes or named like columns, one key
with a different type per record, a long value) and queries reaching them through every place an
attribute path appears in the language. The answers, read through the real path (the compiler,
the embedded chDB store, ``service.run_compiled`` as the query route calls it, ``field_stats`` as
``/api/v1/fields`` does), are compared with ``attribute_semantics.json``, recorded from the JSON
column code (main, 2026-12-07).

Answers are normalised only where the language leaves them open: a listing without ``sort`` is
a set of ``rid``s, a table without ``sort`` a set of rows, a stats number is compared to 12
significant digits (summation order), a field list's values in a fixed order. Everything else
must be equal, JSON types included (``13`` is not ``13.0``, ``1`` is not ``true``).

Where the recorded code answered wrongly, the file holds the *correct* answer and the case is in
:data:`KNOWN_WRONG` (xfail, strict: a change that fixes it makes the test fail until its entry
is removed). A difference the new storage makes on purpose (exactness gained) is re-recorded,
with its reason in the commit and beside the case. ``test_attribute_semantics_server.py`` asks
the value-showing cases again through a real server (HTTP ingest, WAL, batcher, query route).

Record again (after changing the corpus, or to accept an intended change) from the repo root::

    PYTHONPATH=src .venv/bin/python -m tests.query.test_attribute_semantics --record
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logharbor.record import normalize, parse_timestamp, to_wire
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.features.query import QueryError, compile_query
from logharbor.server.features.query.fieldstats import field_stats
from logharbor.server.features.query.service import run_compiled

try:
    from . import attribute_corpus as corpus
except ImportError:  # run as a script: python -m tests.query.test_attribute_semantics --record
    from tests.query import attribute_corpus as corpus  # type: ignore[no-redef]

ANSWERS = Path(__file__).with_name("attribute_semantics.json")
NOW = parse_timestamp("2026-11-02T12:00:00Z")
RECEIVED = 1_800_000_000_000_000_000

#: field-list requests (``/api/v1/fields``): every attribute path with its type and values, and
#: the names a query reads that no record has
FIELD_LISTS = ["*", "kindd:a AND a.bb:1 AND `a.b`:2 AND KIND:a AND `x%2Ey`:2"]

#: answers the recorded code got wrong: key → why. The answers file holds the *correct* answer for
#: these (``--record`` keeps it), and they xfail (strict) until the code is fixed.
_OBJECT_GROUP = ("an object value is grouped as '' with the records that lack the field and an array "
                 "as engine text ['x','y']; a group's value is the value's JSON text")
_BIG_EQUAL = ("equality with an integer beyond 2**53 is compared as Float64, so 2**64-1 finds 2**64+1 "
              "(and 2**53 finds 2**53+1); the documented promise is 'an integer beyond 64 bits by its digits'")
_EMPTY_OBJECT = "{} is not stored by the JSON column, so a record holding {} at the path is missed"
KNOWN_WRONG: dict[str, str] = {
    "records big:18446744073709551615": _BIG_EQUAL,
    "records big:18446744073709551617": _BIG_EQUAL,
    "records big:9007199254740992": _BIG_EQUAL,
    'records e:"{}"': _EMPTY_OBJECT,
    'records empty_s:""': "an absent attribute reads as '', so a search for the empty string finds every "
                          "record without the key",
    "records _exists_:e": _EMPTY_OBJECT,
    "records e:*": _EMPTY_OBJECT,
    "records _exists_:e.inner": _EMPTY_OBJECT,
    "ordered * | dedup n": "dedup merges a record whose value is an object with the records lacking it",
    "ordered * | dedup a.b": "dedup merges records whose value is an object with the records lacking it",
    "table * | stats count() as c by n": _OBJECT_GROUP,
    "table * | stats count() as c by user_id": _OBJECT_GROUP,
    "table * | stats count() as c by mixed": _OBJECT_GROUP,
    "table * | stats count() as c by a.b": _OBJECT_GROUP,
    "table * | stats count() as c by arr": _OBJECT_GROUP,
    "table * | stats count() as c by e": _OBJECT_GROUP,
    "table * | top 30 n": _OBJECT_GROUP,
    "table * | top 30 mixed": _OBJECT_GROUP,
    "table * | top 30 a.b": _OBJECT_GROUP,
    "table * | top 30 user_id": _OBJECT_GROUP,
    "table * | stats count(n), count_uniq(n), sum(n), avg(n), min(n), max(n)":
        "count_uniq counts 'absent' as one more value (and objects not at all)",
    "table * | stats sum(big), min(big), max(big), count(big), count_uniq(big)":
        "count_uniq counts 'absent' as one more value: 6 distinct of 5 present",
    "table * | stats count(kind), count_uniq(kind), min(kind), max(kind)":
        "count_uniq counts 'absent' as one more value",
    "table * | stats count(mixed), count_uniq(mixed), sum(mixed), min(mixed), max(mixed)":
        "count_uniq counts 'absent' as one more value (and objects not at all)",
    "table * | stats count(a.b), count_uniq(a.b), count(`a.b`), count(e), count(nul), count(arr)":
        "count_uniq misses object values; count(e) misses the records holding {}",
    "fields *": "field_stats crashes (a 500) on an integer beyond 64 bits (orjson.dumps)",
    "fields kindd:a AND a.bb:1 AND `a.b`:2 AND KIND:a AND `x%2Ey`:2":
        "the unknown-field warning lists `a.b` and `x%2Ey`, which records have (suggesting 'x%2Ey' bare)",
}


def cases() -> list[str]:
    """Every answer's key, in file order."""
    return ([f"records {q}" for q in corpus.FILTERS] + [f"ordered {q}" for q in corpus.ORDERED_RECORDS]
            + [f"table {q}" for q in corpus.TABLES] + [f"fields {q}" for q in FIELD_LISTS]
            + ["whole records"])


# -- normalising ---------------------------------------------------------------------------------


def canonical(value: Any) -> str:
    """One text per JSON value, types kept (13 ≠ 13.0 ≠ "13", 1 ≠ true), object keys sorted."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _approx(value: Any) -> Any:
    """Numbers to 12 significant digits, int or float alike (a sum's last bits are the engine's)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    return float(f"{value:.12g}")


def _table(query: str, rows: list[dict[str, Any]]) -> list[Any]:
    if "| stats" in query:
        rows = [{k: _approx(v) for k, v in row.items()} for row in rows]
    if " sort by " not in query:
        rows = sorted(rows, key=canonical)
    return rows


def _field_list(answer: dict[str, Any]) -> dict[str, Any]:
    fields = []
    for field in answer["fields"]:
        top = sorted(field["top"], key=lambda t: (-t["count"], canonical(t["value"])))
        fields.append({**field, "top": top})
    return {"total": answer["total"], "sampled": answer["sampled"], "exact": answer["exact"],
            "fields": sorted(fields, key=lambda f: f["name"]), "unknown": answer["unknown"]}


def _wire(record: dict[str, Any]) -> dict[str, Any]:
    record = dict(record)
    record.pop("observed_timestamp", None)
    record.pop("pattern_id", None)
    return record


# -- asking --------------------------------------------------------------------------------------


def load(store: EmbeddedStore) -> None:
    rows = [encode_row(normalize(r, received_ns=RECEIVED)) for r in corpus.records()]
    assert store.insert(b"\n".join(rows), dedup_token="attribute-semantics") == len(rows)


def run(store: EmbeddedStore, query: str) -> tuple[str, list[dict[str, Any]]]:
    compiled = compile_query(query, table=store.table, time_from_ns=None, time_to_ns=None, limit=1000,
                             max_limit=10_000, now_ns=NOW)
    rows, _ = run_compiled(store, compiled, {})
    return compiled.kind, rows


def ask(store: EmbeddedStore, key: str) -> Any:
    """The normalised answer of one case (see the module docstring); a refused query's answer is
    its error code."""
    try:
        return _ask(store, key)
    except QueryError as exc:
        return {"error": exc.code}
    except Exception as exc:  # a crash is an answer too (a 500), and a wrong one
        return {"crash": type(exc).__name__}


def _ask(store: EmbeddedStore, key: str) -> Any:
    what, _, query = key.partition(" ")
    if what == "fields":
        return _field_list(field_stats(store, query, start=None, end=None, scope=None, settings={},
                                       top=100, now_ns=NOW, max_limit=10_000).to_json())
    if key == "whole records":
        _, rows = run(store, "*")
        return sorted((_wire(r) for r in rows), key=lambda r: r["rid"])
    kind, rows = run(store, query)
    if what in ("records", "ordered"):
        assert kind == "records", key
        rids = [r.get("rid") for r in rows]
        return rids if what == "ordered" else sorted(rids)
    return _table(query, rows)


def expected_whole_records() -> list[dict[str, Any]]:
    """What was sent, normalised: the one answer that needs no recording."""
    return [_wire(to_wire(normalize(r, received_ns=RECEIVED))) for r in corpus.records()]


# -- the test ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(chdb_path: Path) -> Iterator[EmbeddedStore]:
    s = EmbeddedStore(chdb_path, table="attribute_semantics")  # the package's chDB path (conftest)
    s.open()
    s.execute(f"TRUNCATE TABLE {s.table}")
    load(s)
    yield s
    s.close()


@pytest.fixture(scope="module")
def recorded() -> dict[str, Any]:
    return json.loads(ANSWERS.read_text(encoding="utf-8"))


def _params() -> list[Any]:
    out = []
    for key in cases():
        marks = []
        if key in KNOWN_WRONG:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_WRONG[key]))
        out.append(pytest.param(key, id=key[:120], marks=marks))
    return out


def test_every_case_is_recorded(recorded: dict[str, Any]) -> None:
    """The answers file and the corpus agree (record again after changing the corpus)."""
    assert list(recorded) == cases()


@pytest.mark.parametrize("key", _params())
def test_answer_is_the_recorded_one(store: EmbeddedStore, recorded: dict[str, Any], key: str) -> None:
    assert canonical(ask(store, key)) == canonical(recorded[key])


def test_whole_records_are_what_was_sent(recorded: dict[str, Any]) -> None:
    """The recorded whole records are the records sent (so that one answer is truth, not habit)."""
    assert canonical(recorded["whole records"]) == canonical(expected_whole_records())


# -- recording -----------------------------------------------------------------------------------


def record() -> None:
    """Ask every case of a fresh store and write the answers file; a known-wrong case keeps the
    correct answer the file has (written by hand, with the reason in :data:`KNOWN_WRONG`)."""
    old = json.loads(ANSWERS.read_text(encoding="utf-8")) if ANSWERS.exists() else {}
    missing = [key for key in KNOWN_WRONG if key not in old]
    if missing:
        sys.exit(f"write the correct answers of {missing} into {ANSWERS} first")
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedStore(Path(tmp) / "store", table="attribute_semantics")
        store.open()
        try:
            load(store)
            answers = {}
            for key in cases():
                answers[key] = old[key] if key in KNOWN_WRONG else ask(store, key)
        finally:
            store.close()
    ANSWERS.write_text(json.dumps(answers, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{len(answers)} answers written to {ANSWERS}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(__doc__)
    record()
