"""Message patterns in a real browser: the Patterns tab of search, and the new and changed
patterns of the last hour on the service health page (this module has its own demo server, so
the records it adds do not change the other modules' counts)."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlencode, urlparse

import httpx
from tests.ui.conftest import Demo, PageProbe, iso, login, screenshot

S = 10**9


def test_patterns_tab_lists_templates_and_a_click_shows_their_records(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    span = {"from": iso(demo.start_ms), "to": iso(demo.end_ms)}
    login(page, demo, "/ui/search?" + urlencode({"q": "service:checkout", **span}))
    page.wait_for_selector("#results li.record")
    page.click("#tab-patterns")
    table = page.locator("#patterns-table")
    table.wait_for()
    assert parse_qs(urlparse(page.url).query)["view"] == ["patterns"]
    assert page.locator("#tab-patterns").get_attribute("aria-selected") == "true"
    expected = demo.server.query("service:checkout | patterns", **span)["rows"]
    assert len(expected) >= 2, "the demo's checkout app logs several kinds of message"
    rows = table.locator("tbody tr")
    assert rows.count() == len(expected)
    by_id = {r["pattern_id"]: r for r in expected}
    shown = rows.evaluate_all("trs => trs.map(t => t.dataset.patternId)")
    assert sorted(shown) == sorted(by_id)
    counts = [by_id[i]["count"] for i in shown]
    assert counts == sorted(counts, reverse=True), "most frequent first"
    for n, pattern_id in enumerate(shown):
        cells = rows.nth(n).locator("td").all_inner_texts()
        want = by_id[pattern_id]
        assert cells[0] == want["template"] and cells[1] == "checkout"
        # the sample is one message of the pattern (which one may differ between two queries)
        words = [w for w in want["template"].split() if "<" not in w]
        assert cells[5] and all(w in cells[5] for w in words), (cells[5], want["template"])
        assert int(cells[2].replace(",", "")) == want["count"]
    screenshot(page, "patterns-tab", full_page=True)
    # a click on the second pattern shows its records, and the query says which
    pick = by_id[shown[1]]
    rows.nth(1).click()
    page.wait_for_selector("#results li.record")
    params = parse_qs(urlparse(page.url).query)
    assert params["q"] == [f"service:checkout AND pattern_id:{pick['pattern_id']}"]
    assert "view" not in params
    # every match of the new query is a record of that pattern: as many as the pattern counted
    page.wait_for_function(
        f"() => document.querySelector('#result-summary').textContent.includes('of {pick['count']:,} records')")
    assert page.locator("#results li.record").count() == min(pick["count"], 100)
    # the tab is in the URL: Back returns to the patterns
    page.go_back()
    page.wait_for_selector("#patterns-table")
    assert page.locator("#tab-patterns").get_attribute("aria-selected") == "true"


def test_service_page_shows_new_and_changed_patterns_of_the_last_hour(probe: PageProbe, demo: Demo) -> None:
    now = time.time_ns()
    svc = "pattern-lab"
    records = []
    for i in range(6):  # steady: as often this hour as the hour before
        records += [{"timestamp": now - 90 * 60 * S + i * S, "service": svc, "level": "INFO",
                     "message": f"heartbeat ok from worker {i}"},
                    {"timestamp": now - 30 * 60 * S + i * S, "service": svc, "level": "INFO",
                     "message": f"heartbeat ok from worker {i + 10}"}]
    for i in range(2):  # changed: 2 the hour before, 12 this hour
        records.append({"timestamp": now - 100 * 60 * S + i * S, "service": svc, "level": "WARN",
                        "message": f"queue depth high on shard {i} at {100 + i} messages"})
    for i in range(12):
        records.append({"timestamp": now - 20 * 60 * S + i * S, "service": svc, "level": "WARN",
                        "message": f"queue depth high on shard {i} at {200 + i} messages"})
    for i in range(3):  # new: never logged before this hour
        records.append({"timestamp": now - 5 * 60 * S + i * S, "service": svc, "level": "ERROR",
                        "message": f"disk quota exceeded for volume vol-{i} by {300 + i} MB"})
    demo.server.ingest(records)
    compare = demo.server.query(f"service:{svc} | patterns compare 1h",
                                **{"from": iso(now // 10**6 - 3600_000), "to": iso(now // 10**6 + 1000)})["rows"]
    status = {r["status"]: r for r in compare}
    assert set(status) == {"new", "changed", "steady"}, compare

    page = probe.page
    login(page, demo, "/ui/services?" + urlencode({"from": iso(demo.start_ms), "to": iso(demo.end_ms)}))
    box = page.locator(f".service-patterns[data-service={svc}]")
    box.wait_for()
    rows = box.locator("tbody tr")
    assert sorted(rows.evaluate_all("trs => trs.map(t => t.dataset.status)")) == ["changed", "new"]
    new = box.locator("tr[data-status=new]")
    assert new.get_attribute("data-pattern-id") == status["new"]["pattern_id"]
    assert "disk quota exceeded" in new.inner_text()
    changed = box.locator("tr[data-status=changed] td").all_inner_texts()
    assert changed[2:] == ["12", "2", "+500 %"]
    # the demo's services have their section too (everything of theirs is new this hour), 10 at most
    hour = {"from": iso(now // 10**6 - 3600_000), "to": iso(now // 10**6 + 1000)}
    checkout = [r for r in demo.server.query("service:checkout | patterns compare 1h", **hour)["rows"]
                if r["status"] in ("new", "changed")]
    assert checkout
    page.locator(".service-patterns[data-service=checkout] tbody tr").first.wait_for()
    assert page.locator(".service-patterns[data-service=checkout] tbody tr").count() == min(len(checkout), 10)
    screenshot(page, "services-patterns", full_page=True)
    # the template links to that pattern's records of the last hour
    new.locator("a").click()
    page.wait_for_selector("#results li.record")
    params = parse_qs(urlparse(page.url).query)
    assert params["q"] == [f"service:{svc} AND pattern_id:{status['new']['pattern_id']}"]
    assert params["from"] == ["now-1h"]
    page.wait_for_function("() => document.querySelectorAll('#results li.record').length === 3")
    assert all("disk quota exceeded" in m for m in page.locator("#results .msg").all_inner_texts())


def test_alerts_page_shows_anomaly_and_new_pattern_conditions(probe: PageProbe, demo: Demo) -> None:
    rules = {"ui unusual errors": {"type": "anomaly", "baseline": "same_hour", "k": 4},
             "ui new patterns": {"type": "new_pattern", "min_level": "ERROR"}}
    for name, condition in rules.items():
        response = httpx.put(f"{demo.server.url}/api/v1/alerts/rules/{name}", headers=demo.server.headers, json={
            "name": name, "query": "service:checkout", "condition": condition,
            **({"group_by": ["service"]} if condition["type"] == "anomaly" else {})})
        assert response.status_code == 201, response.text
    page = probe.page
    login(page, demo, "/ui/alerts")
    anomaly = page.locator("#rules tr[data-rule='ui unusual errors']")
    anomaly.wait_for()
    assert "anomaly(count) up > 4 MAD over 7 days" in anomaly.inner_text()
    assert "new_pattern (level >= ERROR, learning 24h)" in page.locator("#rules tr[data-rule='ui new patterns']").inner_text()


def test_active_alerts_say_why_an_anomaly_fired(probe: PageProbe, demo: Demo) -> None:
    now = time.time_ns()
    demo.server.ingest([{"timestamp": now - i * 10**9, "service": "why-svc", "level": "ERROR",
                         "message": f"disk full on volume {i}"} for i in range(20)])
    rule = {"name": "ui why anomaly", "query": "service:why-svc AND level:ERROR", "window": "5m",
            "interval": "10s", "group_by": ["service"],
            "condition": {"type": "anomaly", "baseline": "periods", "periods": 6, "k": 3}}
    response = httpx.put(f"{demo.server.url}/api/v1/alerts/rules/{rule['name']}",
                         headers=demo.server.headers, json=rule)
    assert response.status_code == 201, response.text
    deadline = time.monotonic() + 90
    firing: list[dict] = []
    while time.monotonic() < deadline and not firing:
        alerts = httpx.get(demo.server.url + "/api/v1/alerts", headers=demo.server.headers).json()["alerts"]
        firing = [a for a in alerts if a["rule"] == rule["name"] and a["state"] == "firing"]
        time.sleep(0.5)
    assert firing, demo.server.log()[-2000:]
    assert firing[0]["details"]["median"] == 0 and firing[0]["details"]["k"] == 3
    page = probe.page
    login(page, demo, "/ui/alerts")
    row = page.locator("#active tr[data-rule='ui why anomaly']")
    row.wait_for()
    assert row.locator("td.why").inner_text() == "median 0, MAD 0, k 3 over 6 earlier windows"
