"""Phones (issue #26 item 4), at 390×844 in chromium against a real server with the demo stack's
records: no page scrolls sideways (an opened record wraps, the Services table scrolls inside its
card), and the trace's time axis keeps its labels apart. Screenshots under test-artifacts/ui/."""

from __future__ import annotations

from itertools import pairwise
from urllib.parse import quote, urlencode

from tests.ui.conftest import Demo, PageProbe, assert_tables_scroll_in_a_box, iso, login, screenshot
from tests.ui.test_search_tools import search_path, settled

PHONE = {"width": 390, "height": 844}

# what sticks out of the page's right edge and is not inside something that scrolls or clips it
# (named in the failure, so a regression says which element did it)
WIDER_THAN_THE_SCREEN = """() => {
    const out = [];
    for (const e of document.querySelectorAll('main *, header *')) {
        const r = e.getBoundingClientRect();
        if (r.width === 0 || r.right <= window.innerWidth + 0.5) continue;
        let clipped = false;
        for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {
            const o = getComputedStyle(p).overflowX;
            if (o !== 'visible') { clipped = true; break; }
        }
        if (!clipped) out.push(`${e.tagName.toLowerCase()}#${e.id}.${e.className}: right ${Math.round(r.right)}`);
    }
    return out.slice(0, 8);
}"""


def assert_no_sideways_scroll(page, what: str) -> None:  # type: ignore[no-untyped-def]
    sizes = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert sizes[0] <= sizes[1], (what, sizes, page.evaluate(WIDER_THAN_THE_SCREEN))
    assert_tables_scroll_in_a_box(page, what)


def test_search_with_an_opened_record_fits_a_phone(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    page.set_viewport_size(PHONE)
    # the longest message and user agent the demo has: an opened record must wrap them
    login(page, demo, search_path(demo, "http.user_agent:*"))
    page.wait_for_selector("#results li.record")
    settled(page)
    assert_no_sideways_scroll(page, "search")
    row = page.locator("#results li.record").first
    row.locator(".summary").click()
    page.wait_for_selector("#results li.record.open table.fields")
    assert_no_sideways_scroll(page, "search, a record opened")
    # the opened record itself does not scroll sideways either: its values wrap
    details = row.locator(".details")
    assert details.evaluate("e => e.scrollWidth <= e.clientWidth"), details.evaluate("e => [e.scrollWidth, e.clientWidth]")
    row.locator(".record-bar .tab", has_text="JSON").click()
    assert_no_sideways_scroll(page, "search, a record opened as JSON")
    assert details.evaluate("e => e.scrollWidth <= e.clientWidth")
    row.locator(".record-bar .tab", has_text="Table").click()
    row.locator("table.fields").scroll_into_view_if_needed()
    screenshot(page, "phone-search-record")


def test_services_table_scrolls_inside_its_card(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    page.set_viewport_size(PHONE)
    login(page, demo, "/ui/services?" + urlencode({"from": iso(demo.start_ms), "to": iso(demo.end_ms)}))
    table = page.locator("#health-table")
    table.wait_for()
    page.wait_for_function("() => document.querySelectorAll('.service-card canvas').length >= 9")
    assert_no_sideways_scroll(page, "services")
    box = table.evaluate("t => { const b = t.parentElement; return [b.className, b.scrollWidth, b.clientWidth]; }")
    # the table is wider than a phone: its box scrolls, and every column is reachable in it
    assert "table-box" in box[0] and box[1] > box[2], box
    last = table.locator("thead th").last
    table.evaluate("t => { t.parentElement.scrollLeft = t.parentElement.scrollWidth; }")
    card = table.evaluate("t => t.closest('.card').getBoundingClientRect().right")
    assert last.bounding_box()["x"] + last.bounding_box()["width"] <= card + 0.5
    screenshot(page, "phone-services")


def test_trace_fits_a_phone_and_its_axis_labels_stay_apart(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    page.set_viewport_size(PHONE)
    failed = next(s for s in demo.stories if s.status >= 500 and len(s.app_records) > 1)
    login(page, demo, f"/ui/trace/{failed.trace_id}")
    page.wait_for_selector("#waterfall .wf-row[data-layer]")
    assert_no_sideways_scroll(page, "trace")
    for width in (390, 760, 1440):
        page.set_viewport_size({"width": width, "height": 844})
        page.wait_for_function("w => window.innerWidth === w", arg=width)
        ticks = page.locator("#waterfall .wf-axis .tick").evaluate_all(
            "els => els.filter(e => e.offsetParent).map(e => { const r = e.getBoundingClientRect(); "
            "return [e.textContent, r.left, r.right]; })")
        assert len(ticks) >= 3, ticks
        track = page.locator("#waterfall .wf-axis .wf-track").bounding_box()
        for (_, _, right), (text, left, _) in pairwise(ticks):
            assert left >= right + 4, (width, text, ticks)
        assert ticks[0][1] >= track["x"] - 0.5 and ticks[-1][2] <= track["x"] + track["width"] + 0.5, (width, ticks)
    page.set_viewport_size(PHONE)
    screenshot(page, "phone-trace")


def test_dashboards_fit_a_phone(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    page.set_viewport_size(PHONE)
    login(page, demo, "/ui/dashboards")
    page.locator("#dashboard-list").wait_for()
    assert_no_sideways_scroll(page, "dashboards")
    span = urlencode({"from": iso(demo.start_ms), "to": iso(demo.end_ms)})
    page.goto(f"{demo.server.url}/ui/dashboards/{quote('Reference stack')}?{span}")
    page.wait_for_function("() => document.querySelectorAll('#panels .panel').length > 0 && "
                           "!document.querySelector('#panels .panel[data-state=loading]')")
    page.wait_for_selector("#panels canvas")
    assert_no_sideways_scroll(page, "a dashboard")
    screenshot(page, "phone-dashboard", full_page=True)
