"""What the settings pages' browser tests share (tests/ui/test_settings.py): logging in with a given
key, calling the API, a webhook receiver on loopback, the server's message under a field, and the
screenshots of a state at both sizes in both themes (with the phone's no-sideways-scroll check)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from tests.conftest import ROOT, ServerProcess
from tests.ui.conftest import assert_tables_scroll_in_a_box, playwright_api
from tests.ui.test_theme import assert_readable

SHOTS = ROOT / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
#: the innermost elements reaching past the window's right edge (what makes a page scroll sideways)
OVERFLOWING = """() => [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1
    && ![...e.children].some(c => c.getBoundingClientRect().right > innerWidth + 1))
    .slice(0, 5).map(e => e.tagName + '.' + e.className + ': ' + (e.textContent || '').slice(0, 40))"""

class Receiver:
    """A webhook receiver on loopback that keeps what it was sent."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.bodies.append(self.rfile.read(int(self.headers.get("content-length") or 0)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def login(page: playwright_api.Page, server: ServerProcess, key: str, path: str) -> None:
    page.goto(server.url + path)
    page.wait_for_selector("#login-form")
    page.fill("#api-key", key)
    page.press("#api-key", "Enter")
    page.wait_for_function("() => !location.pathname.startsWith('/ui/login')")


def api(server: ServerProcess, method: str, path: str, key: str | None = None, **kw) -> httpx.Response:  # type: ignore[no-untyped-def]
    headers = {"authorization": f"Bearer {key or server.api_key}", **kw.pop("headers", {})}
    return httpx.request(method, server.url + path, headers=headers, timeout=30, **kw)


def shots(page: playwright_api.Page, name: str, focus: str | None = None) -> list[Path]:
    """The state at desktop and phone sizes, light and dark; on the phone, nothing scrolls sideways."""
    saved = []
    SHOTS.mkdir(parents=True, exist_ok=True)
    for scheme in ("light", "dark"):
        page.emulate_media(color_scheme=scheme)
        for size in (DESKTOP, PHONE):
            page.set_viewport_size(size)
            page.wait_for_function(f"() => innerWidth === {size['width']}")
            if focus:
                page.locator(focus).first.evaluate("e => e.scrollIntoView({block: 'start'})")
            else:
                page.evaluate("window.scrollTo(0, 0)")
            if size is PHONE:
                assert_tables_scroll_in_a_box(page, name)
                wide = page.evaluate("document.documentElement.scrollWidth - innerWidth")
                assert wide <= 0, (f"{name}: the page scrolls {wide} px sideways at 390 px ({scheme})", page.evaluate(
                    OVERFLOWING))
            path = SHOTS / f"settings-{name}-{size['width']}-{scheme}.png"
            page.screenshot(path=str(path))
            saved.append(path)
        if scheme == "dark":
            assert_readable(page, ".settings-tabs a.tab, h1, .hint:not(:empty)")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size(DESKTOP)
    return saved


def open_tab(page: playwright_api.Page, tab: str) -> None:
    page.click(f".settings-tabs a[data-tab={tab}]")
    page.wait_for_selector(f"#settings-{tab} h2")


def error_for(page: playwright_api.Page, form: str, name: str) -> str:
    box = page.locator(f"{form} [data-error-for='{name}']")
    box.wait_for(state="visible")
    return box.inner_text()
