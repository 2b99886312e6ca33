"""Dark mode (issue #26 item 3), in chromium against a real server with the demo stack's records:
the pages follow the system's prefers-color-scheme, a toggle keeps a choice per browser and applies
it before the first paint, text and level badges keep a contrast of 4.5:1, and the charts' axes are
drawn in the dark theme's ink. Screenshots at 1440×900 and 390×844 under test-artifacts/ui/."""

from __future__ import annotations

import re
from urllib.parse import quote, urlencode

from tests.ui.conftest import Demo, PageProbe, iso, login, screenshot
from tests.ui.test_search_tools import contrast, search_path, settled

SIZES = ((1440, 900), (390, 844))
# the first frame's colours, taken before the page's module runs (an init script's rAF callback
# runs ahead of the first paint): a theme applied later would have flashed
FIRST_FRAME = """requestAnimationFrame(() => {
    window.__firstFrame = {theme: document.documentElement.dataset.theme || null,
                           bg: getComputedStyle(document.documentElement).backgroundColor};
})"""


def rgb(css: str) -> tuple[int, int, int]:
    r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
    return r, g, b


def is_dark(css: str) -> bool:
    return sum(rgb(css)) / 3 < 60


def colours(page, selector: str) -> list[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    """(text, colour, the background it sits on: the nearest ancestor's that is not transparent)."""
    return page.evaluate("""sel => [...document.querySelectorAll(sel)].filter(e => e.offsetParent).map(e => {
        let bg = 'rgba(0, 0, 0, 0)';
        for (let n = e; n && bg.startsWith('rgba(0, 0, 0, 0)'); n = n.parentElement) {
            bg = getComputedStyle(n).backgroundColor;
        }
        return [e.textContent.trim().slice(0, 40), getComputedStyle(e).color, bg];
    })""", selector)


def assert_readable(page, selector: str) -> int:  # type: ignore[no-untyped-def]
    seen = colours(page, selector)
    assert seen, f"nothing shown matches {selector}"
    for text, fg, bg in seen:
        assert contrast(rgb(fg), rgb(bg)) >= 4.5, (selector, text, fg, bg)
    return len(seen)


def assert_badges_readable(page) -> None:  # type: ignore[no-untyped-def]
    """Every level's badge class (rows get these classes) and the badges shown."""
    badges = page.evaluate("""() => ['fatal', 'error', 'warn', 'info', 'debug', 'trace', ''].map(l => {
        const el = document.createElement('span');
        el.className = 'level' + (l ? ' level-' + l : '');
        el.textContent = 'X';
        document.querySelector('main').append(el);
        const s = getComputedStyle(el);
        const out = [l, s.color, s.backgroundColor];
        el.remove();
        return out;
    })""")
    for level, fg, bg in badges:
        assert contrast(rgb(fg), rgb(bg)) >= 4.5, (level or "unknown", fg, bg)


def axis_ink_pixels(page, canvas: str) -> int:  # type: ignore[no-untyped-def]
    """Pixels of a uPlot canvas drawn in the page's --muted colour (the axes' labels)."""
    return page.evaluate("""sel => {
        const c = document.querySelector(sel);
        const probe = document.createElement('span');
        probe.style.color = 'var(--muted)';
        document.body.append(probe);
        const [r, g, b] = getComputedStyle(probe).color.match(/\\d+/g).map(Number);
        probe.remove();
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) {
            if (d[i + 3] > 250 && Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 12) n++;
        }
        return n;
    }""", canvas)


def both_sizes(page, name: str) -> None:  # type: ignore[no-untyped-def]
    for width, height in SIZES:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_function("w => window.innerWidth === w", arg=width)
        page.evaluate("window.scrollTo(0, 0)")
        screenshot(page, f"{name}-{width}")
    page.set_viewport_size({"width": 1440, "height": 900})


def test_dark_follows_the_system_on_search(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    page.emulate_media(color_scheme="dark")
    page.set_viewport_size({"width": 1440, "height": 900})
    login(page, demo, search_path(demo, "*"))
    page.wait_for_selector("#results li.record")
    settled(page)
    page.wait_for_selector("#histogram canvas, .histogram canvas")
    assert page.evaluate("document.documentElement.dataset.theme") is None  # no choice stored
    page_bg = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert is_dark(page_bg), page_bg
    card_bg = page.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor")
    assert is_dark(card_bg) and card_bg != page_bg, (card_bg, page_bg)
    assert is_dark(page.evaluate("getComputedStyle(document.querySelector('#query')).backgroundColor"))
    # body text, the muted text beside it, the query box, the badges the rows show
    assert_readable(page, "#results li.record .msg")
    assert_readable(page, "#results li.record .ts")
    assert_readable(page, "#result-summary")
    assert_readable(page, "#query")
    page.wait_for_selector(".sidebar .field-label")  # the sidebar loads after the rows
    assert_readable(page, ".sidebar .field-label")
    assert_readable(page, "#results li.record .level")
    assert_badges_readable(page)
    # an opened record: names, values
    page.locator("#results li.record .summary").first.click()
    page.wait_for_selector("#results li.record.open table.fields")
    assert_readable(page, "#results li.record.open table.fields th")
    assert_readable(page, "#results li.record.open button.value")
    # the histogram's axes are drawn in the dark theme's muted ink (uPlot draws on a canvas)
    assert axis_ink_pixels(page, ".histogram canvas") > 30
    both_sizes(page, "dark-search")


def test_dark_services_trace_and_dashboard(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    page.emulate_media(color_scheme="dark")
    page.set_viewport_size({"width": 1440, "height": 900})
    span = urlencode({"from": iso(demo.start_ms), "to": iso(demo.end_ms)})
    login(page, demo, f"/ui/services?{span}")
    page.locator("#health-table").wait_for()
    page.wait_for_function("() => document.querySelectorAll('.service-card canvas').length >= 9")
    assert is_dark(page.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor"))
    assert_readable(page, "#health-table td")
    assert_readable(page, "#health-table th")
    assert_readable(page, ".chart-fig figcaption")
    assert_readable(page, ".service-card .u-legend .u-label")
    assert axis_ink_pixels(page, ".service-card canvas") > 30
    both_sizes(page, "dark-services")

    failed = next(s for s in demo.stories if s.status >= 500 and len(s.app_records) > 1)
    page.goto(f"{demo.server.url}/ui/trace/{failed.trace_id}")
    page.wait_for_selector("#waterfall .wf-row[data-layer]")
    assert_readable(page, "#breakdown td")
    assert_readable(page, "#trace-records li.record .msg")
    assert_readable(page, ".wf-label")
    both_sizes(page, "dark-trace")

    page.goto(f"{demo.server.url}/ui/dashboards/{quote('Reference stack')}?{span}")
    page.wait_for_function("() => document.querySelectorAll('#panels .panel').length > 0 && "
                           "!document.querySelector('#panels .panel[data-state=loading]')")
    page.wait_for_selector("#panels canvas")
    assert_readable(page, "#panels .panel-title")
    assert axis_ink_pixels(page, "#panels canvas") > 30
    both_sizes(page, "dark-dashboard")


def test_toggle_is_kept_per_browser_and_applied_before_the_first_paint(probe: PageProbe, demo: Demo) -> None:
    page = probe.page
    page.emulate_media(color_scheme="light")
    page.context.add_init_script(FIRST_FRAME)
    login(page, demo, search_path(demo, "*"))
    page.wait_for_selector("#results li.record")
    toggle = page.locator("#theme-toggle")
    assert toggle.get_attribute("aria-pressed") == "false"
    assert not is_dark(page.evaluate("getComputedStyle(document.body).backgroundColor"))
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "true"
    assert page.evaluate("localStorage.getItem('logharbor.theme')") == "dark"
    assert is_dark(page.evaluate("getComputedStyle(document.body).backgroundColor"))
    # the histogram already on the page redraws its axes in the dark ink
    page.wait_for_function("""() => {
        const c = document.querySelector('.histogram canvas');
        return c && c.getContext('2d').getImageData(0, 0, c.width, c.height).data.length > 0;
    }""")
    assert axis_ink_pixels(page, ".histogram canvas") > 30

    page.reload()
    page.wait_for_selector("#results li.record")
    first = page.evaluate("window.__firstFrame")
    assert first["theme"] == "dark" and is_dark(first["bg"]), first
    assert page.locator("#theme-toggle").get_attribute("aria-pressed") == "true"
    settled(page)
    assert_badges_readable(page)
    assert_readable(page, "#results li.record .msg")
    screenshot(page, "dark-toggled-search")

    # back to light: the system's own choice, so nothing is kept and the page follows the system
    page.locator("#theme-toggle").click()
    assert page.evaluate("localStorage.getItem('logharbor.theme')") is None
    assert not is_dark(page.evaluate("getComputedStyle(document.body).backgroundColor"))
    page.emulate_media(color_scheme="dark")
    page.wait_for_function("() => getComputedStyle(document.body).backgroundColor !== 'rgb(245, 246, 248)'")
    assert page.locator("#theme-toggle").get_attribute("aria-pressed") == "true"


def test_dark_login_tail_alerts_and_dashboard_list(probe: PageProbe, demo: Demo) -> None:
    """The pages not covered above, in dark at both sizes: headings, hints, buttons and inputs readable."""
    page = probe.page
    page.emulate_media(color_scheme="dark")
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(demo.server.url + "/ui/search")
    page.wait_for_selector("#login-form")
    assert is_dark(page.evaluate("getComputedStyle(document.body).backgroundColor"))
    assert_readable(page, "#login-form h1")
    assert_readable(page, "#login-form button")
    assert page.locator("#theme-toggle").get_attribute("aria-pressed") == "true"
    both_sizes(page, "dark-login")
    login(page, demo, "/ui/tail")
    page.wait_for_selector("#tail-status")
    assert_readable(page, "#tail-status")
    assert_readable(page, "main button")
    assert_readable(page, "#tail-find")
    both_sizes(page, "dark-tail")
    page.click("#nav a[data-page=alerts]")
    page.wait_for_function("""() => {
        const list = document.querySelector('#alerts');
        return list && !list.textContent.includes('Loading') && list.querySelector('td, .hint');
    }""")
    assert_readable(page, "main h1")
    assert_readable(page, "#alerts td, #alerts .hint")
    both_sizes(page, "dark-alerts")
    page.click("#nav a[data-page=dashboards]")
    page.locator("#dashboard-list").wait_for()
    assert_readable(page, "#dashboard-list td")
    assert_readable(page, "#dashboard-list th")
    both_sizes(page, "dark-dashboards")
