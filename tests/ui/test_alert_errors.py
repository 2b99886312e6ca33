"""A rule the server refuses is explained field by field, in the search page's Create alert dialog
and in the Alerts page's rule form: a bad query, threshold, duration or unknown channel shows
beside that field (the 400's ``error.detail.fields``), not as one banner, and every input keeps
what the user typed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest
from tests.conftest import ServerProcess
from tests.ui.conftest import playwright_api, screenshot, watched_page


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("alert-errors") / "data", "--batch-max-age", "0.2").start()
    try:
        now = time.time()
        server.ingest([{"timestamp": now - i, "service": "shop", "level": "ERROR", "message": f"boom {i}",
                        "http": {"status": 500 if i % 2 else 200}} for i in range(20)])
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(browser: playwright_api.Browser, srv: ServerProcess) -> Iterator[playwright_api.Page]:
    with watched_page(browser, srv.url, height=1000) as watched:
        yield watched.page


def _login(page: playwright_api.Page, srv: ServerProcess, path: str) -> None:
    page.goto(srv.url + path)
    page.wait_for_selector("#login-form")
    page.fill("#api-key", srv.api_key)
    page.press("#api-key", "Enter")
    page.wait_for_function("() => !location.pathname.startsWith('/ui/login')")


def _api(srv: ServerProcess, method: str, path: str, **kwargs: object) -> httpx.Response:
    with srv.client() as c:
        return c.request(method, path, **kwargs)  # type: ignore[arg-type]


def _error(page: playwright_api.Page, form: str, field: str) -> str:
    """The visible message beside ``field`` of ``form`` ('' when none is shown)."""
    return str(page.evaluate("([form, f]) => [...document.querySelectorAll(`${form} .field-error`)].filter((b) => "
                             "b.dataset.errorFor === f && !b.hidden).map((b) => b.textContent).join(' | ')",
                             [form, field]))


def _marked(page: playwright_api.Page, form: str) -> list[str]:
    return list(page.evaluate("form => [...document.querySelectorAll(`${form} .field-error`)].filter((b) => !b.hidden)"
                              ".map((b) => b.dataset.errorFor)", form))


def _wait_marked(page: playwright_api.Page, form: str, fields: list[str]) -> None:
    page.wait_for_function("([form, want]) => JSON.stringify([...document.querySelectorAll(`${form} .field-error`)]"
                           ".filter((b) => !b.hidden).map((b) => b.dataset.errorFor)) === JSON.stringify(want)",
                           arg=[form, fields])


def test_create_alert_dialog_puts_each_refusal_beside_its_field(page: playwright_api.Page, srv: ServerProcess) -> None:
    channel = {"kind": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}}
    assert _api(srv, "PUT", "/api/v1/channels/soon-gone", json=channel).status_code in (200, 201)
    assert _api(srv, "POST", "/api/v1/alerts/rules", json={"name": "taken", "query": "*", "condition": "count > 1"}
                ).status_code == 201
    _login(page, srv, "/ui/search?" + urlencode({"q": "level:ERROR", "from": "now-1h", "to": "now"}))
    page.wait_for_selector("#results li.record")
    page.click("#action-alert")
    form = "#alert-dialog"
    page.wait_for_selector("#alert-channels input[value=soon-gone]")
    page.wait_for_selector("#alert-preview .preview-verdict")

    # a bad query and two bad durations at once: each beside its own field, the preview says where
    page.fill("#alert-query", "level:((")
    page.fill("#alert-window", "5 parsecs")
    page.fill("#alert-for", "-3m")
    _wait_marked(page, form, ["query", "window", "for"])
    assert "is not a duration" in _error(page, form, "window") and "'-3m'" in _error(page, form, "for")
    assert "at 8" in _error(page, form, "query")
    assert "see the fields marked above" in page.inner_text("#alert-refused")
    assert page.get_attribute("#alert-window", "aria-invalid") == "true"
    screenshot(page, "alert-dialog-field-errors")
    page.fill("#alert-window", "5m")
    page.fill("#alert-for", "0s")
    _wait_marked(page, form, ["query"])
    page.fill("#alert-query", "level:ERROR")
    page.wait_for_selector("#alert-preview .preview-verdict")
    assert _marked(page, form) == []

    # a ratio threshold out of range
    page.select_option("#alert-kind", "ratio")
    page.fill("#alert-threshold", "5")
    _wait_marked(page, form, ["condition"])
    assert "between 0 and 1" in _error(page, form, "condition")
    page.fill("#alert-threshold", "0.2")
    page.wait_for_selector("#alert-preview .preview-verdict")

    # saving: a channel removed meanwhile, then a name in use — each beside its field, nothing retyped
    page.check("#alert-channels input[value=soon-gone]")
    page.wait_for_selector("#alert-preview .preview-verdict")
    assert _api(srv, "DELETE", "/api/v1/channels/soon-gone").status_code == 200
    page.fill("#alert-name", "taken")
    page.click("#alert-submit")
    _wait_marked(page, form, ["name"])
    assert "already called “taken”" in _error(page, form, "name")
    assert page.evaluate("() => document.activeElement?.id") == "alert-name"
    page.fill("#alert-name", "five hundreds")
    page.click("#alert-submit")
    _wait_marked(page, form, ["channels"])
    assert "no channel named 'soon-gone'" in _error(page, form, "channels")
    assert page.inner_text("#alert-error") == ""
    assert (page.input_value("#alert-name"), page.input_value("#alert-query"), page.input_value("#alert-threshold"),
            page.input_value("#alert-kind")) == ("five hundreds", "level:ERROR", "0.2", "ratio")
    screenshot(page, "alert-dialog-channel-error")
    page.fill("#alert-name", "five hundreds!")  # the preview asks again: the channel is named there too
    _wait_marked(page, form, ["channels"])
    assert "see the fields marked above" in page.inner_text("#alert-refused")
    page.fill("#alert-name", "five hundreds")
    page.uncheck("#alert-channels input[value=soon-gone]")
    page.wait_for_selector("#alert-preview .preview-verdict")
    page.click("#alert-submit")
    page.wait_for_selector("#alert-done:has-text('Created “five hundreds”')")
    assert _marked(page, form) == []
    assert _api(srv, "GET", "/api/v1/alerts/rules/five hundreds").json()["spec"]["condition"]["threshold"] == 0.2


def test_rule_form_puts_each_refusal_beside_its_field(page: playwright_api.Page, srv: ServerProcess) -> None:
    _login(page, srv, "/ui/alerts")
    page.click("#new-rule")
    form = "#rule-form"
    page.wait_for_selector("#rule-name")
    page.fill("#rule-name", "form errors")
    page.fill("#rule-query", "level:ERROR")
    page.fill("#rule-window", "soon")
    page.fill("#rule-interval", "later")
    _wait_marked(page, form, ["window", "interval"])
    assert "'soon' is not a duration" in _error(page, form, "window")
    assert "see the fields marked above" in page.inner_text("#rule-refused")
    screenshot(page, "rule-form-field-errors")
    page.fill("#rule-window", "5m")
    page.fill("#rule-interval", "5s")
    _wait_marked(page, form, ["interval"])
    assert "at least 10s" in _error(page, form, "interval")
    page.fill("#rule-interval", "1m")
    page.click("#rule-save")
    page.wait_for_function("() => !document.querySelector('#rule-form')")
    assert _api(srv, "GET", "/api/v1/alerts/rules/form errors").status_code == 200
