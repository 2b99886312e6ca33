"""Dashboards in a real browser: the shipped "Reference stack" dashboard drawn from the demo
stack's records (every panel checked against the query API), clicks into the search behind a
panel, the editor with the server's validation messages under the fields they are about, and
export/import as JSON."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode, urlparse

import httpx
from tests.ui.conftest import Demo, PageProbe, iso, login, screenshot

REFERENCE = "Reference stack"


def dashboard_path(demo: Demo, name: str) -> str:
    return f"/ui/dashboards/{quote(name)}?" + urlencode({"from": iso(demo.start_ms), "to": iso(demo.end_ms)})


def api_rows(demo: Demo, q: str) -> list[dict]:
    return demo.server.query(q, **{"from": iso(demo.start_ms), "to": iso(demo.end_ms)})["rows"]


def wait_drawn(page, count: int) -> None:  # type: ignore[no-untyped-def]
    """Every panel answered (drawn, empty or refused), none still loading."""
    page.wait_for_function(
        "n => document.querySelectorAll('#panels .panel').length === n && "
        "!document.querySelector('#panels .panel[data-state=loading]')", arg=count)


def search_query(page) -> str:  # type: ignore[no-untyped-def]
    page.wait_for_selector("#result-summary")
    page.wait_for_function("() => !document.querySelector('#result-summary').textContent.startsWith('Searching')")
    return parse_qs(urlparse(page.url).query)["q"][0]


def test_reference_stack_dashboard_renders_the_demo_data(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    spec = httpx.get(f"{demo.server.url}/api/v1/dashboards/{quote(REFERENCE)}", headers=demo.server.headers).json()
    panels = {p["title"]: p for p in spec["panels"]}
    login(page, demo)
    page.click("#nav a[data-page=dashboards]")
    row = page.locator(f"#dashboard-list tr[data-dashboard='{REFERENCE}']")
    row.wait_for()
    assert row.locator("td").nth(2).inner_text() == str(len(spec["panels"]))
    screenshot(page, "dashboards")

    page.goto(demo.server.url + dashboard_path(demo, REFERENCE))
    wait_drawn(page, len(spec["panels"]))
    assert page.locator("#panels .panel[data-state=ready]").count() == len(spec["panels"]), \
        page.locator("#panels .panel:not([data-state=ready])").all_inner_texts()

    def panel(title: str):  # type: ignore[no-untyped-def]
        return page.locator("#panels .panel").filter(has=page.locator(".panel-title", has_text=title)).first

    # timechart: one line per layer, drawn by uPlot
    layers = {r["source"] for r in api_rows(demo, "_exists_:status | stats count() by source")}
    chart = panel("Requests by layer")
    assert chart.locator("canvas").count() == 1
    assert int(chart.get_attribute("data-series")) == len(layers) == 3
    assert set(chart.locator(".u-legend .u-series .u-label").all_inner_texts()) >= layers
    # single values: the same number the query API gives
    errors = api_rows(demo, panels["5xx at the ALB"]["query"])[0]["errors"]
    assert errors > 0
    assert panel("5xx at the ALB").locator(".single-value").get_attribute("data-value") == str(errors)
    assert "requests" in panel("5xx at the ALB").inner_text()
    p99 = api_rows(demo, panels["p99 latency, checkout"]["query"])[0]["p99"]
    assert float(panel("p99 latency, checkout").locator(".single-value").get_attribute("data-value")) == p99
    # tables: a row per group
    latency = api_rows(demo, panels["Latency by layer"]["query"])
    assert panel("Latency by layer").locator("tbody tr").count() == len(latency) >= 3
    slowest = api_rows(demo, panels["Slowest paths"]["query"])
    shown = panel("Slowest paths").locator("tbody tr td:first-child").all_inner_texts()
    assert shown == [r["path"] for r in slowest]
    # top-N: values and counts in order
    top = api_rows(demo, panels["Top error codes"]["query"])
    items = panel("Top error codes").locator(".top-list li")
    assert items.evaluate_all("lis => lis.map(li => li.dataset.value)") == [r["error_code"] for r in top]
    assert [int(c.replace(",", "")) for c in items.locator(".top-count").all_inner_texts()] == [r["count"] for r in top]
    # logs: the newest records of the panel's filter
    n_errors = api_rows(demo, "level:(ERROR OR FATAL) | stats count() as n")[0]["n"]
    logs = panel("Errors").locator("li.record")
    assert logs.count() == min(50, n_errors)
    assert set(logs.locator(".level").all_inner_texts()) <= {"ERROR", "FATAL"}

    for width, height in ((1280, 800), (1920, 1080), (900, 800)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(200)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"horizontal scrolling at {width}px"
        box = chart.locator("canvas").bounding_box()
        assert box is not None and box["width"] > width * 0.6
        screenshot(page, f"dashboard-{width}", full_page=True)
    page.set_viewport_size({"width": 1400, "height": 900})

    # a click on a panel opens the search behind it
    panel("5xx at the ALB").locator(".single-value").click()
    assert search_query(page) == "source:alb AND status:>=500"
    page.wait_for_function("n => document.querySelector('#result-summary').textContent.includes(n)",
                           arg=f"of {errors:,} records")
    page.go_back()
    wait_drawn(page, len(spec["panels"]))
    code = top[1]["error_code"]
    panel("Top error codes").locator(f".top-list li[data-value='{code}'] a").click()
    assert search_query(page) == f"level:ERROR AND error_code:{code}"
    assert page.locator("#results li.record").count() == top[1]["count"]
    page.go_back()
    wait_drawn(page, len(spec["panels"]))

    def link_query(locator) -> str:  # type: ignore[no-untyped-def]
        return parse_qs(urlparse(locator.get_attribute("href")).query)["q"][0]

    assert link_query(panel("Errors").locator(".panel-title")) == "level:(ERROR OR FATAL)"
    assert link_query(panel("Slowest paths").locator(".panel-title")) == "source:nginx"
    checkout = panel("Latency by layer").locator("tbody tr").filter(has_text="checkout").first
    assert link_query(checkout.locator("a").first) == "_exists_:duration_ms AND service:checkout AND source:app"
    # a value in a logs record narrows the panel's records to it
    service = logs.first.locator(".svc").inner_text()
    logs.first.locator(".summary").click()
    logs.first.locator("tr[data-field=service] button.value").click()
    assert search_query(page) == f"(level:(ERROR OR FATAL)) AND service:{service}"
    page.go_back()
    wait_drawn(page, len(spec["panels"]))
    box = panel("Requests by layer").locator(".u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    assert search_query(page) == "_exists_:status"
    params = parse_qs(urlparse(page.url).query)
    span_ms = (_ms(params["to"][0]) - _ms(params["from"][0]))
    assert span_ms == 60_000, "one bucket of the chart's span=1m"
    assert demo.start_ms - 60_000 <= _ms(params["from"][0]) <= demo.end_ms


def _ms(text: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def test_create_edit_and_delete_with_validation_under_each_field(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    name = "ui checkout board"
    login(page, demo, "/ui/dashboards")
    page.click("#new-dashboard")
    page.fill("#dash-name", name)
    page.fill("#dash-range", "2h")
    first = page.locator("#panel-editors fieldset").nth(0)
    first.locator("[name=title]").fill("Checkout by level")
    first.locator("[name=query]").fill("service:checkout | timechart span=5m count() by level")
    page.click("#add-panel")
    second = page.locator("#panel-editors fieldset").nth(1)
    second.locator("[name=type]").select_option("single")
    assert second.locator("[name=query]").input_value() == "level:ERROR | stats count() as errors"
    second.locator("[name=query]").fill("service:checkout AND status:>= | stats count() as errors")
    page.click("#add-panel")
    third = page.locator("#panel-editors fieldset").nth(2)
    third.locator("[name=title]").fill("Checkout errors")
    third.locator("[name=type]").select_option("timechart")
    third.locator("[name=query]").fill("service:checkout AND level:ERROR")
    page.click("#dash-save")

    # the server's 400 names each panel's field; each message sits under its own field
    page.wait_for_selector("#panel-editors fieldset[data-index='1'] [data-error-for=title]:not([hidden])")
    assert second.locator("[name=title]").evaluate("el => el.classList.contains('invalid')")
    assert third.locator("[data-error-for=query]").is_visible()
    assert "timechart" in third.locator("[data-error-for=query]").inner_text()
    assert first.locator(".field-error:not([hidden])").count() == 0
    assert page.locator("#dash-error").inner_text() == ""
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "dashboard-editor-errors", full_page=True)

    second.locator("[name=title]").fill("Checkout 5xx")
    third.locator("[name=type]").select_option("logs")
    page.click("#dash-save")
    # the title is fixed: now the query is compiled, and its syntax error is under the query
    error = second.locator("[data-error-for=query]")
    error.wait_for(state="visible")
    assert "expected a value" in error.inner_text()
    assert second.locator("[data-error-for=title]").is_hidden()
    assert third.locator(".field-error:not([hidden])").count() == 0
    position = int(error.inner_text().rsplit(" at ", 1)[1])
    selected = second.locator("[name=query]").evaluate("el => [document.activeElement === el, el.selectionStart]")
    assert selected == [True, position]

    second.locator("[name=query]").fill("service:checkout AND status:>=500 | stats count() as errors")
    second.locator("[name=unit]").fill("requests")
    page.click("#dash-save")
    page.wait_for_function("n => location.pathname === '/ui/dashboards/' + encodeURIComponent(n)", arg=name)
    wait_drawn(page, 3)
    stored = httpx.get(f"{demo.server.url}/api/v1/dashboards/{quote(name)}", headers=demo.server.headers).json()
    assert stored["time_range"] == "2h"
    assert [(p["title"], p["type"]) for p in stored["panels"]] == [
        ("Checkout by level", "timechart"), ("Checkout 5xx", "single"), ("Checkout errors", "logs")]
    assert stored["panels"][1]["unit"] == "requests"
    assert parse_qs(urlparse(page.url).query)["from"] == ["now-2h"], "the dashboard's own range by default"
    # the search page's time picker: over 30 days a 5m span would be 8,640 buckets; the chart says what it drew
    page.click("#time-button")
    page.click(".tp-presets [data-from='now-30d']")
    page.wait_for_function("() => new URL(location.href).searchParams.get('from') === 'now-30d'")
    wait_drawn(page, 3)
    assert page.locator("#panels .panel[data-type=timechart] .panel-note").inner_text() == "span 2h for this range."
    assert page.locator("#panels .panel[data-type=timechart] canvas").count() == 1

    # a name that exists is refused under the name; a panel moves and another goes
    page.click("#edit-dashboard")
    page.fill("#dash-name", REFERENCE)
    page.click("#dash-save")
    page.wait_for_selector("[data-error-for=name]:not([hidden])")
    assert "exists" in page.inner_text("[data-error-for=name]")
    page.fill("#dash-name", name + " v2")
    page.locator("#panel-editors fieldset[data-index='2'] [data-action=up]").click()
    page.locator("#panel-editors fieldset[data-index='0'] [data-action=remove]").click()
    page.click("#dash-save")
    page.wait_for_function("n => location.pathname === '/ui/dashboards/' + encodeURIComponent(n)", arg=name + " v2")
    wait_drawn(page, 2)
    assert page.locator("#panels .panel .panel-title").all_inner_texts() == ["Checkout errors", "Checkout 5xx"]
    assert httpx.get(f"{demo.server.url}/api/v1/dashboards/{quote(name)}",
                     headers=demo.server.headers).status_code == 404, "the old name is gone after a rename"

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#delete-dashboard")
    page.wait_for_function("() => location.pathname === '/ui/dashboards'")
    page.wait_for_selector(f"#dashboard-list tr[data-dashboard='{REFERENCE}']")
    assert page.locator(f"#dashboard-list tr[data-dashboard='{name} v2']").count() == 0
    assert httpx.get(f"{demo.server.url}/api/v1/dashboards/{quote(name + ' v2')}",
                     headers=demo.server.headers).status_code == 404


def test_export_and_import_as_json(probe: PageProbe, demo: Demo, tmp_path: Path) -> None:
    page = probe.page
    copy = "ui imported stack"
    login(page, demo, dashboard_path(demo, REFERENCE))
    wait_drawn(page, 8)
    with page.expect_download() as info:
        page.click("#export-dashboard")
    download = info.value
    assert download.suggested_filename == "reference-stack.dashboard.json"
    doc = json.loads(open(download.path()).read())
    exported = httpx.get(f"{demo.server.url}/api/v1/dashboards/{quote(REFERENCE)}/export",
                         headers=demo.server.headers).json()
    assert doc == exported and doc["format"] == "logharbor.dashboard/v1"

    # the same file under another name, imported from a file
    doc["dashboard"]["name"] = copy
    path = tmp_path / "copy.dashboard.json"
    path.write_text(json.dumps(doc))
    page.goto(demo.server.url + "/ui/dashboards")
    page.click("#import-dashboard")
    page.fill("#import-json", "{not json")
    page.click("#import-submit")
    assert "Not valid JSON" in page.inner_text("#import-error")
    page.set_input_files("#import-file", str(path))
    page.wait_for_function("() => document.querySelector('#import-json').value.includes('logharbor.dashboard/v1')")
    page.click("#import-submit")
    page.wait_for_function("n => location.pathname === '/ui/dashboards/' + encodeURIComponent(n)", arg=copy)
    wait_drawn(page, 8)
    assert page.locator("#panels .panel[data-state=ready]").count() == 8

    # again: refused (it exists) until "replace" is ticked; a broken panel is refused with its path
    doc["dashboard"]["description"] = "replaced"
    page.goto(demo.server.url + "/ui/dashboards")
    page.click("#import-dashboard")
    page.fill("#import-json", json.dumps(doc))
    page.click("#import-submit")
    page.wait_for_selector("#import-error:text('exists')")
    screenshot(page, "dashboard-import")
    broken = json.loads(json.dumps(doc))
    broken["dashboard"]["panels"][6]["query"] = "level:ERROR | stats count()"
    page.fill("#import-json", json.dumps(broken))
    page.check("#import-overwrite")
    page.click("#import-submit")
    page.wait_for_selector("#import-error:text('panels.6')")
    assert "top" in page.inner_text("#import-error")
    page.fill("#import-json", json.dumps(doc))
    page.click("#import-submit")
    page.wait_for_function("n => location.pathname === '/ui/dashboards/' + encodeURIComponent(n)", arg=copy)
    page.wait_for_selector("#dashboard-description:text('replaced')")
    httpx.delete(f"{demo.server.url}/api/v1/dashboards/{quote(copy)}", headers=demo.server.headers)


def test_relative_range_reloads_on_the_refresh_period(probe: PageProbe, demo: Demo) -> None:
    """The page's clock is Playwright's: a minute passes without the test waiting for it."""
    page = probe.page
    service = "refresh-" + uuid.uuid4().hex[:8]
    name = f"ui {service}"
    board = {"name": name, "time_range": "2h", "refresh": "1m", "panels": [
        {"title": "Records", "type": "single", "query": f"service:{service} | stats count() as n"},
        {"title": "Lines", "type": "logs", "query": f"service:{service}"}]}
    assert httpx.post(demo.server.url + "/api/v1/dashboards", json=board, headers=demo.server.headers).status_code == 201
    try:
        demo.server.ingest([{"timestamp": time.time_ns(), "level": "INFO", "service": service, "message": "one"}], wait=False)
        wait_count(demo, service, 1)
        page.clock.install()
        login(page, demo, f"/ui/dashboards/{quote(name)}")
        value = page.locator("#panels .panel .single-value")
        page.wait_for_function("() => document.querySelector('#panels .single-value')?.dataset.value === '1'")
        assert parse_qs(urlparse(page.url).query)["from"] == ["now-2h"]
        assert page.locator(".auto-refresh").is_visible() and page.is_checked("#auto-refresh")
        demo.server.ingest([{"timestamp": time.time_ns(), "level": "INFO", "service": service, "message": "two"}], wait=False)
        wait_count(demo, service, 2)
        assert value.get_attribute("data-value") == "1", "nothing reloads before the period"
        # a record opened to read holds the refresh back (the reload would fold it)
        page.click("#panels .panel[data-type=logs] li.record .summary")
        page.clock.fast_forward("01:01")
        assert page.locator("#panels .panel[data-state=loading]").count() == 0
        assert page.locator("#panels .panel[data-type=logs] li.record.open").count() == 1
        page.click("#panels .panel[data-type=logs] li.record .summary")
        page.clock.fast_forward("01:01")
        page.wait_for_function("() => document.querySelector('#panels .single-value')?.dataset.value === '2'")
    finally:
        httpx.delete(f"{demo.server.url}/api/v1/dashboards/{quote(name)}", headers=demo.server.headers)


def test_a_reader_key_sees_dashboards_but_cannot_change_them(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    page.goto(demo.server.url + dashboard_path(demo, REFERENCE))
    page.wait_for_selector("#login-form")
    page.fill("#api-key", demo.server.create_key("reader"))
    page.press("#api-key", "Enter")
    wait_drawn(page, 8)
    assert page.locator("#panels .panel[data-state=ready]").count() == 8
    assert page.is_disabled("#edit-dashboard") and page.is_disabled("#delete-dashboard")
    assert page.is_enabled("#export-dashboard")
    assert page.locator(".auto-refresh").is_hidden(), "an absolute range does not refresh"
    page.click("#nav a[data-page=dashboards]")
    page.wait_for_selector(f"#dashboard-list tr[data-dashboard='{REFERENCE}']")
    assert page.is_disabled("#new-dashboard") and page.is_disabled("#import-dashboard")
    assert page.locator(f"#dashboard-list tr[data-dashboard='{REFERENCE}'] [data-action=delete]").is_disabled()


def wait_count(demo: Demo, service: str, n: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rows = demo.server.query(f"service:{service} | stats count() as n", **{"from": "now-2h"})["rows"]
        if rows and rows[0]["n"] == n:
            return
        time.sleep(0.1)
    raise AssertionError(f"the server did not store {n} records of {service}")
