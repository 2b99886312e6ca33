"""Recording rules: evaluated by the server on the alert scheduler, scraped in the Prometheus format."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.conftest import ServerProcess

from logharbor.server.features.health.recorded import RecordingRule, load_rules

WANTED = {"logharbor:records:count30d", "logharbor:latency:p99_30d", "logharbor:app_errors:ratio30d"}
#: the rules run every 10 s on the scheduler's grid; a loaded machine may run one late
EVALUATED_WITHIN_S = 120


def scrape(server: ServerProcess, key: str | None = None) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = httpx.get(server.url + "/metrics/recorded", timeout=30,
                         headers={"authorization": f"Bearer {key or server.api_key}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


@pytest.fixture(scope="session")  # as the loki server it follows
def stored_at(loki: ServerProcess) -> float:
    """When the corpus was stored (the ``loki`` fixture returns once it is queryable)."""
    return time.time()


def evaluated_after(server: ServerProcess, since: float) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Scrape until every rule was evaluated for a grid slot after ``since``, so on the whole
    corpus (an evaluation that ran while it was being stored saw only part of it)."""
    deadline = time.monotonic() + EVALUATED_WITHIN_S
    while True:
        metrics = scrape(server)
        stamps = metrics.get("logharbor_recording_last_evaluation_timestamp_seconds", {})
        if all(stamps.get((("record", r),), 0.0) >= since for r in WANTED):
            return metrics
        assert time.monotonic() < deadline, f"not evaluated after the corpus was stored: {stamps}"
        time.sleep(0.5)


def test_recorded_series_with_group_labels(loki: ServerProcess, stored_at: float) -> None:
    metrics = evaluated_after(loki, stored_at)
    assert WANTED <= set(metrics), sorted(metrics)
    counts = metrics["logharbor:records:count30d"]
    assert counts[(("service", "checkout"), ("team", "core"))] == 4
    assert counts[(("service", "worker"), ("team", "core"))] == 3
    p99 = metrics["logharbor:latency:p99_30d"]
    assert p99[(("service", "api"),)] == pytest.approx(1500 - (1500 - 15.5) * 0.01)  # interpolated p99
    ratio = metrics["logharbor:app_errors:ratio30d"]
    assert ratio[()] == pytest.approx(4 / 17)  # r01 r05 r09 r16 over the 17 app records
    assert metrics["logharbor_recording_errors"][(("record", "logharbor:records:count30d"),)] == 0
    stamp = metrics["logharbor_recording_last_evaluation_timestamp_seconds"]
    assert stamp[(("record", "logharbor:records:count30d"),)] > time.time() - 60


def test_scoped_key_sees_only_series_inside_its_scope(loki: ServerProcess, stored_at: float) -> None:
    key = loki.create_key("reader", services=["checkout"])
    evaluated_after(loki, stored_at)
    seen = scrape(loki, key)
    assert set(seen["logharbor:records:count30d"]) == {(("service", "checkout"), ("team", "core"))}
    assert "logharbor:app_errors:ratio30d" not in seen or not seen["logharbor:app_errors:ratio30d"]
    writer = loki.create_key("writer")
    denied = httpx.get(loki.url + "/metrics/recorded", headers={"authorization": f"Bearer {writer}"})
    assert denied.status_code == 403


def test_rule_file_errors_name_the_rule_and_key(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - record: ok_name\n    query: level:ERROR\n  - record: bad name\n    query: x\n")
    with pytest.raises(ValueError, match=r"rules\[1\].*bad name"):
        load_rules(path)
    path.write_text("rules:\n  - record: r\n    query: 'level:ERROR'\n    interval: 1s\n")
    with pytest.raises(ValueError, match=r"rules\[0\].*interval"):
        load_rules(path)
    path.write_text("- record: r\n  query: '* | stats count() as n by service'\n  value: nope\n")
    with pytest.raises(ValueError, match="nope"):
        load_rules(path)
    assert load_rules(tmp_path / "absent.yaml") == []
    path.write_text("groups:\n  - name: g\n    interval: 30s\n    labels: {team: a, tier: x}\n    rules:\n"
                    "      - record: r1\n        query: '*'\n        labels: {tier: y}\n"
                    "      - record: r2\n        query: '*'\n        interval: 15s\n")
    r1, r2 = load_rules(path)
    assert (r1.interval, r1.labels) == ("30s", {"team": "a", "tier": "y"})  # the rule's own label wins
    assert (r2.interval, r2.labels) == ("15s", {"team": "a", "tier": "x"})
    path.write_text("groups:\n  - name: g\n    limit: 3\n    rules: []\n")
    with pytest.raises(ValueError, match=r"groups\[0\].*limit"):
        load_rules(path)
    rule = RecordingRule(record="a:b", query="source:nginx", condition="ratio(status:>=500)")
    assert rule.rule().condition.type == "ratio"
