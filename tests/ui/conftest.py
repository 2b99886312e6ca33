"""Browser fixtures: one real server with the demo stack's records, one headless Debian chromium.

The server and the browser are shared by the module (starting either takes seconds); every test
gets a fresh browser context, so no session storage or page state leaks between tests.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.conftest import ROOT, ServerProcess

from logharbor.demo.lab import Shipper, collect
from logharbor.demo.traffic import RequestStory, TrafficGenerator
from logharbor.server.ui import DIST_DIR

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts" / "ui"
N_STORIES = 500
SPAN_S = 50 * 60  # the stories cover the 50 minutes before the tests start


@dataclass
class Demo:
    server: ServerProcess
    stories: list[RequestStory]
    records: int
    start_ms: int
    end_ms: int


# Tables whose width comes from their data (a long template, a big count) and that no box scrolls:
# the page itself would scroll sideways on a phone whenever the data is long (the services page's
# pattern changes did, on one day's data and not another's), so the rule is structural: every
# `table.grid` sits inside a `.table-box` (docs/ui.md's phone rule)
BARE_TABLES = """() => [...document.querySelectorAll('table.grid')].filter(t => !t.closest('.table-box'))
    .map(t => (t.id ? '#' + t.id : 'table.' + [...t.classList].join('.')))"""


def assert_tables_scroll_in_a_box(page: playwright_api.Page, where: str) -> None:
    bare = page.evaluate(BARE_TABLES)
    assert not bare, f"{where}: tables outside a scrolling box (a long value scrolls the page sideways): {bare}"


def _ms(rfc3339: str) -> int:
    return int(datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="session", autouse=True)
def built_ui() -> None:
    if not (DIST_DIR / "index.html").is_file():
        pytest.fail("the web UI is not built: run scripts/install.sh (npm ci && npm run build in ui/)")
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run scripts/install.sh --test")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """A server holding N_STORIES requests of the reference stack (ALB, NGINX, app)."""
    server = ServerProcess(tmp_path_factory.mktemp("ui") / "data", "--batch-max-age", "0.2").start()
    now_ns = time.time_ns()
    start_ns = now_ns - SPAN_S * 10**9
    stories = list(TrafficGenerator(seed=9, rate_5xx=0.15).stories(
        N_STORIES, start_ns=start_ns, spacing_ns=SPAN_S * 10**9 // N_STORIES))
    shipper = Shipper(server.url, api_key=server.api_key)
    total = shipper.ship(collect(stories))
    shipper.close()
    assert server.wait_rows(total) == total
    # the exact extent of the data (slow requests log after "now"): searches use it as their range
    extent = server.query("* | stats min(timestamp) as a, max(timestamp) as b")["rows"][0]
    first_ms = _ms(extent["a"])
    last_ms = _ms(extent["b"])
    try:
        yield Demo(server, stories, total, first_ms, last_ms + 1)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[playwright_api.Browser]:
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


class PageProbe:
    """A page plus what it reported: script errors and requests that left the server's origin."""

    def __init__(self, page: playwright_api.Page, origin: str) -> None:
        self.page = page
        self.errors: list[str] = []
        self.foreign: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on("console", lambda msg: self.errors.append(msg.text)
                if msg.type == "error" and "Content Security Policy" in msg.text else None)
        page.on("request", lambda req: None if req.url.startswith((origin, "data:")) else self.foreign.append(req.url))


@contextmanager
def watched_page(browser: playwright_api.Browser, url: str, *, height: int = 900) -> Iterator[PageProbe]:
    """A fresh browser context's page on the server at ``url``; on the way out the page must have
    reported no error and called nothing outside that server."""
    context = browser.new_context(viewport={"width": 1400, "height": height})
    context.set_default_timeout(15_000)
    watched = PageProbe(context.new_page(), url)
    try:
        yield watched
    finally:
        context.close()
    assert not watched.errors, f"the page reported errors: {watched.errors}"
    assert not watched.foreign, f"the page called out of the server: {watched.foreign}"


@pytest.fixture
def probe(browser: playwright_api.Browser, demo: Demo) -> Iterator[PageProbe]:
    with watched_page(browser, demo.server.url) as watched:
        yield watched


def screenshot(page: playwright_api.Page, name: str, *, full_page: bool = False) -> Path:
    """Keep what the browser showed under test-artifacts/ui/ for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def login(page: playwright_api.Page, demo: Demo, path: str = "/ui/search") -> None:
    """Open ``path``, meet the login form, give the key, land on ``path``."""
    page.goto(demo.server.url + path)
    page.wait_for_selector("#login-form")
    page.fill("#api-key", demo.server.api_key)
    page.press("#api-key", "Enter")
    page.wait_for_function("() => !location.pathname.startsWith('/ui/login')")
