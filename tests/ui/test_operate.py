"""What an operator meets on the first day (#26): errors a person can read (item 6) and the pages
reachable on a phone (item 4), in Debian's chromium against real server processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import ServerProcess
from tests.ui.conftest import Demo, login, playwright_api, screenshot
from tests.ui.test_search_tools import both_sizes

#: what the UI says when no answer came (ui/src/api.ts UNREACHABLE)
UNREACHABLE = "The server cannot be reached"
#: every page of the nav, as main.ts lists them (dashboards and alerts show once their API answers,
#: settings to admin keys: the tests log in with the bootstrap admin)
PAGES = {"search": "Search", "tail": "Live tail", "trace": "Traces", "services": "Services",
         "dashboards": "Dashboards", "alerts": "Alerts", "settings": "Settings"}
PHONE = {"width": 390, "height": 844}


class Console:
    """What a page left in the console and which answers were 401s."""

    def __init__(self, page: playwright_api.Page) -> None:
        self.errors: list[str] = []
        self.unauthorized: list[str] = []
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("response", lambda r: self.unauthorized.append(r.url) if r.status == 401 else None)


@pytest.fixture
def context(browser: playwright_api.Browser) -> Iterator[playwright_api.BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()


def test_no_401_in_the_console_on_page_loads(context: playwright_api.BrowserContext, demo: Demo) -> None:
    """Logged out, the login form; logged in, every page load: neither asks anything with no key."""
    page = context.new_page()
    console = Console(page)
    login(page, demo, "/ui/search")
    page.wait_for_selector("#nav a[data-page=search]")
    for path in ("/ui/search", "/ui/tail", "/ui/services", "/ui/search"):
        page.goto(demo.server.url + path)  # a full page load, as a reload or a bookmark does
        page.wait_for_selector(f"#nav a[data-page={path[4:]}].active")
    page.reload()
    page.wait_for_selector("#nav a[data-page=search].active")
    assert not console.unauthorized, f"401 answers on page loads: {console.unauthorized}"
    assert not console.errors, f"console errors: {console.errors}"
    context.clear_cookies()
    page.evaluate("sessionStorage.clear()")
    page.goto(demo.server.url + "/ui/search")
    page.wait_for_selector("#login-form")
    assert not console.unauthorized and not console.errors, (console.unauthorized, console.errors)
    both_sizes(page, "login")


def test_a_server_that_is_gone_is_said_in_words(context: playwright_api.BrowserContext, tmp_path: Path) -> None:
    """The server stops under an open page: the search, the tail and the login form say it cannot be
    reached, never the browser's "Failed to fetch"; a server with auth off shows no login form."""
    server = ServerProcess(tmp_path / "data", "--no-auth", "--batch-max-age", "0.2").start()
    try:
        server.ingest([{"service": "gone", "message": "before the server stopped"}])
        page = context.new_page()
        page.goto(server.url + "/ui/search?q=service%3Agone")
        page.wait_for_selector("#nav a[data-page=search].active")  # no login: auth is off
        assert "/ui/login" not in page.url
        page.wait_for_function("() => document.body.innerText.includes('before the server stopped')")
        tail = context.new_page()
        tail.goto(server.url + "/ui/tail?q=service%3Agone")
        tail.wait_for_selector("#tail-lines[data-subscribed]", state="attached")
    finally:
        server.kill9()  # gone, not shut down (a stop ends the tail's stream cleanly, and it says so)
    # the tail's stream breaks under it: it says the connection was lost
    tail.wait_for_selector("#query-error:not([hidden])")
    tail_error = tail.locator("#query-error").inner_text()
    assert "connection to the server was lost" in tail_error, tail_error
    assert "fetch" not in tail_error.lower() and "network error" not in tail_error.lower(), tail_error
    # a new search finds nobody there
    page.fill("#query", "service:gone before")
    page.press("#query", "Enter")
    page.wait_for_selector("#query-error:not([hidden])")
    error = page.locator("#query-error").inner_text()
    assert UNREACHABLE in error and "Failed to fetch" not in error, error
    both_sizes(page, "unreachable-search")
    tail.close()


def test_login_form_says_the_server_cannot_be_reached(context: playwright_api.BrowserContext,
                                                      tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    page = context.new_page()
    try:
        page.goto(server.url + "/ui/search")
        page.wait_for_selector("#login-form")
    finally:
        server.stop()
    page.fill("#api-key", "lh_whatever")
    page.press("#api-key", "Enter")
    page.wait_for_function("() => document.querySelector('#login-error').textContent.length > 0")
    assert UNREACHABLE in page.locator("#login-error").inner_text()
    both_sizes(page, "unreachable-login")


def _menu_open(page: playwright_api.Page) -> bool:
    return bool(page.evaluate("() => document.querySelector('.topbar').classList.contains('menu-open')"))


def _inside_the_screen(page: playwright_api.Page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5


def test_phone_nav_is_a_menu_that_reaches_every_page(context: playwright_api.BrowserContext, demo: Demo) -> None:
    page = context.new_page()
    page.set_viewport_size(PHONE)
    console = Console(page)
    login(page, demo, "/ui/search")
    toggle = page.locator("#nav-toggle")
    toggle.wait_for()
    assert "Search" in toggle.inner_text()
    assert not page.locator("#nav").is_visible(), "the links are in the menu, not squeezed into the bar"
    # nothing in the bar leaves the screen (the brand, the menu button, Log out)
    for selector in (".topbar .brand", "#nav-toggle", "#logout"):
        assert _inside_the_screen(page, selector), selector
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "true"
    page.locator("#nav").wait_for(state="visible")
    shown = page.locator("#nav a").evaluate_all("els => els.map(e => e.dataset.page)")
    assert set(shown) == set(PAGES), shown
    both_sizes_menu(page)
    for name, label in PAGES.items():
        if not _menu_open(page):
            toggle.click()
        item = page.locator(f"#nav a[data-page={name}]")
        item.wait_for(state="visible")
        assert _inside_the_screen(page, f"#nav a[data-page={name}]"), name
        assert item.inner_text() == label
        item.click()
        page.wait_for_function(f"() => location.pathname.startsWith('/ui/{name}')")
        page.wait_for_selector(f"#nav a[data-page={name}].active", state="attached")
        assert not _menu_open(page), "choosing a page closes the menu"
        assert label in toggle.inner_text(), "the button names the page you are on"
    # Escape and a click outside close it too
    toggle.click()
    page.keyboard.press("Escape")
    assert not _menu_open(page)
    toggle.click()
    page.mouse.click(200, 600)
    assert not _menu_open(page)
    # on a laptop the links are in the bar and the button is gone
    page.set_viewport_size({"width": 1440, "height": 900})
    assert page.locator("#nav").is_visible() and not toggle.is_visible()
    assert page.locator("#nav a").count() == len(PAGES)
    screenshot(page, "nav-1440")
    assert not console.errors, console.errors


def both_sizes_menu(page: playwright_api.Page) -> None:
    """The opened menu on the phone (the state under test), kept for a person to look at."""
    page.wait_for_timeout(100)
    screenshot(page, "nav-menu-390")
