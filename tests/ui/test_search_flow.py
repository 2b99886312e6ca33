"""Search, continued (issue #25 items 4–8): aggregations drawn as charts with a table toggle, a
record opened (JSON, copy, link, surrounding records, trace), typed and recent time ranges with
zoom out, shift and one time zone everywhere, the way on to a saved query, a dashboard panel and
an alert (with its live preview)."""

from __future__ import annotations

import json
import math
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, quote, urlencode, urlparse

import httpx
from tests.ui.conftest import Demo, PageProbe, iso, login
from tests.ui.test_search_tools import api_rows, both_sizes, search_path, settled


def params(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_aggregations_draw_as_charts_with_a_table_toggle(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    q = "* | stats count() as n, avg(duration_ms) as avg by service"
    login(page, demo, search_path(demo, q))
    chart = page.locator("#agg-chart")
    chart.wait_for()
    page.wait_for_selector("#agg-chart canvas")
    rows = api_rows(demo, q)
    by_n = sorted(rows, key=lambda r: -r["n"])
    assert json.loads(chart.get_attribute("data-labels")) == [r["service"] for r in by_n]
    both_sizes(page, "chart-stats", "#agg-box")
    page.click("#view-table")
    page.wait_for_selector("#table-result")
    assert params(page)["agg"] == "table"
    cells = page.locator("#table-result tbody tr").first.locator("td").all_inner_texts()
    first = rows[0]
    assert cells[0] == first["service"] and cells[1] == f"{first['n']:,}"
    # measured numbers are rounded for reading; the cell's title keeps every digit
    avg = page.locator("#table-result tbody tr").first.locator("td").nth(2)
    assert avg.inner_text() == f"{first['avg']:,.2f}".rstrip("0").rstrip(".")
    # every digit of the page's own answer (not the 2-decimal text: 1e-12 tells them apart); the
    # test's second query may sum in another order (the engine adds the parts' partial sums on
    # parallel threads), so the last bits can differ (…400000002 against …399999988 seen once)
    assert math.isclose(float(avg.get_attribute("title")), first["avg"], rel_tol=1e-12, abs_tol=0.0)
    both_sizes(page, "chart-table", "#agg-box")
    page.click("#view-chart")
    page.wait_for_selector("#agg-chart canvas")
    # a timechart draws one line per group
    tq = "* | timechart span=5m count() by level"
    page.fill("#query", tq)
    page.press("#query", "Enter")
    page.wait_for_selector("#agg-chart[data-kind=timechart] canvas")
    levels = {r["level"] for r in api_rows(demo, tq)}
    assert int(page.locator("#agg-chart").get_attribute("data-series")) == len(levels)
    both_sizes(page, "chart-timechart", "#agg-box")


def test_a_record_opened_json_copy_link_context_trace(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=demo.server.url)
    # a record with an integer no JavaScript number holds: shown and copied digit for digit
    big = "123456789012345678901234567890"
    mark = "big" + uuid.uuid4().hex[:8]
    ts_ns = demo.end_ms * 1_000_000 + 3_600 * 10**9
    body = f'{{"timestamp": {ts_ns}, "service": "exact", "host": "h-exact", "message": "{mark}", "big": {big}}}'
    httpx.post(demo.server.url + "/api/v1/logs", content=body, headers=demo.server.headers,
               timeout=30).raise_for_status()
    deadline = time.monotonic() + 30
    while not demo.server.query(mark, **{"from": "now-2h", "to": "now+2h"})["rows"] and time.monotonic() < deadline:
        time.sleep(0.2)
    login(page, demo, "/ui/search?" + urlencode({"q": mark, "from": iso(demo.end_ms), "to": iso(demo.end_ms + 2 * 3600_000)}))
    page.wait_for_selector("#results li.record")
    page.locator("#results li.record .summary").first.click()
    page.click("#results li.record .details [data-tab=json]")
    text = page.locator("#results li.record pre.json").inner_text()
    assert f'"big": {big}' in text
    page.click("#results li.record [data-action=copy-json]")
    page.wait_for_function("() => document.querySelector('.copy-status').textContent.includes('copied')")
    assert f'"big": {big}' in page.evaluate("navigator.clipboard.readText()")

    # an ordinary record: its JSON is the API's record; its link opens it again
    # (the fifth newest: the newest may have no newer record of its host)
    page.goto(demo.server.url + search_path(demo, "source:app AND level:ERROR"))
    page.wait_for_selector("#results li.record")
    settled(page)
    page.locator("#results li.record .summary").nth(4).click()
    record = api_rows(demo, "source:app AND level:ERROR | limit 5")[4]
    page.click("#results li.record.open .details [data-tab=json]")
    assert json.loads(page.locator("#results li.record.open pre.json").inner_text()) == record
    both_sizes(page, "record-json", "#results li.record.open")
    page.click("#results li.record.open [data-action=copy-link]")
    page.wait_for_function("() => document.querySelector('.copy-status').textContent.includes('copied')")
    link = page.evaluate("navigator.clipboard.readText()")
    assert link.startswith(demo.server.url + "/ui/search?") and "open=1" in link
    page.goto(link)
    page.wait_for_selector("#results li.record.open pre.json", state="attached")
    opened = json.loads(page.locator("#results li.record.open pre.json").first.text_content())
    assert opened == record
    # surrounding records: the same host, the record itself marked, newest first
    page.click("#results li.record.open [data-action=context]")
    dialog = page.locator("#context")
    dialog.wait_for()
    page.wait_for_selector("#context-list li.anchor")
    page.wait_for_function("() => / records of the same /.test(document.querySelector('#context-status').textContent)")
    assert page.locator("#context-by").input_value() == "host"
    times = page.locator("#context-list .ts").evaluate_all("els => els.map(e => e.title)")
    assert times == sorted(times, reverse=True)
    before = page.locator("#context-list li.record").count()
    # the instant's records and 10 on each side, all of the same host (a search says how many exist)
    assert 2 <= before <= 21 + 5
    anchor = times.index(page.locator("#context-list li.anchor .ts").get_attribute("title"))
    assert 0 < anchor < before - 1, "newer records above the record, older below"
    both_sizes(page, "record-context", "#context-list li.anchor")
    page.locator("#context-list li.record").first.locator(".summary").click()
    assert page.locator("#context-list li.record").first.locator(
        "tr[data-field=host] button.value").inner_text() == record["host"]
    page.click("#context-older")
    page.wait_for_function(f"() => document.querySelectorAll('#context-list li.record').length > {before}"
                           f" || document.querySelector('#context-status').textContent.includes('no more')")
    page.keyboard.press("Escape")
    page.wait_for_selector("#context", state="hidden")
    page.click("#results li.record.open a.open-trace")
    page.wait_for_function(f"() => location.pathname === '/ui/trace/{record['trace_id']}'")


def test_time_typed_recent_zoom_shift_and_one_time_zone(browser, demo: Demo) -> None:  # type: ignore[no-untyped-def]
    # a browser far from UTC (and off by half an hour), so local and UTC times differ everywhere
    context = browser.new_context(viewport={"width": 1440, "height": 900}, timezone_id="Asia/Kolkata")
    context.set_default_timeout(15_000)
    page = context.new_page()
    watched = PageProbe(page, demo.server.url)
    try:
        _time_flow(page, demo)
    finally:
        context.close()
    assert not watched.errors and not watched.foreign


def _time_flow(page, demo: Demo) -> None:  # type: ignore[no-untyped-def]
    login(page, demo, search_path(demo, "source:app"))
    page.wait_for_selector("#results li.record")
    settled(page)
    newest = api_rows(demo, "source:app | limit 1")[0]
    stamp = datetime.fromisoformat(newest["timestamp"][:26] + "+00:00")
    local = (stamp + timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M:%S.%f")[:23]
    assert page.locator("#results li.record .ts").first.get_attribute("title") == local
    page.click("#time-button")
    page.fill("#time-from", "now-3h")
    page.fill("#time-to", "now")
    page.click("#time-apply")
    page.wait_for_function("() => new URLSearchParams(location.search).get('from') === 'now-3h'")
    assert page.locator("#time-button").inner_text() == "Last 3h"
    settled(page)
    page.click("#time-zoom-out")
    page.wait_for_function("() => new URLSearchParams(location.search).get('from') === 'now-6h'")
    page.click("#time-back")
    page.wait_for_function("() => !new URLSearchParams(location.search).get('from').startsWith('now')")
    p = params(page)
    start, end = (datetime.fromisoformat(p[k].replace("Z", "+00:00")) for k in ("from", "to"))
    assert abs((end - start).total_seconds() - 6 * 3600) < 2
    assert (datetime.now(UTC) - end).total_seconds() > 2.9 * 3600
    page.click("#time-forward")
    page.wait_for_function(f"() => new URLSearchParams(location.search).get('from') !== {json.dumps(p['from'])}")
    # recent ranges, and a typed absolute range read in the chosen time zone
    page.click("#time-button")
    recent = page.locator("#time-recent [data-range]").evaluate_all("els => els.map(e => e.dataset.range)")
    assert recent[0] == "now-3h now"
    page.click("#time-zone-utc")
    page.wait_for_selector("#results li.record")
    page.click("#time-button")
    assert "UTC" in page.inner_text("#time-zone-hint")
    first = datetime.fromtimestamp(demo.start_ms // 1000, UTC)
    last = datetime.fromtimestamp(demo.end_ms / 1000 + 60, UTC)
    page.fill("#time-from", first.strftime("%Y-%m-%d %H:%M:%S"))
    page.fill("#time-to", last.strftime("%Y-%m-%d %H:%M"))
    both_sizes(page, "time-picker")
    page.click("#time-apply")
    page.wait_for_function("() => new URLSearchParams(location.search).get('from').endsWith('Z')")
    p = params(page)
    assert p["from"] == first.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert p["to"] == last.strftime("%Y-%m-%dT%H:%M:00.000Z")
    assert page.locator("#time-button").inner_text().endswith("UTC")
    settled(page)
    # rows, the opened record and the chart all speak UTC now
    utc = stamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:23]
    assert page.locator("#results li.record .ts").first.get_attribute("title") == utc
    page.locator("#results li.record .summary").first.click()
    shown = page.locator("#results li.record tr[data-field=timestamp] td").first.inner_text()
    assert shown.startswith(utc)
    box = page.locator("#histogram .u-over").bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    legend = page.locator("#histogram .u-legend .u-series").first.locator(".u-value").inner_text()
    at = datetime.strptime(legend, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert first - timedelta(minutes=2) <= at <= last, (legend, first, last)
    both_sizes(page, "time-utc")


def test_save_query_add_to_dashboard_and_create_alert(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    name = f"ui-saved-{uuid.uuid4().hex[:6]}"
    login(page, demo, search_path(demo, "service:checkout AND level:ERROR"))
    page.wait_for_selector("#results li.record")
    page.click("#action-save")
    page.wait_for_selector("#save-dialog[open]")
    page.fill("#save-name", name)
    both_sizes(page, "action-save")
    page.click("#save-submit")
    page.wait_for_selector("#save-done:text('Saved')")
    saved = httpx.get(f"{demo.server.url}/api/v1/saved-queries/{quote(name)}", headers=demo.server.headers).json()
    assert saved["query"] == "service:checkout AND level:ERROR"
    page.keyboard.press("Escape")
    page.fill("#query", "")
    page.focus("#query")
    page.wait_for_selector("#suggest li[data-kind=saved]")
    assert any(name in d for d in page.locator("#suggest li[data-kind=saved] .suggest-detail").all_inner_texts())
    page.keyboard.press("Escape")

    # a timechart search becomes a panel of a new dashboard
    tq = "service:checkout | timechart span=5m count() by level"
    board = f"ui-board-{uuid.uuid4().hex[:6]}"
    page.fill("#query", tq)
    page.press("#query", "Enter")
    page.wait_for_selector("#agg-chart canvas")
    page.click("#action-dashboard")
    page.wait_for_selector("#dash-dialog[open]")
    page.wait_for_selector("#dash-target option[value='Reference stack']", state="attached")
    assert page.locator("#panel-type").input_value() == "timechart"
    page.select_option("#dash-target", "")
    page.fill("#dash-new-name", board)
    both_sizes(page, "action-dashboard")
    page.click("#dash-add-submit")
    page.wait_for_selector("#dash-add-done a.dash-open")
    stored = httpx.get(f"{demo.server.url}/api/v1/dashboards/{quote(board)}", headers=demo.server.headers).json()
    assert [(p["type"], p["query"]) for p in stored["panels"]] == [("timechart", tq)]
    page.click("#dash-add-done a.dash-open")
    page.wait_for_selector(".panel[data-type=timechart][data-state=ready]")
    page.go_back()

    # an alert from the search: a form, a live preview, a channel picked from a list
    channel = f"ui-hook-{uuid.uuid4().hex[:6]}"
    made = httpx.post(demo.server.url + "/api/v1/channels", headers=demo.server.headers,
                      json={"name": channel, "kind": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}})
    assert made.status_code == 201, made.text
    rule_name = f"ui-alert-{uuid.uuid4().hex[:6]}"
    page.fill("#query", "service:checkout AND level:ERROR")
    page.press("#query", "Enter")
    page.wait_for_selector("#results li.record")
    page.click("#action-alert")
    page.wait_for_selector("#alert-dialog[open]")
    assert page.locator("#alert-dialog textarea").count() == 0, "a form, not JSON"
    page.fill("#alert-name", rule_name)
    page.fill("#alert-window", "1h")
    page.fill("#alert-threshold", "0")
    page.wait_for_selector(f"#alert-channels input[value='{channel}']")
    page.check(f"#alert-channels input[value='{channel}']")
    page.wait_for_selector("#alert-preview[data-state=firing]")
    count = api_count_now(demo, "service:checkout AND level:ERROR")
    assert page.locator("#alert-preview tbody td.num").first.inner_text() == str(count)
    assert page.locator("#alert-condition").inner_text() == "count > 0"
    page.fill("#alert-threshold", str(count + 1000))
    page.wait_for_selector("#alert-preview[data-state=ok]")
    page.fill("#alert-window", "1x")
    page.wait_for_selector("#alert-preview[data-state=error]")
    # the refusal is told beside the window field (tests/ui/test_alert_errors.py), the preview points there
    assert "is not a duration" in page.inner_text("#alert-dialog .field-error[data-error-for=window]")
    assert "see the fields marked above" in page.inner_text("#alert-preview")
    page.fill("#alert-window", "1h")
    page.select_option("#alert-kind", "ratio")
    page.fill("#alert-numerator", "status:>=500")
    page.fill("#alert-threshold", "0.5")
    page.wait_for_selector("#alert-preview[data-state=ok], #alert-preview[data-state=firing]")
    both_sizes(page, "action-alert")
    page.click("#alert-submit")
    page.wait_for_selector("#alert-done a.alert-open")
    rule = httpx.get(f"{demo.server.url}/api/v1/alerts/rules/{quote(rule_name)}", headers=demo.server.headers).json()
    spec = rule.get("spec", rule)
    assert spec["query"] == "service:checkout AND level:ERROR" and spec["channels"] == [channel]
    assert spec["window"] == "1h"
    httpx.delete(f"{demo.server.url}/api/v1/alerts/rules/{quote(rule_name)}", headers=demo.server.headers)


def api_count_now(demo: Demo, q: str) -> int:
    rows = demo.server.query(f"{q} | stats count() as n", **{"from": "now-1h", "to": "now"})["rows"]
    return int(rows[0]["n"]) if rows else 0
