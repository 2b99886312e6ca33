"""GET /api/v1/traces/{id} against a real server fed with ALB, NGINX and app records (issue 8).

The records are the demo's reference stack, parsed from each layer's real log format and posted
through ``POST /api/v1/logs``; some requests' app records lose their trace id on the way, as an app
that only saw ``X-Request-ID`` would write them, and must still join through NGINX's request id.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from tests.conftest import ROOT, ServerProcess

from logharbor.demo.lab import Shipper, collect
from logharbor.demo.traffic import RequestStory, TrafficGenerator, render

N_STORIES = 120


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, list[RequestStory]]]:
    """A server holding N_STORIES requests; every third story's app records lack the trace id."""
    server = ServerProcess(tmp_path_factory.mktemp("traces") / "data", "--batch-max-age", "0.2").start()
    stories = list(TrafficGenerator(seed=8, rate_5xx=0.2).stories(N_STORIES))
    for i, story in enumerate(stories):
        if i % 3 == 1:
            for rec in story.app_records:
                del rec["trace_id"]
    shipper = Shipper(server.url, api_key=server.api_key)
    total = shipper.ship(collect(stories))
    shipper.close()
    assert server.wait_rows(total) == total
    yield server, stories
    server.stop()


def get_trace(server: ServerProcess, ident: str, **params: Any) -> httpx.Response:
    with server.client() as client:
        return client.get("/api/v1/traces/" + quote(ident, safe=""), params=params)


def signature(record: dict[str, Any]) -> tuple[str, str, str]:
    return (record.get("source") or "", record.get("timestamp") or "", record.get("message") or "")


def expected_signatures(story: RequestStory) -> list[tuple[str, str, str]]:
    """What the trace must hold: the story's own ALB, NGINX and app lines, as the server stores them."""
    shipper = Shipper("http://127.0.0.1:1")
    try:
        wire = list(shipper.records(render(story)))
    finally:
        shipper.close()
    from logharbor.record import normalize, to_wire

    return sorted(signature(to_wire(normalize(r, received_ns=0))) for r in wire)


def with_app_trace(stories: list[RequestStory], present: bool) -> list[RequestStory]:
    return [s for i, s in enumerate(stories) if (i % 3 != 1) == present and s.app_records]


@pytest.mark.parametrize("present", [True, False], ids=["app-has-trace-id", "app-lacks-trace-id"])
def test_trace_holds_exactly_its_alb_nginx_and_app_records(stack, present: bool) -> None:  # type: ignore[no-untyped-def]
    server, stories = stack
    for story in with_app_trace(stories, present)[:8]:
        response = get_trace(server, story.trace_id)
        assert response.status_code == 200, response.text
        answer = response.json()
        records = answer["records"]
        assert sorted(signature(r) for r in records) == expected_signatures(story)
        assert [r["timestamp"] for r in records] == sorted(r["timestamp"] for r in records)
        assert answer["layers"] == ["alb", "app", "nginx"]
        assert answer["trace_id"] == story.trace_id
        assert story.request_id in answer["request_ids"]
        assert len(records) == 2 + len(story.app_records)


def test_every_id_form_finds_the_same_request(stack) -> None:  # type: ignore[no-untyped-def]
    server, stories = stack
    story = with_app_trace(stories, False)[0]  # the hardest case: app records joined by request id
    forms = [
        story.trace_id,
        story.trace_id.upper(),
        story.amzn_trace_header,
        f"Self=1-67891233-abcdef012345678912345678;{story.amzn_trace_header}",
        f"1-{story.trace_id[:8]}-{story.trace_id[8:]}",
        f"X-Amzn-Trace-Id: {story.amzn_trace_header}",
        f"00-{story.trace_id}-53995c3f42cd8ad8-01",
        story.request_id,  # NGINX $request_id: the ALB record joins back through NGINX's trace id
    ]
    answers = []
    for form in forms:
        response = get_trace(server, form)
        assert response.status_code == 200, (form, response.text)
        answers.append(sorted(signature(r) for r in response.json()["records"]))
    assert all(a == expected_signatures(story) for a in answers)


def test_timing_breakdown_matches_what_each_layer_measured(stack) -> None:  # type: ignore[no-untyped-def]
    server, stories = stack
    story = next(s for s in stories if s.status >= 500 and s.app_records)
    timings = get_trace(server, story.amzn_trace_header).json()["timings"]
    # the values each layer wrote (see logharbor.demo.traffic.render): seconds with 3 decimals
    nginx_ms = story.app_ms + 0.4
    alb_target = round(round((nginx_ms + 0.3) / 1000, 3) * 1000, 3)
    nginx_request = round(round(nginx_ms / 1000, 3) * 1000, 3)
    upstream = round(round(story.app_ms / 1000, 3) * 1000, 3)
    assert timings["alb"]["target_processing_ms"] == pytest.approx(alb_target)
    assert timings["alb"]["request_processing_ms"] == 0.0
    assert timings["alb"]["response_processing_ms"] == 0.0
    assert timings["nginx"]["request_time_ms"] == pytest.approx(nginx_request)
    assert timings["nginx"]["upstream_response_time_ms"] == pytest.approx(upstream)
    assert timings["app"]["duration_ms"] == pytest.approx(story.app_ms)
    assert timings["app"]["instance"] == f"checkout-{story.port}"
    gaps = timings["gaps"]
    assert gaps["alb_to_nginx_ms"] == pytest.approx(alb_target - nginx_request, abs=1e-3)
    assert gaps["nginx_overhead_ms"] == pytest.approx(nginx_request - upstream, abs=1e-3)
    assert gaps["nginx_to_app_ms"] == pytest.approx(upstream - story.app_ms, abs=1e-3)


def test_unknown_and_bad_ids_answer_with_the_error_shape(stack) -> None:  # type: ignore[no-untyped-def]
    server, _ = stack
    missing = get_trace(server, "0af7651916cd43dd8448eb211c80319c")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "trace_not_found"
    bad = get_trace(server, "abc\x01def")
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "invalid_trace_id"
    assert get_trace(server, "x" * 600).status_code == 400


def test_time_window_bounds_the_lookup(stack) -> None:  # type: ignore[no-untyped-def]
    server, stories = stack
    story = stories[0]
    after = (story.start_ns + 3600 * 10**9) // 10**9
    assert get_trace(server, story.trace_id, **{"from": str(after)}).status_code == 404
    inside = get_trace(server, story.trace_id, since="1d")
    assert inside.status_code == 200
    assert get_trace(server, story.trace_id, **{"from": "now", "to": "now-1h"}).status_code == 400


def test_a_service_scoped_key_sees_only_its_services_records(stack) -> None:  # type: ignore[no-untyped-def]
    server, stories = stack
    story = with_app_trace(stories, True)[0]
    key = server.create_key("reader", services=["checkout"])
    response = httpx.get(f"{server.url}/api/v1/traces/{story.trace_id}",
                         headers={"authorization": f"Bearer {key}"}, timeout=30)
    assert response.status_code == 200
    assert {r["service"] for r in response.json()["records"]} == {"checkout"}
    assert httpx.get(f"{server.url}/api/v1/traces/{story.trace_id}", timeout=30).status_code == 401


def run_cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LOGHARBOR_API_KEY=server.api_key, COLUMNS="160")
    return subprocess.run([sys.executable, "-m", "logharbor.cli.main", "trace", *args, "--server", server.url],
                          capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)


def test_cli_prints_the_waterfall_and_json(stack) -> None:  # type: ignore[no-untyped-def]
    server, stories = stack
    story = next(s for s in stories if s.status >= 500 and s.app_records)
    shown = run_cli(server, story.amzn_trace_header)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert story.trace_id in out
    for text in ("waterfall", "alb → target", "nginx → upstream", f"app checkout-{story.port}",
                 "NGINX overhead", "POST /api/orders"):
        assert text in out, text
    as_json = run_cli(server, story.request_id, "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    assert len(orjson.loads(as_json.stdout)["records"]) == 2 + len(story.app_records)
    missing = run_cli(server, "0af7651916cd43dd8448eb211c80319c")
    assert missing.returncode == 1
    assert "trace_not_found" in missing.stderr


def test_an_app_that_logs_the_trace_id_as_its_request_id_still_joins(stack) -> None:  # type: ignore[no-untyped-def]
    server, _ = stack
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    before = server.store_rows()
    with server.client() as client:
        body = b"\n".join(orjson.dumps(r) for r in [
            {"source": "alb", "service": "shop-alb", "message": "alb line", "trace_id": f"Root=1-{trace[:8]}-{trace[8:]}",
             "target_processing_ms": 12.0},
            {"source": "app", "service": "api", "message": "app line", "request_id": trace,
             "http": {"duration_ms": 9.5}},
        ])
        assert client.post("/api/v1/logs", content=body).json()["accepted"] == 2
    assert server.wait_rows(before + 2) >= before + 2
    for ident in (trace, f"Root=1-{trace[:8]}-{trace[8:]}"):
        answer = get_trace(server, ident).json()
        assert sorted(r["message"] for r in answer["records"]) == ["alb line", "app line"], ident
        assert answer["timings"]["app"]["duration_ms"] == 9.5


def test_a_root_with_a_wrong_time_is_still_found(stack) -> None:  # type: ignore[no-untyped-def]
    server, _ = stack
    root = "Root=1-00000001-c0ffee00c0ffee00c0ffee00"  # a client-made header: 1970 in its time field
    before = server.store_rows()
    with server.client() as client:
        body = b"\n".join(orjson.dumps(r) for r in [
            {"source": "alb", "service": "shop-alb", "message": "odd alb", "trace_id": root},
            {"source": "nginx", "service": "nginx", "message": "odd nginx", "trace_id": root,
             "request_id": "odd-request-1"},
        ])
        assert client.post("/api/v1/logs", content=body).json()["accepted"] == 2
    assert server.wait_rows(before + 2) >= before + 2
    answer = get_trace(server, root).json()
    assert sorted(r["message"] for r in answer["records"]) == ["odd alb", "odd nginx"]
    assert answer["stats"]["queries"] >= 3  # the hinted window, then the whole table
