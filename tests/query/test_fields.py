"""``GET /api/v1/fields`` against a real server: whole-match counts, the sample's estimates, the
unknown field names of a query, the key's scope and bad input."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import ServerProcess

from logharbor.server.features.query.fieldstats import SAMPLE

N = 4000
START_NS = 1_793_534_400 * 10**9  # 2026-11-01T12:00:00Z
WINDOW = {"from": "2026-11-01T12:00:00Z", "to": "2026-11-01T13:00:00Z"}
SERVICES = [("alpha", 0.5), ("beta", 0.3), ("gamma", 0.2)]
USERS = [("u-1", 0.5), ("u-2", 0.3), ("u-3", 0.2)]


def pick(rng: random.Random, choices: list[tuple[str, float]]) -> str:
    x = rng.random()
    for value, share in choices:
        if x < share:
            return value
        x -= share
    return choices[-1][0]


def corpus() -> list[dict]:  # type: ignore[type-arg]
    rng = random.Random(25)
    out = []
    for i in range(N):
        record = {"timestamp": START_NS + i * 40 * 60 * 10**9 // N, "service": pick(rng, SERVICES),
                  "level": "ERROR" if i % 10 == 0 else "INFO", "message": f"step {i % 7} done"}
        if i % 5 < 3:  # 60 % carry a user
            record["user_id"] = pick(rng, USERS)
        if i % 4 == 0:
            record["cart"] = {"items": i % 3}
        if i % 100 == 50:
            record["path"] = "/attr"  # an attribute a query reads as http.path unless written attributes.path
        if i % 100 == 0:
            record["odd"] = ['say "hi"\\', 7, "7", True][i // 100 % 4]
        out.append(record)
    return out


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("fields") / "data", "--batch-max-age", "0.2").start()
    try:
        server.ingest(corpus())
        yield server
    finally:
        server.stop()


def fields(server: ServerProcess, q: str, key: str | None = None, **extra: str) -> dict:  # type: ignore[type-arg]
    headers = {"authorization": f"Bearer {key or server.api_key}"}
    response = httpx.get(server.url + "/api/v1/fields", params={"q": q, **WINDOW, **extra},
                         headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def by_name(answer: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {f["name"]: f for f in answer["fields"]}


def test_whole_match_counts_are_exact_and_the_rest_is_sampled(loaded: ServerProcess) -> None:
    answer = fields(loaded, "*")
    assert answer["total"] == N
    assert 0 < answer["sampled"] < N and not answer["exact"], "4000 matches are more than one sample"
    got = by_name(answer)
    service = got["service"]
    assert service["exact"] and service["count"] == N
    want = {s: sum(1 for r in corpus() if r["service"] == s) for s, _ in SERVICES}
    assert {t["value"]: t["count"] for t in service["top"]} == want
    assert got["level"]["top"] == [{"value": "INFO", "count": N - N // 10}, {"value": "ERROR", "count": N // 10}]
    # a sampled field: its share of the sample estimates its share of the whole match
    user = got["user_id"]
    assert not user["exact"]
    assert abs(user["count"] - 0.6 * N) < 0.1 * N
    assert [t["value"] for t in user["top"]] == ["u-1", "u-2", "u-3"]
    assert abs(user["top"][0]["count"] - 0.3 * N) < 0.1 * N
    assert got["cart.items"]["type"] == "number"
    assert abs(got["cart.items"]["count"] - N / 4) < 0.1 * N
    assert got["message"]["type"] == "string"


def test_a_small_match_is_read_whole(loaded: ServerProcess) -> None:
    answer = fields(loaded, "service:gamma")
    records = [r for r in corpus() if r["service"] == "gamma"]
    assert answer["total"] == len(records) <= SAMPLE
    assert answer["exact"] and answer["sampled"] == len(records)
    user = by_name(answer)["user_id"]
    assert user["exact"] and user["count"] == sum(1 for r in records if "user_id" in r)
    want = sorted(((sum(1 for r in records if r.get("user_id") == u), u) for u, _ in USERS), reverse=True)
    assert [(t["count"], t["value"]) for t in user["top"]] == want


def test_values_keep_their_type(loaded: ServerProcess) -> None:
    odd = by_name(fields(loaded, "_exists_:odd"))["odd"]
    assert odd["type"] == "mixed"
    assert sorted((type(t["value"]).__name__, str(t["value"])) for t in odd["top"]) == [
        ("bool", "True"), ("int", "7"), ("str", "7"), ("str", 'say "hi"\\')]


def test_an_attribute_named_like_a_column_is_named_so_a_click_reaches_it(loaded: ServerProcess) -> None:
    got = by_name(fields(loaded, "*"))
    assert "path" not in got and "http.path" not in got
    assert got["attributes.path"]["top"][0]["value"] == "/attr"
    n = loaded.query("attributes.path:/attr | stats count() as n", **WINDOW)["rows"][0]["n"]
    assert n == N // 100 == by_name(fields(loaded, "attributes.path:/attr"))["attributes.path"]["count"]


def test_unknown_fields_get_suggestions(loaded: ServerProcess) -> None:
    answer = fields(loaded, "servce:alpha AND usr_id:u-1 | stats count() by levl")
    assert answer["total"] == 0
    unknown = {u["field"]: u for u in answer["unknown"]}
    assert unknown["servce"]["position"] == 0 and unknown["servce"]["suggestions"][0] == "service"
    assert unknown["usr_id"]["position"] == len("servce:alpha AND ")
    assert unknown["usr_id"]["suggestions"][0] == "user_id"
    assert unknown["levl"]["suggestions"][0] == "level"
    assert fields(loaded, "user_id:u-1 AND cart.items:1 AND _exists_:cart AND USER_ID:x")["unknown"] == [
        {"field": "USER_ID", "position": len("user_id:u-1 AND cart.items:1 AND _exists_:cart AND "),
         "suggestions": ["user_id"]}]


def test_one_field_with_more_values(loaded: ServerProcess) -> None:
    answer = fields(loaded, "*", field="service", top="2")
    assert [f["name"] for f in answer["fields"]] == ["service"]
    assert [t["value"] for t in answer["fields"][0]["top"]] == ["alpha", "beta"]


def test_a_scoped_key_sees_only_its_records(loaded: ServerProcess) -> None:
    key = loaded.create_key("reader", services=["beta"])
    answer = fields(loaded, "*", key=key)
    got = by_name(answer)
    assert answer["total"] == sum(1 for r in corpus() if r["service"] == "beta")
    assert [t["value"] for t in got["service"]["top"]] == ["beta"]


def test_bad_input_is_a_400_that_says_why(loaded: ServerProcess) -> None:
    headers = loaded.headers
    bad = httpx.get(loaded.url + "/api/v1/fields", params={"q": "status:"}, headers=headers, timeout=30)
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "query_syntax" and bad.json()["error"]["position"] == 7
    when = httpx.get(loaded.url + "/api/v1/fields", params={"from": "yesterday"}, headers=headers, timeout=30)
    assert when.status_code == 400 and when.json()["error"]["code"] == "invalid_time"
    top = httpx.get(loaded.url + "/api/v1/fields", params={"top": "1000"}, headers=headers, timeout=30)
    assert top.status_code == 400 and "query.top" in top.json()["error"]["message"]
    anonymous = httpx.get(loaded.url + "/api/v1/fields", timeout=30)
    assert anonymous.status_code == 401


def test_the_documented_figures_are_the_code_s() -> None:
    from pathlib import Path

    from logharbor.server.features.query import fieldstats

    doc = (Path(__file__).resolve().parents[2] / "docs" / "query.md").read_text()
    section = doc.split("## Fields of a search", 1)[1].split("\n## ", 1)[0]
    assert f"about {fieldstats.SAMPLE:,} matches" in section
    assert f"about {fieldstats.SLICE_RECORDS} records each" in section
    assert f"{fieldstats._COUNTERS} counters" in section
    words = set(re.findall(r"[\w.]+", section))
    for column in fieldstats.CHEAP_COLUMNS:
        assert fieldstats.display_name(column) in words, column
