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
#: these (``--record`` keeps it), and they xfail (strict) until the code is fixed. The attributes
#: text storage (attrtext) fixed every one recorded on 2026-12-07: integers from 2**53 on compare
#: exactly, {} is a stored value, ``x:""`` no longer finds the records without ``x``, dedup and
#: groups keep an object apart from absence, count_uniq no longer counts absence (nor a value once
#: per JSON type it was stored as), the field list reads integers beyond 64 bits and knows the
#: keys it was told were typos. (The hand-written answers of ``stats by``/``top`` of n, user_id,
#: mixed and a.b listed each object group twice — 24 rows of counts from 23 records —; they are
#: re-recorded from the fixed code, one group per object text.)
KNOWN_WRONG: dict[str, str] = {}

_OBJECT_TEXT = ("intended (attrtext): an object or array value is its JSON text (the engine's compact "
                "re-serialisation), so it groups, sorts and compares as that text; the JSON column read "
                "an object as '' and grouped/sorted it with the records lacking the field")
#: answers that differ from the JSON column code's on purpose, re-recorded: key → why
INTENDED: dict[str, str] = {
    "records user_id:>u-0": _OBJECT_TEXT + " ('{\"id\":\"u-9\"}' > 'u-0' as text)",
    "ordered _exists_:n | sort by n, rid": _OBJECT_TEXT,
    "ordered _exists_:n | sort by n desc, rid": _OBJECT_TEXT,
    "ordered _exists_:mixed | sort by mixed desc, rid": _OBJECT_TEXT,
    "ordered * | sort by a.b, rid": _OBJECT_TEXT,
    "table * | stats count() as c by `a.b`": _OBJECT_TEXT,
    "table _exists_:n | sort by n, rid | fields rid, n": _OBJECT_TEXT,
    "table _exists_:n | sort by n desc, rid | fields rid, n": _OBJECT_TEXT,
    "table _exists_:mixed | sort by mixed, rid | fields rid, mixed": _OBJECT_TEXT,
    "table _exists_:user_id | sort by user_id, rid | fields rid, user_id": _OBJECT_TEXT,
    "table * | stats count() as c by n": _OBJECT_TEXT,
    "table * | stats count() as c by user_id": _OBJECT_TEXT,
    "table * | stats count() as c by mixed": _OBJECT_TEXT,
    "table * | stats count() as c by a.b": _OBJECT_TEXT,
    "table * | top 30 n": _OBJECT_TEXT,
    "table * | top 30 mixed": _OBJECT_TEXT,
    "table * | top 30 a.b": _OBJECT_TEXT,
    "table * | top 30 user_id": _OBJECT_TEXT,
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


def test_every_listed_case_exists() -> None:
    """A reason given for a case that is not asked any more is a stale note."""
    assert set(KNOWN_WRONG) | set(INTENDED) <= set(cases())


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
