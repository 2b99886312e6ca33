"""Clock offsets in the browser (issue 28 part 2): the Services page's Clocks card shows each host's
and app instance's offset, and a trace shows corrected times by default with the raw times one
click away. The server holds generated requests with one app instance 60 ms ahead.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlencode, urlparse

import pytest
from tests.conftest import ROOT, ServerProcess
from tests.ui.conftest import Demo, PageProbe, iso, login

from logharbor.demo.lab import Shipper, collect
from logharbor.demo.traffic import TrafficGenerator

SKEW_MS = 60.0
SHOTS = ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """This module's own server: 1000 requests of the last 8 minutes, checkout-9093 skewed."""
    server = ServerProcess(tmp_path_factory.mktemp("ui-clock") / "data", "--batch-max-age", "0.2").start()
    start_ns = time.time_ns() - 480 * 10**9
    gen = TrafficGenerator(seed=21, rate_5xx=0.2, clock_offsets_ms={"checkout-9093": SKEW_MS})
    stories = list(gen.stories(1000, start_ns=start_ns, spacing_ns=470 * 10**9 // 1000))
    shipper = Shipper(server.url, api_key=server.api_key)
    total = shipper.ship(collect(stories))
    shipper.close()
    assert server.wait_rows(total) == total
    with server.client() as client:
        assert client.post("/api/v1/clock/estimate").json()["clocks"] == 4
    try:
        yield Demo(server, stories, total, start_ns // 10**6, time.time_ns() // 10**6 + 60_000)
    finally:
        server.stop()


def shot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_services_page_shows_each_clock_offset(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    login(page, demo, "/ui/services?" + urlencode({"from": iso(demo.start_ms), "to": iso(demo.end_ms)}))
    table = page.locator("#clocks-table")
    table.wait_for()
    rows = table.locator("tbody tr").evaluate_all("trs => trs.map(t => t.dataset.clock)")
    assert rows == ["shop-alb", "ip-10-0-1-20", "checkout-9092", "checkout-9093"]
    cells = table.locator("tr[data-clock=checkout-9093] td").all_inner_texts()
    assert [c.lower() for c in cells[:4]] == ["checkout-9093", "app", "ip-10-0-1-5", "checkout-9093"]
    value, _, error = cells[4].removesuffix(" ms").partition(" ± ")
    assert value.startswith("+") and abs(float(value[1:]) - SKEW_MS) <= float(error) + 0.05
    assert cells[6] == "skewed"
    assert table.locator("tr[data-clock=shop-alb] td").all_inner_texts()[6] == "reference"
    assert table.locator("tr[data-clock=checkout-9092] td").all_inner_texts()[6] == "in sync"
    page.locator("#clocks").scroll_into_view_if_needed()
    shot(page, "services-clocks")


def test_a_trace_is_corrected_by_default_and_raw_one_click_away(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    story = next(s for s in demo.stories if s.port == 9093 and s.status >= 500 and len(s.app_records) > 1)
    login(page, demo, f"/ui/trace/{story.trace_id}")
    page.locator("#waterfall").wait_for()
    note = page.locator("#clock-note")
    assert "checkout-9093" in note.inner_text() and "shop-alb" in note.inner_text()
    assert not page.locator("#clock-raw").is_checked()

    def app_dots_outside() -> list[bool]:
        return page.locator(".wf-events .dot").evaluate_all(
            "ds => ds.filter(d => d.classList.contains('layer-app')).map(d => d.classList.contains('outside'))")

    def app_offsets() -> list[float]:  # each app record's "+1420.3 ms" in the records list
        texts = page.locator("#trace-records li[data-layer=app] .offset").all_inner_texts()
        return [float(t.removesuffix(" ms")) for t in texts]

    adjusted = app_offsets()
    shot(page, "trace-adjusted")
    page.locator("#clock-raw").check()
    page.wait_for_function("() => location.search === '?clock=raw'")
    page.wait_for_function("() => (document.querySelector('#clock-note')?.textContent || '').includes('as each host')")
    assert page.locator("#clock-raw").is_checked()
    assert urlparse(page.url).path == f"/ui/trace/{story.trace_id}"
    raw = app_offsets()
    # raw: the app's records are placed 60 ms later, by its own clock, past the end of the request
    assert len(raw) == len(adjusted) > 1
    assert all(abs(r - a - SKEW_MS) <= 3.0 for r, a in zip(raw, adjusted, strict=True)), (raw, adjusted)
    assert any(app_dots_outside())
    shot(page, "trace-raw")
    page.locator("#clock-raw").uncheck()
    page.wait_for_function("() => location.search === ''")
    page.wait_for_function("() => (document.querySelector('#clock-note')?.textContent || '').includes('applied')")
