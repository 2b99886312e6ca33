"""Search as Kibana Discover and Grafana Explore users reach for it (issue #25), in chromium against
a real server with the demo stack's records: the field sidebar, the query box's suggestions and
"did you mean", free text, keyboard navigation and badge contrast. Each state is kept as a
screenshot at 1440×900 and 390×844 under test-artifacts/ui/."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from tests.ui.conftest import Demo, PageProbe, iso, login, screenshot


def search_path(demo: Demo, q: str, **extra: str) -> str:
    return "/ui/search?" + urlencode({"q": q, "from": iso(demo.start_ms), "to": iso(demo.end_ms), **extra})


def api_rows(demo: Demo, q: str) -> list[dict]:  # type: ignore[type-arg]
    return demo.server.query(q, **{"from": iso(demo.start_ms), "to": iso(demo.end_ms)})["rows"]


def api_count(demo: Demo, q: str) -> int:
    rows = api_rows(demo, f"{q} | stats count() as n")
    return int(rows[0]["n"]) if rows else 0


def settled(page) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function("() => !document.querySelector('#result-summary').textContent.startsWith('Searching')")


def both_sizes(page, name: str, focus: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """The state as a laptop (1440×900) and a phone (390×844) show it: the top of the page, or the
    element ``focus`` names scrolled into view."""
    for width, height in ((1440, 900), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(150)
        if focus:
            page.locator(focus).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        else:
            page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(100)
        screenshot(page, f"{name}-{width}")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.wait_for_timeout(150)


def test_field_sidebar_values_filters_and_columns(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    login(page, demo, search_path(demo, "*"))
    page.wait_for_selector("#sidebar[data-state=ready]")
    total = api_count(demo, "*")
    assert int(page.locator("#sidebar").get_attribute("data-total")) == total
    names = page.locator("#fields li.field").evaluate_all("els => els.map(e => e.dataset.field)")
    assert {"level", "service", "http.status", "http.path", "user_id", "error_code"} <= set(names)
    # a field's values with their share of the whole match (not of the 100 rows on the page)
    page.click("#fields li[data-field=service] .field-name")
    values = page.locator("#fields li[data-field=service] li.fv")
    values.first.wait_for()
    want = {r["service"]: r["n"] for r in api_rows(demo, "* | stats count() as n by service")}
    shown = {v.get_attribute("data-value"): v.locator(".fv-share").get_attribute("title") for v in values.all()}
    assert shown == {s: f"{n:,} of {total:,}" for s, n in want.items()}
    page.click("#fields li[data-field='http.status'] .field-name")
    statuses = page.locator("#fields li[data-field='http.status'] li.fv")
    statuses.first.wait_for()
    top = api_rows(demo, "* | top 5 status")
    assert statuses.first.get_attribute("data-value") == str(top[0]["status"])
    page.click("#fields li[data-field='http.status'] .field-column")
    page.wait_for_function("() => new URLSearchParams(location.search).get('cols') === 'http.status'")
    page.wait_for_selector("#columns-head [data-col='http.status']")
    both_sizes(page, "sidebar", "#columns-head")
    # on a phone the sidebar sits above the results, folded; opened, it holds the same fields
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("() => document.querySelector('#fields-toggle').getAttribute('aria-expanded') === 'false'")
    page.click("#fields-toggle")
    page.locator("#fields li[data-field=service] li.fv").first.wait_for()  # still open from above
    assert page.locator("#fields li[data-field=service] li.fv").count() == len(want)
    page.locator("#sidebar").evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(100)
    screenshot(page, "sidebar-open-390")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.wait_for_function("() => document.querySelector('#fields-toggle').getAttribute('aria-expanded') === 'true'")
    # the column shows each record's value; a reload keeps it (it is in the URL)
    page.reload()
    page.wait_for_selector("#results li.record .cell[data-col='http.status']")
    cells = page.locator("#results li.record").first.locator(".cell[data-col='http.status']").inner_text()
    newest = api_rows(demo, "* | limit 1")[0]
    assert cells == str(newest.get("http", {}).get("status", ""))
    # a value adds field:value; − adds NOT field:value
    page.wait_for_selector("#sidebar[data-state=ready]")
    page.click("#fields li[data-field=service] .field-name")
    page.click("#fields li[data-field=service] li.fv[data-value=checkout] .fv-value")
    page.wait_for_function("() => document.querySelector('#query').value === 'service:checkout'")
    settled(page)
    page.wait_for_function(f"() => Number(document.querySelector('#sidebar').dataset.total) === {want['checkout']}")
    page.click("#fields li[data-field=level] .field-name")
    page.click("#fields li[data-field=level] li.fv[data-value=INFO] [data-action=exclude]")
    page.wait_for_function("() => document.querySelector('#query').value === 'service:checkout AND NOT level:INFO'")
    settled(page)
    assert "INFO" not in set(page.locator("#results .level").all_inner_texts())
    page.fill("#field-search", "error")
    assert set(page.locator("#fields li.field").evaluate_all("els => els.map(e => e.dataset.field)")) <= {
        n for n in names if "error" in n}


def test_query_box_suggests_fields_values_pipes_and_recent(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    login(page, demo, search_path(demo, "service:nginx"))
    page.wait_for_selector("#results li.record")
    box = page.locator("#query")
    box.fill("")
    box.type("serv")
    page.wait_for_selector("#suggest li[data-kind=field]")
    assert page.locator("#suggest li[data-kind=field] .suggest-label").first.inner_text() == "service"
    both_sizes(page, "suggest-fields")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    assert box.input_value() == "service:"
    page.wait_for_selector("#suggest li[data-kind=value]")
    values = page.locator("#suggest li[data-kind=value] .suggest-label").all_inner_texts()
    assert {"checkout", "nginx", "shop-alb"} <= set(values)
    page.locator("#suggest li[data-kind=value]", has_text="checkout").dispatch_event("mousedown")
    assert box.input_value() == "service:checkout "
    box.type("| st")
    page.wait_for_selector("#suggest li[data-kind=pipe]")
    page.keyboard.press("Tab")
    assert box.input_value() == "service:checkout | stats "
    box.type("co")
    page.wait_for_selector("#suggest li[data-kind=function]")
    assert page.locator("#suggest li[data-kind=function] .suggest-label").first.inner_text() == "count()"
    page.keyboard.press("Escape")
    assert page.locator("#suggest").is_hidden()
    assert page.evaluate("document.activeElement.id") == "query", "Escape closes the list first"
    # recent queries: the empty box offers what was run
    box.fill("")
    page.keyboard.press("ArrowDown")
    page.wait_for_selector("#suggest li[data-kind=recent]")
    assert "service:nginx" in page.locator("#suggest li[data-kind=recent] .suggest-label").all_inner_texts()
    both_sizes(page, "suggest-recent")
    page.locator("#suggest li[data-kind=recent]", has_text="service:nginx").dispatch_event("mousedown")
    page.wait_for_function("() => new URLSearchParams(location.search).get('q') === 'service:nginx'")


def test_an_unknown_field_says_did_you_mean(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    login(page, demo, search_path(demo, "servce:checkout AND level:ERROR"))
    warning = page.locator("#query-warning")
    warning.wait_for()
    assert "servce" in warning.inner_text()
    assert page.locator("#query-warning [data-suggestion]").first.get_attribute("data-suggestion") == "service"
    both_sizes(page, "did-you-mean")
    page.click("#query-warning [data-suggestion=service]")
    page.wait_for_function("() => document.querySelector('#query').value === 'service:checkout AND level:ERROR'")
    settled(page)
    assert page.locator("#results li.record").count() == min(100, api_count(demo, "service:checkout AND level:ERROR"))
    page.wait_for_selector("#query-warning", state="hidden")


def test_free_text_finds_what_people_type(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    login(page, demo, search_path(demo, "Declined"))
    page.wait_for_selector("#results li.record")
    settled(page)
    n = api_count(demo, "Declined")
    assert n > 0 and n == api_count(demo, "declined") == api_count(demo, "DECLINED")
    assert n == api_count(demo, '"payment declined"')
    messages = page.locator("#results .msg").all_inner_texts()
    assert messages and all("declined" in m.lower() for m in messages)
    assert {m.lower() for m in page.locator("#results mark.hit").all_inner_texts()} == {"declined"}
    both_sizes(page, "free-text")
    # a bare word is free text: `error` finds the ERROR records whatever their message says
    errors = api_count(demo, "error")
    assert errors >= api_count(demo, "level:ERROR") > 0
    page.fill("#query", "error")
    page.press("#query", "Enter")
    page.wait_for_function(f"() => document.querySelector('#result-summary').textContent.includes('of {errors:,}')"
                           if errors > 100 else f"() => document.querySelectorAll('#results li.record').length === {errors}")


def test_rows_are_one_tab_stop_and_move_with_the_keyboard(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    login(page, demo, search_path(demo, "source:app"))
    page.wait_for_selector("#results li.record")
    settled(page)
    assert page.locator("#results .summary[tabindex='0']").count() == 1
    assert page.locator("#results .summary[tabindex='-1']").count() == page.locator("#results .summary").count() - 1
    page.locator("body").click(position={"x": 5, "y": 700})
    page.keyboard.press("j")  # from the page: the first row
    first_ts = page.locator("#results li.record .ts").first.inner_text()
    assert page.evaluate("document.activeElement.closest('li').querySelector('.ts').innerText") == first_ts
    page.keyboard.press("j")
    page.keyboard.press("ArrowDown")
    third = page.locator("#results li.record").nth(2).locator(".ts").inner_text()
    assert page.evaluate("document.activeElement.closest('li').querySelector('.ts').innerText") == third
    page.keyboard.press("k")
    page.keyboard.press("Enter")
    second = page.locator("#results li.record").nth(1)
    assert second.locator(".summary").get_attribute("aria-expanded") == "true"
    assert page.locator("#results .summary[tabindex='0']").count() == 1
    both_sizes(page, "keyboard", "#results li.record.open")
    page.keyboard.press("Enter")
    assert second.locator(".summary").get_attribute("aria-expanded") == "false"
    # Tab leaves the list (rows are not each a stop) and Shift+Tab comes back to the same row
    page.keyboard.press("Tab")
    assert page.evaluate("!document.activeElement.classList.contains('summary')")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.closest('li').querySelector('.ts').innerText") == \
        second.locator(".ts").inner_text()


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_level_badges_are_readable(probe: PageProbe, demo: Demo, scheme: str) -> None:
    """WCAG AA for text: a contrast of at least 4.5:1 between each badge's text and background,
    in the light theme and in the dark one (the system's prefers-color-scheme)."""
    page = probe.page
    page.emulate_media(color_scheme=scheme)
    login(page, demo, search_path(demo, "*"))
    page.wait_for_selector("#results li.record")
    colors = page.evaluate("""() => ['fatal', 'error', 'warn', 'info', 'debug', 'trace', ''].map(l => {
        const el = document.createElement('span');
        el.className = 'level' + (l ? ' level-' + l : '');
        el.textContent = 'X';
        document.body.append(el);
        const s = getComputedStyle(el);
        const out = [l, s.color, s.backgroundColor];
        el.remove();
        return out;
    })""")
    for level, fg, bg in colors:
        rgb = [tuple(int(x) for x in re.findall(r"\d+", c)[:3]) for c in (fg, bg)]
        assert contrast(rgb[0], rgb[1]) >= 4.5, (level or "unknown", fg, bg)
    # and the WARN badges the rows really show (the class above is the one the rows get)
    page.fill("#query", "level:WARN")
    page.press("#query", "Enter")
    page.wait_for_function("() => document.querySelector('#results li.record[data-level=WARN]')")
    settled(page)
    shown = page.evaluate("""() => [...document.querySelectorAll('#results li.record .level')].map(e => {
        const s = getComputedStyle(e);
        return [e.textContent, s.color, s.backgroundColor];
    })""")
    assert shown and {text for text, _, _ in shown} == {"WARN"}
    for text, fg, bg in shown:
        rgb = [tuple(int(x) for x in re.findall(r"\d+", c)[:3]) for c in (fg, bg)]
        assert contrast(rgb[0], rgb[1]) >= 4.5, (text, fg, bg)
