"""Explain on the search page (issue #28 part 1): the Explain button (the range shown, which a
drag selects) and a clicked histogram bar open the ranked values; each row's + adds its filter to
the query and searches again."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from tests.ui.conftest import Demo, PageProbe, login, screenshot
from tests.ui.test_search_tools import search_path, settled


def test_explain_a_range_then_filter_by_a_row(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    login(page, demo, search_path(demo, "level:ERROR"))
    settled(page)
    page.wait_for_selector("#histogram .u-over")
    page.click("#explain-open")
    page.wait_for_selector("#explain-summary")
    # the window before the data holds nothing: the panel says so and what to do instead
    assert "none in the window before" in page.inner_text("#explain-summary")
    page.select_option("#explain-baseline", "complement")
    page.wait_for_function("() => (document.querySelector('#explain-summary')?.textContent ?? '').includes('rest')")
    summary = page.inner_text("#explain-summary")
    assert "stand out" in summary and "no value" not in summary, summary
    first = page.locator("#explain-values tbody tr.significant").first
    field, value = first.get_attribute("data-field"), first.get_attribute("data-value")
    assert field and value
    screenshot(page, "explain-panel")
    first.locator("button.add-filter").click()
    page.wait_for_function("(v) => new URL(location.href).searchParams.get('q').includes(v)", arg=value)
    q = parse_qs(urlparse(page.url).query)["q"][0]
    assert q.startswith("level:ERROR AND ") and field in q, q


def test_a_clicked_bar_is_explained(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    login(page, demo, search_path(demo, "*"))
    settled(page)
    box = page.locator("#histogram .u-over").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] - 3)
    page.wait_for_selector("#explain-summary")
    assert page.inner_text("#explain h2").startswith("What changed")
    assert not page.locator("#explain").is_hidden()
    page.click("#explain-close")
    assert page.locator("#explain").is_hidden()
