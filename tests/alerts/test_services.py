"""Service health and its per-minute recording, on the real chDB store."""

from __future__ import annotations

from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.features.health.services import (
    LOOKBACK_NS,
    MINUTE_NS,
    ServiceRecorder,
    active_rate,
    service_health,
)

from .conftest import T0, insert

H = 3600 * 10**9


def requests(service: str, source: str, start: int, n: int, step: int, status_every: int = 10) -> list[dict]:
    return [{"timestamp": start + i * step, "service": service, "source": source, "message": "req",
             "tenant": "svc-test",
             "http": {"status": 503 if i % status_every == 0 else 200, "duration_ms": float(i % 200)}}
            for i in range(n)]


SCOPE = ("tenant = {scope_tenant:String}", {"scope_tenant": "svc-test"})


def by_key(answer: dict) -> dict:
    return {(s["service"], s["source"]): s for s in answer["services"]}


def test_recording_matches_raw_and_rerecords_idempotently(store: EmbeddedStore) -> None:
    start = T0 - 12 * H
    insert(store, requests("rec-alb", "alb", start, 7200, 6 * 10**9)
           + requests("rec-app", "app", start, 3600, 12 * 10**9, status_every=20))
    recorder = ServiceRecorder(store)
    now = T0 + 30 * 10**9
    minutes = recorder.record(now)
    assert minutes >= 12 * 60  # a fresh recording starts with a backfill
    assert recorder.recorded_until() == T0  # whole minutes only: the current one is not recorded yet
    raw = service_health(store, start, now, scope=SCOPE, use_recording=False)
    rec = service_health(store, start, now, scope=SCOPE, use_recording=True, recorder=recorder)
    assert raw["source"] == "raw" and rec["source"] == "recording"
    for key in (("rec-alb", "alb"), ("rec-app", "app")):
        a, b = by_key(raw)[key], by_key(rec)[key]
        assert (a["requests"], a["errors"]) == (b["requests"], b["errors"])
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            assert abs(a[q] - b[q]) <= max(2.0, 0.02 * a[q]), (key, q, a[q], b[q])
    assert by_key(raw)[("rec-alb", "alb")]["requests"] == 7200 and by_key(raw)[("rec-alb", "alb")]["errors"] == 720
    # late records (an ALB object minutes late) inside the lookback are picked up by the next run,
    # and re-recording the same minutes replaces them instead of adding them twice
    insert(store, requests("rec-alb", "alb", T0 - 5 * MINUTE_NS, 10, 10**9))
    recorder.record(now + MINUTE_NS)
    recorder.record(now + MINUTE_NS)
    again = service_health(store, start, now, scope=SCOPE, use_recording=True, recorder=recorder)
    assert by_key(again)[("rec-alb", "alb")]["requests"] == 7210


def test_recording_resumes_after_downtime(store: EmbeddedStore) -> None:
    start = T0 + 10 * H
    insert(store, requests("gap-svc", "nginx", start, 600, 60 * 10**9))  # 10 h, one per minute
    recorder = ServiceRecorder(store)
    recorder.record(start + H)  # recorded up to start+1h …
    assert recorder.recorded_until() == start + H
    recorder.record(start + 8 * H)  # … then the server was down for 7 h
    assert recorder.recorded_until() == start + 8 * H
    answer = service_health(store, start, start + 8 * H, scope=("service = {s:String}", {"s": "gap-svc"}),
                            use_recording=True, recorder=recorder)
    assert answer["source"] == "recording" and by_key(answer)[("gap-svc", "nginx")]["requests"] == 480
    assert LOOKBACK_NS < 7 * H  # the gap was longer than the lookback: the resume logic did it


def test_range_edges_and_scope(store: EmbeddedStore) -> None:
    start = T0 + 30 * H
    insert(store, requests("edge-svc", "app", start, 120, 30 * 10**9))  # one per 30 s for an hour
    recorder = ServiceRecorder(store)
    recorder.record(start + 2 * H)
    # a range starting and ending inside minutes: the partial minutes come from the raw records
    lo, hi = start + 45 * 10**9, start + 30 * MINUTE_NS + 15 * 10**9
    raw = service_health(store, lo, hi, scope=("service = {s:String}", {"s": "edge-svc"}), use_recording=False)
    rec = service_health(store, lo, hi, scope=("service = {s:String}", {"s": "edge-svc"}), use_recording=True,
                         recorder=recorder)
    assert by_key(raw)[("edge-svc", "app")]["requests"] == by_key(rec)[("edge-svc", "app")]["requests"] == 59
    nobody = service_health(store, lo, hi, scope=("service = {s:String}", {"s": "someone-else"}),
                            use_recording=True, recorder=recorder)
    assert nobody["services"] == []


def test_series_per_step_adds_up_to_the_totals(store: EmbeddedStore) -> None:
    start = T0 + 50 * H
    insert(store, requests("series-svc", "alb", start, 600, 6 * 10**9))  # 10 per minute for an hour
    recorder = ServiceRecorder(store)
    recorder.record(start + 2 * H)
    scope = ("service = {s:String}", {"s": "series-svc"})
    for use_recording in (False, True):
        answer = service_health(store, start, start + H, scope=scope, use_recording=use_recording,
                                recorder=recorder, step_ns=10 * MINUTE_NS)
        points = answer["series"]
        assert [p["t_ns"] for p in points] == [start + k * 10 * MINUTE_NS for k in range(6)]
        assert all(p["requests"] == 100 and p["errors"] == 10 for p in points)
        assert sum(p["requests"] for p in points) == by_key(answer)[("series-svc", "alb")]["requests"] == 600
        assert points[0]["rate_per_s"] == round(100 / 600, 4)


def test_a_range_inside_one_minute_is_not_counted_twice(store: EmbeddedStore) -> None:
    start = T0 + 70 * H
    insert(store, requests("tiny-svc", "app", start, 60, 10**9))
    recorder = ServiceRecorder(store)
    recorder.record(start + H)
    scope = ("service = {s:String}", {"s": "tiny-svc"})
    answer = service_health(store, start + 10 * 10**9, start + 40 * 10**9, scope=scope, use_recording=True,
                            recorder=recorder)
    assert answer["source"] == "raw" and by_key(answer)[("tiny-svc", "app")]["requests"] == 30


def test_active_rate_arithmetic() -> None:
    """18/s for three minutes of an hour reads 18/s, not 0.9/s (issue #26 item 5)."""
    start, end = T0, T0 + H
    first, last = T0 + 20 * MINUTE_NS + 5 * 10**9, T0 + 22 * MINUTE_NS + 59 * 10**9
    out = active_rate(18 * 180, first, last, start, end)
    assert out["active_from_ns"] == T0 + 20 * MINUTE_NS and out["active_to_ns"] == T0 + 23 * MINUTE_NS
    assert out["rate_per_s"] == 18.0 and out["range_rate_per_s"] == 0.9
    # clipped to the range: a range starting or ending inside the active minutes
    inside = active_rate(60, T0 + 10 * 10**9, T0 + 50 * 10**9, T0 + 10 * 10**9, T0 + 40 * 10**9)
    assert (inside["active_from_ns"], inside["active_to_ns"]) == (T0 + 10 * 10**9, T0 + 40 * 10**9)
    assert inside["rate_per_s"] == 2.0
    # one record: one minute, never a division by (almost) zero
    assert active_rate(1, T0 + 7, T0 + 7, T0, T0 + H)["rate_per_s"] == round(1 / 60, 4)
    # a range shorter than a second still divides by a second at least
    assert active_rate(5, T0, T0, T0, T0 + 10**8)["rate_per_s"] == 5.0


def test_rate_is_over_the_active_minutes_on_both_paths(store: EmbeddedStore) -> None:
    start = T0 + 90 * H
    # 10 per second for three minutes, 40 minutes into an hour
    burst = start + 40 * MINUTE_NS
    insert(store, requests("burst-svc", "alb", burst, 1800, 10**8))
    recorder = ServiceRecorder(store)
    recorder.record(start + 2 * H)
    scope = ("service = {s:String}", {"s": "burst-svc"})
    for use_recording in (False, True):
        row = by_key(service_health(store, start, start + H, scope=scope, use_recording=use_recording,
                                    recorder=recorder))[("burst-svc", "alb")]
        assert row["requests"] == 1800
        assert (row["active_from_ns"], row["active_to_ns"]) == (burst, burst + 3 * MINUTE_NS), use_recording
        assert row["rate_per_s"] == 10.0 and row["range_rate_per_s"] == 0.5


def test_a_step_the_range_cuts_has_its_rate_over_the_seconds_it_covers(store: EmbeddedStore) -> None:
    start = T0 + 110 * H
    insert(store, requests("cut-svc", "alb", start, 1800, 10**9 // 2))  # 2/s for 15 minutes
    scope = ("service = {s:String}", {"s": "cut-svc"})
    # 5-minute steps, the range starting 1 min into the first and ending 90 s into the third
    answer = service_health(store, start + MINUTE_NS, start + 10 * MINUTE_NS + 90 * 10**9, scope=scope,
                            use_recording=False, step_ns=5 * MINUTE_NS)
    points = answer["series"]
    assert [p.get("covered_s") for p in points] == [240.0, None, 90.0]
    assert [p.get("partial", False) for p in points] == [True, False, True]
    assert all(p["rate_per_s"] == 2.0 for p in points), points  # no drop at either end
