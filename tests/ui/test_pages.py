"""Live tail (filter change, level toggles, find box), trace waterfall, service health, alerts and layout
in a real browser."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from urllib.parse import parse_qs, quote, urlparse

import httpx
from tests.ui.conftest import Demo, PageProbe, iso, login, screenshot
from tests.ui.test_search_tools import both_sizes


def tail_record(word: str, n: int = 0) -> dict:
    # dated after the fixture's range, so the search tests' counts never include them
    return {"timestamp": time.time_ns() + 3600 * 10**9, "level": "INFO", "service": "tail-test",
            "message": f"order {n} {word} reached the packing station", "seq": n}


def test_live_tail_streams_highlights_and_pauses(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    word = "w" + uuid.uuid4().hex[:10]
    login(page, demo, f"/ui/tail?q={quote(word)}")
    page.wait_for_selector("#tail-lines[data-subscribed]", state="attached")
    assert page.locator("#tail-status").get_attribute("data-state") == "streaming"
    demo.server.ingest([tail_record("unrelated"), tail_record(word, 1)], wait=False)
    line = page.locator("#tail-lines li.record")
    line.first.wait_for()
    assert line.count() == 1, "the server filters: only the matching record arrives"
    assert word in line.first.inner_text()
    assert line.first.locator("mark.hit").inner_text() == word

    page.click("#pause")
    assert page.locator("#tail-status").get_attribute("data-state") == "paused"
    demo.server.ingest([tail_record(word, 2)], wait=False)
    page.wait_for_function("() => document.querySelector('#tail-status').textContent.includes('1 new record held')")
    assert line.count() == 1, "nothing is drawn while paused"
    page.click("#pause")  # resume
    page.wait_for_function("() => document.querySelectorAll('#tail-lines li.record').length === 2")
    assert "order 2" in line.nth(1).inner_text()
    screenshot(page, "tail")


def test_live_tail_shows_what_was_dropped(probe: PageProbe, demo: Demo) -> None:
    """Paused with more records than the tab holds: every record is either held or counted as dropped."""
    page = probe.page
    word = "d" + uuid.uuid4().hex[:10]
    login(page, demo, f"/ui/tail?q={quote(word)}")
    page.wait_for_selector("#tail-lines[data-subscribed]", state="attached")
    page.click("#pause")
    sent = 10_600
    for start in range(0, sent, 5300):
        demo.server.ingest([tail_record(word, n) for n in range(start, start + 5300)], wait=False)
    notice = page.locator("#dropped")
    notice.wait_for(state="visible")
    page.wait_for_function(
        f"""() => {{
            const held = Number((document.querySelector('#tail-status').textContent.match(/(\\d+) new record/) || [0, 0])[1]);
            return held + Number(document.querySelector('#dropped').dataset.count) === {sent};
        }}""", timeout=60_000)
    dropped = int(notice.get_attribute("data-count"))
    assert dropped >= sent - 10_000
    assert f"Dropped {dropped} record" in notice.inner_text()
    screenshot(page, "tail-dropped")
    page.click("#pause")
    page.wait_for_function("() => document.querySelectorAll('#tail-lines li.record').length === 2000")


def test_live_tail_refuses_a_bad_query_at_its_position(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    login(page, demo, "/ui/tail?q=" + quote("level:ERROR AND status:"))
    box = page.locator("#query-error")
    box.wait_for()
    assert box.get_attribute("data-code") == "query_syntax"
    assert int(box.get_attribute("data-position")) == len("level:ERROR AND status:")
    assert page.locator("#tail-status").get_attribute("data-state") == "stopped"
    page.fill("#query", "level:ERROR")
    page.press("#query", "Enter")
    page.wait_for_selector("#tail-lines[data-subscribed]", state="attached")
    assert box.is_hidden()


def test_trace_page_shows_the_three_layers(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    failed = next(s for s in demo.stories if s.status >= 500 and len(s.app_records) > 1)
    q = f"trace_id:{failed.trace_id} AND source:app"
    from urllib.parse import urlencode

    login(page, demo, "/ui/search?" + urlencode({"q": q, "from": iso(demo.start_ms), "to": iso(demo.end_ms)}))
    row = page.locator("#results li.record").first
    row.locator(".summary").click()
    row.locator("tr[data-field=trace_id] a.trace-link").click()
    page.wait_for_selector("#waterfall")
    assert urlparse(page.url).path == f"/ui/trace/{failed.trace_id}"
    layers = page.locator("#trace-layers [data-layer]").evaluate_all("els => els.map(e => e.dataset.layer)")
    assert sorted(layers) == ["alb", "app", "nginx"]
    bars = page.locator("#waterfall .wf-row[data-layer]").evaluate_all("els => els.map(e => e.dataset.layer)")
    assert {"alb", "nginx", "app"} <= set(bars)
    answer = httpx.get(f"{demo.server.url}/api/v1/traces/{failed.trace_id}", headers=demo.server.headers).json()
    assert page.locator("#trace-records li.record").count() == len(answer["records"])
    assert page.locator("#waterfall .wf-row[data-layer]").count() == len(answer["waterfall"]["bars"])
    app_ms = answer["timings"]["app"]["duration_ms"]
    assert f"{app_ms:.1f} ms" in page.locator("#breakdown tr[data-layer=app]").inner_text()
    widths = page.locator("#waterfall .bar").evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")
    assert all(w > 0 for w in widths)
    statuses = page.locator("#trace-records .http").all_inner_texts()
    assert any(str(failed.status) in s for s in statuses)
    # a bar picks its record, and so does the dot where a record was written
    page.locator("#waterfall .wf-row[data-layer=nginx]").first.click()
    assert page.locator("#trace-records li.picked").get_attribute("data-layer") == "nginx"
    assert page.locator("#waterfall .dot").count() == len(answer["records"])
    page.locator("#waterfall .dot.layer-alb").first.click()
    assert page.locator("#trace-records li.picked").get_attribute("data-layer") == "alb"
    screenshot(page, "trace", full_page=True)


def test_services_page_numbers_and_links(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    from urllib.parse import urlencode

    login(page, demo, "/ui/services?" + urlencode({"from": iso(demo.start_ms), "to": iso(demo.end_ms)}))
    table = page.locator("#health-table")
    table.wait_for()
    services = table.locator("tbody tr").evaluate_all("trs => trs.map(t => t.dataset.service)")
    assert {"checkout", "nginx", "shop-alb"} <= set(services)
    stats = demo.server.query("status:>0 | stats count() as n by service",
                              **{"from": iso(demo.start_ms), "to": iso(demo.end_ms)})
    expected = {r["service"]: r["n"] for r in stats["rows"]}
    for service in ("checkout", "nginx", "shop-alb"):
        cells = table.locator(f"tr[data-service={service}] td").all_inner_texts()
        assert int(cells[2]) == expected[service] == len(demo.stories)
        errors = sum(1 for s in demo.stories if s.status >= 500)
        assert int(cells[4]) == errors
    page.wait_for_function("() => document.querySelectorAll('.service-card canvas').length >= 9")
    screenshot(page, "services", full_page=True)
    # a click on a chart opens that service's records of that interval
    chart = page.locator(".service-card[data-service=checkout] .u-over").nth(0)
    box = chart.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function("() => location.pathname === '/ui/search'")
    params = parse_qs(urlparse(page.url).query)
    assert params["q"] == ["service:checkout AND status:>0"]
    picked = [datetime.fromisoformat(params[k][0].replace("Z", "+00:00")).timestamp() for k in ("from", "to")]
    assert demo.start_ms / 1000 - 3600 < picked[0] < picked[1] <= picked[0] + 3600
    page.go_back()
    table.wait_for()
    # the error count links to the search behind it
    table.locator("tr[data-service=checkout] td").nth(4).locator("a").click()
    page.wait_for_selector("#results li.record")
    q = parse_qs(urlparse(page.url).query)["q"][0]
    assert "service:checkout" in q and "status:>=500" in q
    page.wait_for_function("() => !document.querySelector('#result-summary').textContent.startsWith('Searching')")
    assert set(page.locator("#results .level").all_inner_texts()) == {"ERROR"}


def test_alerts_page_is_hidden_without_the_alerting_api(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    page.route("**/api/v1/alerts/rules", lambda route: route.fulfill(
        status=404, content_type="application/json", body='{"detail":"Not Found"}'))
    login(page, demo)
    page.wait_for_selector("#nav a[data-page=search]")
    assert page.locator("#nav a[data-page=alerts]").count() == 0
    page.goto(demo.server.url + "/ui/alerts")
    page.wait_for_function("() => location.pathname === '/ui/search'")


def test_alerts_page_lists_and_edits_rules(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    name = f"ui-{uuid.uuid4().hex[:8]}"
    login(page, demo)
    page.click("#nav a[data-page=alerts]")
    page.wait_for_selector("#alerts")
    page.click("#new-rule")
    page.fill("#rule-name", name)
    page.fill("#rule-query", "service:checkout AND level:ERROR")
    # a condition the server refuses: its message beside the condition's fields, nothing stored
    page.select_option("#rule-kind", "ratio")
    page.fill("#rule-threshold", "3")
    page.click("#rule-save")
    page.wait_for_function("""() => [...document.querySelectorAll('.field-error[data-error-for=condition]')]
        .some(e => !e.hidden && e.textContent.includes('ratio'))""")
    page.select_option("#rule-kind", "count")
    page.click("#rule-save")
    row = page.locator(f"#rules tr[data-rule='{name}']")
    row.wait_for()
    assert "count > 3" in row.inner_text() and "service:checkout AND level:ERROR" in row.inner_text()
    stored = httpx.get(f"{demo.server.url}/api/v1/alerts/rules/{quote(name)}", headers=demo.server.headers).json()
    assert stored["spec"]["query"] == "service:checkout AND level:ERROR" and stored["enabled"] is True
    screenshot(page, "alerts")

    row.locator("[data-action=toggle]").click()
    page.wait_for_selector(f"#rules tr[data-rule='{name}'][data-state=disabled]")
    stored = httpx.get(f"{demo.server.url}/api/v1/alerts/rules/{quote(name)}", headers=demo.server.headers).json()
    assert stored["enabled"] is False

    page.once("dialog", lambda dialog: dialog.accept())
    row.locator("[data-action=delete]").click()
    page.wait_for_function(f"() => !document.querySelector(`#rules tr[data-rule='{name}']`)")
    gone = httpx.get(f"{demo.server.url}/api/v1/alerts/rules/{quote(name)}", headers=demo.server.headers)
    assert gone.status_code == 404


def test_alerts_page_shows_firing_groups_with_their_records(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    name = f"ui-firing-{uuid.uuid4().hex[:6]}"
    rule = {"name": name, "query": "service:checkout AND level:ERROR", "condition": "count > 0",
            "window": "2h", "interval": "10s", "group_by": ["instance"]}
    created = httpx.post(demo.server.url + "/api/v1/alerts/rules", json=rule, headers=demo.server.headers)
    assert created.status_code == 201, created.text
    try:
        login(page, demo, "/ui/alerts")
        firing = page.locator(f"#active tr[data-rule='{name}'][data-state=firing]")
        deadline = time.monotonic() + 45
        while firing.count() == 0 and time.monotonic() < deadline:
            page.wait_for_timeout(2000)
            page.reload()
            page.wait_for_selector("#active-alerts h2")
        instances = {r["instance"] for r in demo.server.query(
            "service:checkout AND level:ERROR | stats count() by instance", **{"from": "now-2h"})["rows"]}
        assert firing.count() == len(instances) >= 1
        assert page.locator(f"#rules tr[data-rule='{name}']").get_attribute("data-state") == "firing"
        screenshot(page, "alerts-firing")
        firing.first.locator("a").click()
        page.wait_for_selector("#results li.record")
        q = parse_qs(urlparse(page.url).query)["q"][0]
        assert q.startswith("service:checkout AND level:ERROR AND instance:")
        page.wait_for_function("() => !document.querySelector('#result-summary').textContent.startsWith('Searching')")
        assert set(page.locator("#results .svc").all_inner_texts()) == {"checkout"}
    finally:
        httpx.delete(f"{demo.server.url}/api/v1/alerts/rules/{quote(name)}", headers=demo.server.headers)


def test_layout_fits_laptop_and_large_screens(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    from urllib.parse import urlencode

    login(page, demo, "/ui/search?" + urlencode({"q": "level:ERROR", "from": iso(demo.start_ms), "to": iso(demo.end_ms)}))
    for width, height in ((1280, 800), (1920, 1080), (900, 800)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        page.wait_for_selector("#results li.record")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"horizontal scrolling at {width}px"
        canvas = page.locator("#histogram canvas").first.bounding_box()
        assert canvas is not None and canvas["width"] > width * 0.6
        screenshot(page, f"search-{width}")


def leveled_record(word: str, level: str, n: int) -> dict:  # type: ignore[type-arg]
    return {"timestamp": time.time_ns() + 3600 * 10**9, "level": level, "service": "tail-test",
            "message": f"{word} line {n} at station {n % 3}", "seq": n}


def test_live_tail_new_filter_levels_and_find(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    first, second = ("a" + uuid.uuid4().hex[:10], "b" + uuid.uuid4().hex[:10])
    login(page, demo, f"/ui/tail?q={quote(first)}")
    page.wait_for_selector("#tail-lines[data-subscribed]", state="attached")
    demo.server.ingest([leveled_record(first, "INFO", n) for n in range(3)], wait=False)
    page.wait_for_function("() => document.querySelectorAll('#tail-lines li.record').length === 3")
    page.wait_for_function("() => document.querySelector('#tail-status').textContent.includes('3 received')")
    # a new filter: the previous filter's lines and counter are gone at once
    page.fill("#query", second)
    page.press("#query", "Enter")
    page.wait_for_selector("#tail-lines[data-subscribed]", state="attached")
    assert page.locator("#tail-lines li").count() == 0
    assert "0 received" in page.inner_text("#tail-status") or "connecting" in page.inner_text("#tail-status")
    lines = [leveled_record(second, level, n) for n, level in enumerate(["INFO", "ERROR", "WARN", "ERROR", "INFO", "DEBUG"])]
    demo.server.ingest(lines, wait=False)
    page.wait_for_function("() => document.querySelectorAll('#tail-lines li.record').length === 6")
    assert first not in page.inner_text("#tail-lines")
    visible = "() => [...document.querySelectorAll('#tail-lines li.record')].filter(e => e.offsetParent !== null).length"
    # level toggles hide and show what the screen holds
    page.click(".level-toggle[data-level=INFO]")
    page.click(".level-toggle[data-level=DEBUG]")
    assert page.evaluate(visible) == 3
    assert set(page.locator("#tail-lines li.record:not(.filtered-out) .level").all_inner_texts()) == {"ERROR", "WARN"}
    assert page.locator(".level-toggle[data-level=ERROR]").inner_text() == "ERROR 2"
    assert page.inner_text("#tail-shown") == "3 of 6 lines shown"
    # and a find box narrows them further; the stream itself is untouched
    page.fill("#tail-find", "station 0")
    assert page.evaluate(visible) == 1
    both_sizes(page, "tail-filters")
    page.fill("#tail-find", "")
    page.click(".level-toggle[data-level=INFO]")
    page.click(".level-toggle[data-level=DEBUG]")
    assert page.evaluate(visible) == 6
