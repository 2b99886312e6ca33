"""Every place the web UI turns a stored value into text shows it as the API wrote it.

JSON.parse reads ``-0.0`` as -0, which String() prints ``0`` (and JSON.stringify too: the JSON tab
said 0), ``1.0`` as 1 (a float shown as an integer, beside a real 1), ``1e+16`` as
10000000000000000; the sidebar rounded to 6 decimals (``5e-324`` was 0); a ``| fields`` table
rounded record values as if they were measures. Here the record list's columns, the opened record
(table and JSON), the field sidebar's values (values of two JSON types apart: ``true`` and ``1``,
``"7"`` and ``7``), a click on a value, a ``| fields`` table, the trace page and the live tail
each show the stored text; an integer beyond 2^53 keeps its digits on every path.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from tests.conftest import ServerProcess
from tests.ui.conftest import playwright_api, screenshot, watched_page
from tests.ui.settings_kit import login

from logharbor import exactjson

SERVICE = "exacttest"
TRACE = "5759e988bd862e3fe1be46a994272793"
BIG = 2**64 + 1
#: the record whose values a careless printer changes, and the text each must show
TRICKY: dict[str, object] = {"z": -0.0, "one": 1.0, "whole": 1e16, "huge": 1e300, "tiny": 5e-324,
                             "big": BIG, "flag": True, "text7": "7", "nan": "NaN",
                             "when": "2026-01-02T03:04:05.123456789Z", "ratio": 0.30000000000000004}
SHOWN = {"z": "-0.0", "one": "1.0", "whole": "1e+16", "huge": "1e+300", "tiny": "5e-324", "big": str(BIG),
         "flag": "true", "text7": "7", "nan": "NaN", "when": "2026-01-02T03:04:05.123456789Z",
         "ratio": "0.30000000000000004"}
#: a record whose values a wrong filter (1 for true, a rounded big integer) would also find
PLAIN: dict[str, object] = {"z": 0.0, "one": 1, "whole": 10**16, "huge": 1, "tiny": 0, "big": BIG - 2,
                            "flag": 1, "text7": 7, "nan": "x", "when": "x", "ratio": 0.3}


def _post(server: ServerProcess, records: list[dict]) -> None:  # type: ignore[type-arg]
    """NDJSON written exactly (orjson refuses integers beyond 64 bits)."""
    body = b"\n".join(exactjson.dumps(r) for r in records)
    response = httpx.post(server.url + "/api/v1/logs", content=body, timeout=30,
                          headers={**server.headers, "content-type": "application/x-ndjson"})
    response.raise_for_status()
    assert response.json()["accepted"] == len(records), response.text


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("exact") / "data", "--batch-max-age", "0.2").start()
    now = time.time()
    try:
        before = server.store_rows()
        _post(server, [{"timestamp": now - 2, "service": SERVICE, "message": "record tricky", "trace_id": TRACE,
                        **TRICKY},
                       {"timestamp": now - 3, "service": SERVICE, "message": "record plain", **PLAIN}])
        assert server.wait_rows(before + 2) >= before + 2
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(browser: playwright_api.Browser, server: ServerProcess) -> Iterator[playwright_api.Page]:
    with watched_page(browser, server.url) as watched:
        yield watched.page


def _login(page: playwright_api.Page, server: ServerProcess, path: str) -> None:
    login(page, server, server.api_key, path)


def _search(q: str, **extra: str) -> str:
    return "/ui/search?" + urlencode({"q": q, "from": "now-1h", "to": "now+1h", **extra})


def _row(page: playwright_api.Page, marker: str, where: str = "#results") -> playwright_api.Locator:
    return page.locator(f"{where} li.record", has=page.locator(".summary", has_text=f"record {marker}")).first


def _opened_values(row: playwright_api.Locator) -> dict[str, str]:
    if not row.locator(".details").count():
        row.locator(".summary").click()
    return row.evaluate("li => Object.fromEntries([...li.querySelectorAll('table.fields tr')]"
                        ".map((tr) => [tr.dataset.field, tr.querySelector('.value').textContent]))")


def _settled(page: playwright_api.Page, before: str) -> str:
    page.wait_for_function("q => document.querySelector('#query').value !== q", arg=before)
    page.wait_for_function("() => !document.querySelector('#result-summary').textContent.startsWith('Searching')")
    return page.input_value("#query")


def _messages(page: playwright_api.Page) -> list[str]:
    return page.locator("#results li.record :is(.msg, .cell[data-col=message])").all_inner_texts()


def test_the_list_the_opened_record_and_its_json_show_the_stored_text(page: playwright_api.Page,
                                                                      server: ServerProcess) -> None:
    base = f"service:{SERVICE}"
    _login(page, server, _search(base, cols="message,z,one,whole,flag,big"))
    page.wait_for_selector("#results li.record")
    row = _row(page, "tricky")
    cells = row.evaluate("li => Object.fromEntries([...li.querySelectorAll('.cell')].map((c) => [c.dataset.col, c.textContent]))")
    assert cells == {"message": "record tricky", **{k: SHOWN[k] for k in ("z", "one", "whole", "flag", "big")}}, cells
    values = _opened_values(row)
    assert {k: values[k] for k in SHOWN} == SHOWN, values
    screenshot(page, "exact-record-table")
    row.locator("[data-tab=json]").click()
    text = row.locator("pre.json").inner_text()
    for key, value in TRICKY.items():  # the API's text: orjson's, as the server writes it
        assert f'"{key}": {exactjson.dumps(value).decode()}' in text, (key, text)
    screenshot(page, "exact-record-json")
    # a click filters on the stored text: true is not 1, the big integer its digits, -0.0 its sign
    for field, term, found in (("flag", "flag:true", ["record tricky"]),
                               ("big", f"big:{BIG}", ["record tricky"]),
                               ("z", 'z:"-0.0"', None), ("one", "one:1.0", None)):
        _opened_values(_row(page, "tricky"))
        _row(page, "tricky").evaluate("(li, f) => [...li.querySelectorAll('table.fields tr')]"
                                      ".find((tr) => tr.dataset.field === f).querySelector('[data-action=include]').click()",
                                      field)
        q = _settled(page, base)
        assert q == f"{base} AND {term}", q
        assert "record tricky" in _messages(page)
        if found is not None:  # (-0.0 = 0.0 and 1.0 = 1 as numbers: docs/query.md, attributes)
            assert _messages(page) == found, (q, _messages(page))
        page.fill("#query", base)
        page.press("#query", "Enter")
        page.wait_for_function("() => document.querySelectorAll('#results li.record').length === 2")


def test_sidebar_values_of_two_json_types_read_apart(page: playwright_api.Page, server: ServerProcess) -> None:
    base = f"service:{SERVICE}"
    _login(page, server, _search(base))
    page.wait_for_selector("#results li.record")
    expected = {"z": {"-0.0", "0.0"}, "flag": {"true", "1"}, "text7": {'"7"', "7"}, "one": {"1.0", "1"},
                "tiny": {"5e-324", "0"}, "big": {str(BIG), str(BIG - 2)}}
    for field, labels in expected.items():
        page.wait_for_function("n => [...document.querySelectorAll('#fields li.field')].some((x) => x.dataset.field === n)",
                               arg=field)
        page.evaluate("n => [...document.querySelectorAll('#fields li.field')].find((x) => x.dataset.field === n)"
                      ".querySelector('.field-name').click()", field)
        shown = page.evaluate("n => [...[...document.querySelectorAll('#fields li.field')].find((x) => "
                              "x.dataset.field === n).querySelectorAll('li.fv .fv-value')].map((b) => b.textContent)", field)
        assert set(shown) == labels, (field, shown)
    screenshot(page, "exact-sidebar")
    # the string "7" filters on the string: the query finds both by the documented rule, but the
    # boolean true finds only itself
    page.evaluate("() => [...[...document.querySelectorAll('#fields li.field')].find((x) => x.dataset.field === 'flag')"
                  ".querySelectorAll('li.fv')].find((x) => x.dataset.value === 'true').querySelector('button.fv-value').click()")
    q = _settled(page, base)
    assert q == f"{base} AND flag:true" and _messages(page) == ["record tricky"], (q, _messages(page))
    # an integer beyond 2^53 (and -0.0, 1.0) was shown but not clickable: it was an object
    page.fill("#query", base)
    page.press("#query", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#results li.record').length === 2")
    # (the field opened above stays open)
    page.wait_for_function("v => [...document.querySelectorAll('#fields li.field[data-field=big] li.fv')]"
                           ".some((x) => x.dataset.value === v)", arg=str(BIG))
    page.evaluate("v => [...[...document.querySelectorAll('#fields li.field')].find((x) => x.dataset.field === 'big')"
                  ".querySelectorAll('li.fv')].find((x) => x.dataset.value === v).querySelector('button.fv-value').click()",
                  str(BIG))
    q = _settled(page, base)
    assert q == f"{base} AND big:{BIG}" and _messages(page) == ["record tricky"], (q, _messages(page))


def test_a_fields_table_shows_record_values_unrounded(page: playwright_api.Page, server: ServerProcess) -> None:
    q = f"service:{SERVICE} | fields message, z, one, whole, huge, tiny, ratio"
    _login(page, server, _search(q, agg="table"))
    page.wait_for_selector("#table-result tbody tr")
    rows = page.evaluate("() => [...document.querySelectorAll('#table-result tbody tr')].map((tr) => "
                         "[...tr.querySelectorAll('td')].map((td) => td.textContent))")
    tricky = next(r for r in rows if r[0] == "record tricky")
    assert tricky[1:] == [SHOWN[k] for k in ("z", "one", "whole", "huge", "tiny", "ratio")], tricky
    screenshot(page, "exact-fields-table")
    # measures are still rounded for reading, and never to a different number's text
    # (5e-324 was rounded to 0, 1e+300 grouped into 301 digits)
    page.fill("#query", f"service:{SERVICE} | stats count() as n, max(tiny) as m, max(huge) as h, avg(ratio) as r")
    page.press("#query", "Enter")
    page.wait_for_function("() => document.querySelector('#table-result th:nth-child(2)')?.textContent === 'm'")
    cells = page.evaluate("() => [...document.querySelectorAll('#table-result tbody td')].map((td) => td.textContent)")
    assert cells == ["2", "5e-324", "1e+300", "0.3"], cells


def test_the_trace_page_and_the_live_tail_show_the_stored_text(page: playwright_api.Page,
                                                               server: ServerProcess) -> None:
    _login(page, server, f"/ui/trace/{TRACE}")
    row = _row(page, "tricky", "#trace-records")
    row.wait_for()
    values = _opened_values(row)
    assert {k: values[k] for k in SHOWN} == SHOWN, values
    screenshot(page, "exact-trace")
    page.goto(server.url + "/ui/tail?" + urlencode({"q": f"service:{SERVICE}"}))
    page.wait_for_selector("#tail-lines[data-subscribed]", state="attached")
    _post(server, [{"timestamp": time.time(), "service": SERVICE, "message": "record live", **TRICKY}])
    live = _row(page, "live", "#tail-lines")
    live.wait_for()
    values = _opened_values(live)
    assert {k: values[k] for k in SHOWN} == SHOWN, values
    screenshot(page, "exact-tail")
