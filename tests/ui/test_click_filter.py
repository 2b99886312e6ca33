"""A click on a value filters on exactly that key and value, whatever the key's shape.

Keys with a space, a dot inside the key, a backtick, a backslash, a colon, a digit first, non-ASCII
letters, a column's name (``status`` beside the typed http.status), nested under such keys; values
with quotes, backslashes and wildcards. Each has a decoy a wrong filter would also find (the nested
``a.b`` beside the literal key ``"a.b"``, ``abc`` beside ``a*``). From the record detail (+ and −),
from the field sidebar's top values, and from a record of the trace view, the query the click
builds must find exactly that record (or, excluded, every record but it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import quote, urlencode

import pytest
from tests.conftest import ServerProcess
from tests.ui.conftest import playwright_api, screenshot, watched_page

SERVICE = "clicktest"
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
#: (the record's marker, its awkward attributes, the name the query reaches the first one by)
SHAPES: list[tuple[str, dict[str, object], str]] = [
    ("space", {"user name": "alice smith"}, "`user name`"),
    ("dot", {"a.b": "v1"}, "`a.b`"),
    ("backtick", {"we`ird": "x1"}, "`we\\`ird`"),
    ("backslash", {"back\\slash": "b1"}, "`back\\\\slash`"),
    ("colon", {"k:v": "c1"}, "`k:v`"),
    ("digit", {"1st": "one"}, "`1st`"),
    ("nonascii", {"müşteri": "çağrı"}, "müşteri"),
    ("nonascii-space", {"用户 名": "张三"}, "`用户 名`"),
    ("column", {"status": "ok"}, "attributes.status"),
    ("nested", {"order": {"line items": {"sku": "A-1"}}}, "order.`line items`.sku"),
    ("quotes", {"q": 'he said "hi" \\ *x?'}, "q"),
    ("wildcard", {"w": "a*"}, "w"),
]
#: records a wrong filter would find as well
DECOYS: list[tuple[str, dict[str, object]]] = [
    ("decoy-nested", {"a": {"b": "v1"}}),  # `a.b` is only the literal key; bare a.b is both
    ("decoy-wild", {"w": "abc", "q": 'he said "hi" \\ axb?'}),
    ("decoy-status", {"http": {"status": 200}}),
    ("rid", {"request_id": 'req "7" *x'}),  # a client's request id, opened in the trace view
    ("rid-decoy", {"request_id": "req"}),
]


@pytest.fixture(scope="module")
def awkward(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("click") / "data", "--batch-max-age", "0.2").start()
    now = time.time()
    records = [{"timestamp": now - i, "service": SERVICE, "message": f"record {marker}", **attrs,
                **({"trace_id": TRACE} if marker == "space" else {})}
               for i, (marker, attrs, _) in enumerate([*SHAPES, *((m, a, "") for m, a in DECOYS)])]
    try:
        server.ingest(records)
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(browser: playwright_api.Browser, awkward: ServerProcess) -> Iterator[playwright_api.Page]:
    with watched_page(browser, awkward.url) as watched:
        yield watched.page


def _login(page: playwright_api.Page, server: ServerProcess, q: str) -> None:
    page.goto(server.url + "/ui/search?" + urlencode({"q": q, "from": "now-1h", "to": "now+1h"}))
    page.wait_for_selector("#login-form")
    page.fill("#api-key", server.api_key)
    page.press("#api-key", "Enter")
    page.wait_for_selector("#results li.record")


def _settled(page: playwright_api.Page, before: str) -> str:
    """Wait for the query a click made to run; its text."""
    page.wait_for_function("q => document.querySelector('#query').value !== q", arg=before)
    page.wait_for_function("() => !document.querySelector('#result-summary').textContent.startsWith('Searching')")
    assert page.locator("#query-error").is_hidden(), page.inner_text("#query-error")
    return page.input_value("#query")


def _messages(page: playwright_api.Page) -> list[str]:
    return page.locator("#results li.record .msg").all_inner_texts()


def _open(page: playwright_api.Page, marker: str) -> playwright_api.Locator:
    row = page.locator("#results li.record", has=page.locator(".msg", has_text=f"record {marker}")).first
    if not row.locator(".details").count():
        row.locator(".summary").click()
    return row


def _click_field(row: playwright_api.Locator, name: str, action: str) -> None:
    """Click + or − of the field whose query name is ``name`` (compared in the page, no CSS escaping)."""
    row.evaluate("(li, [name, action]) => [...li.querySelectorAll('table.fields tr')]"
                 ".find((tr) => tr.dataset.field === name)"
                 ".querySelector(`button[data-action=${action}]`).click()", [name, action])


ALL = len(SHAPES) + len(DECOYS)


def test_record_detail_include_and_exclude_find_exactly_that_record(page: playwright_api.Page,
                                                                     awkward: ServerProcess) -> None:
    base = f"service:{SERVICE}"
    _login(page, awkward, base)
    assert len(_messages(page)) == ALL
    for marker, _attrs, name in SHAPES:
        row = _open(page, marker)
        assert row.evaluate("(li, n) => [...li.querySelectorAll('table.fields tr')].some((tr) => tr.dataset.field === n)",
                            name), f"{marker}: no field named {name} in {row.locator('table.fields th').all_inner_texts()}"
        _click_field(row, name, "include")
        q = _settled(page, base)
        assert _messages(page) == [f"record {marker}"], f"{marker}: {q!r} found {_messages(page)}"
        if marker == "space":
            screenshot(page, "click-filter-include")
        page.fill("#query", base)
        page.press("#query", "Enter")
        page.wait_for_function("n => document.querySelectorAll('#results li.record').length === n", arg=ALL)
        _click_field(_open(page, marker), name, "exclude")
        q = _settled(page, base)
        shown = _messages(page)
        assert len(shown) == ALL - 1 and f"record {marker}" not in shown, f"{marker}: {q!r} kept {shown}"
        page.fill("#query", base)
        page.press("#query", "Enter")
        page.wait_for_function("n => document.querySelectorAll('#results li.record').length === n", arg=ALL)


def test_sidebar_top_values_find_exactly_that_record(page: playwright_api.Page, awkward: ServerProcess) -> None:
    base = f"service:{SERVICE}"
    _login(page, awkward, base)
    for marker, attrs, name in SHAPES:
        value = attrs[next(iter(attrs))]
        while isinstance(value, dict):
            value = value[next(iter(value))]
        # the sidebar of the whole match (not of the last click's) lists the field by this name
        page.wait_for_function("n => [...document.querySelectorAll('#fields li.field')].some((x) => "
                               "x.dataset.field === n)", arg=name)
        page.evaluate("n => [...document.querySelectorAll('#fields li.field')].find((x) => x.dataset.field === n)"
                      ".querySelector('.field-name').click()", name)
        page.wait_for_function("([n, v]) => [...document.querySelectorAll('#fields li.field')].find((x) => "
                               "x.dataset.field === n)?.querySelector(`li.fv`)", arg=[name, value])
        page.evaluate("([n, v]) => [...[...document.querySelectorAll('#fields li.field')].find((x) => "
                      "x.dataset.field === n).querySelectorAll('li.fv')].find((x) => x.dataset.value === v)"
                      ".querySelector('button.fv-value').click()", [name, value])
        q = _settled(page, base)
        assert _messages(page) == [f"record {marker}"], f"{marker}: {q!r} found {_messages(page)}"
        if marker == "backtick":
            screenshot(page, "click-filter-sidebar")
        page.fill("#query", base)
        page.press("#query", "Enter")
        page.wait_for_function("n => document.querySelectorAll('#results li.record').length === n", arg=ALL)


def test_a_trace_view_record_filters_exactly(page: playwright_api.Page, awkward: ServerProcess) -> None:
    _login(page, awkward, f"service:{SERVICE}")
    page.goto(awkward.url + f"/ui/trace/{TRACE}")
    row = page.locator("#trace-records li.record").first
    row.wait_for()
    row.locator(".summary").click()
    _click_field(row, "`user name`", "include")
    page.wait_for_function("() => location.pathname === '/ui/search'")
    page.wait_for_selector("#results li.record")
    assert page.input_value("#query") == '`user name`:"alice smith"'
    assert _messages(page) == ["record space"]


def test_the_trace_view_searches_a_request_id_as_it_is(page: playwright_api.Page, awkward: ServerProcess) -> None:
    _login(page, awkward, f"service:{SERVICE}")
    page.goto(awkward.url + "/ui/trace/" + quote('req "7" *x', safe=""))
    page.wait_for_selector("#trace-records li.record")
    page.click("text=open in search")
    page.wait_for_function("() => location.pathname === '/ui/search'")
    page.wait_for_selector("#results li.record")
    assert page.input_value("#query") == 'request_id:"req \\"7\\" *x"'
    assert _messages(page) == ["record rid"]
