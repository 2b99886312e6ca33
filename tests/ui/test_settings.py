"""The settings pages (issue #26 item 1): channels, silences, API keys, retention and storage, saved
queries, in Debian's chromium against one real server process for the module.

Each flow goes end to end (the page writes through the API, the test reads back through the API
and, for a test send, from a real receiver on loopback); the server's 4xx messages show under the
field they name; a reader sees no settings page; a scoped admin's wider key is refused by the
server and the page says so. Every state is kept at 1280×800 and 390×844, light and dark, under
test-artifacts/screenshots/ (git-ignored), and no settings page scrolls sideways on a phone.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, quote, urlparse

import pytest
from tests.conftest import ServerProcess
from tests.ui.conftest import PageProbe, playwright_api
from tests.ui.settings_kit import DESKTOP, PHONE, Receiver, api, error_for, login, open_tab, shots

TABS = ("channels", "silences", "keys", "retention", "saved")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module, with a few records for the storage figures and an alert rule."""
    srv = ServerProcess(tmp_path_factory.mktemp("settings") / "data", "--batch-max-age", "0.2").start()
    try:
        srv.ingest([{"service": "checkout", "level": "ERROR", "message": f"payment failed {i}",
                     "instance": f"i-{i % 2}"} for i in range(40)]
                   + [{"service": "cart", "level": "INFO", "message": f"added {i}"} for i in range(60)])
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def page(browser: playwright_api.Browser, server: ServerProcess) -> Iterator[playwright_api.Page]:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(15_000)
    pg = context.new_page()
    watched = PageProbe(pg, server.url)
    try:
        yield pg
    finally:
        context.close()
    assert not watched.errors, f"the page reported errors: {watched.errors}"
    assert not watched.foreign, f"the page called out of the server: {watched.foreign}"


def test_a_reader_sees_no_settings_and_an_admin_does(page: playwright_api.Page, server: ServerProcess) -> None:
    reader = server.create_key("reader", name="ui reader")
    login(page, server, reader, "/ui/search")
    page.wait_for_selector("#nav a[data-page=search]")
    assert page.locator("#nav a[data-page=settings]").count() == 0
    for tab in TABS:  # typed or bookmarked: the page is not there for a reader
        page.goto(f"{server.url}/ui/settings/{tab}")
        page.wait_for_selector("#nav a[data-page=search].active")
        assert urlparse(page.url).path == "/ui/search"
        assert page.locator(".settings").count() == 0
    page.evaluate("sessionStorage.clear()")
    login(page, server, server.api_key, "/ui/search")
    page.wait_for_selector("#nav a[data-page=settings]")
    page.set_viewport_size(PHONE)  # on a phone, from the menu
    page.click("#nav-toggle")
    page.click("#nav a[data-page=settings]")
    page.wait_for_selector("#settings-channels h2")
    assert urlparse(page.url).path == "/ui/settings/channels"
    assert page.locator("#nav-toggle").inner_text().endswith("Settings")


def test_channels_create_test_send_secrets_never_shown_and_delete(page: playwright_api.Page, server: ServerProcess) -> None:
    receiver = Receiver()
    token = uuid.uuid4().hex
    name = f"ops-hook-{token[:6]}"
    try:
        login(page, server, server.api_key, "/ui/settings/channels")
        page.wait_for_selector("#channels h2")
        shots(page, "channels-empty")
        page.click("#new-channel")
        form = "#channel-form"
        page.fill(f"{form} input[name=name]", name)
        page.select_option(f"{form} select[name=kind]", "webhook")
        # what the API refuses is said under the field it is about
        page.fill(f"{form} input[name=url]", "ftp://example.com/x")
        page.click("#channel-save")
        assert "must start with http:// or https://" in error_for(page, form, "url")
        page.fill(f"{form} input[name=url]", f"{receiver.url}/hook/{token}")
        page.fill(f"{form} input[name=secret]", "short")
        page.click("#channel-save")
        assert "at least 8 characters" in error_for(page, form, "secret")
        shots(page, "channels-invalid", focus="#channel-editor")
        page.fill(f"{form} input[name=secret]", f"sig-{token}")
        page.fill(f"{form} textarea[name=headers]", "not a header")
        page.click("#channel-save")
        assert "Name: value" in error_for(page, form, "headers")
        page.fill(f"{form} textarea[name=headers]", f"X-Token: hdr-{token}")
        page.click("#channel-save")
        row = page.locator(f"#channel-list tr[data-channel='{name}']")
        row.wait_for()
        stored = api(server, "GET", f"/api/v1/channels/{quote(name)}").json()
        assert stored["kind"] == "webhook" and set(stored["secure_fields"]) == {"url", "secret", "headers"}
        # write-only: the secrets are nowhere on the page, nor in the edit form
        assert token not in page.content()
        row.locator("[data-action=edit]").click()
        assert page.input_value(f"{form} input[name=url]") == ""
        assert "leave empty to keep" in page.get_attribute(f"{form} input[name=url]", "placeholder")
        assert token not in page.content()
        shots(page, "channels-edit", focus="#channel-editor")
        page.select_option(f"{form} select[name=format]", "slack")
        page.click("#channel-save")  # secrets left empty: kept
        page.wait_for_selector("#channel-editor", state="hidden")
        assert api(server, "GET", f"/api/v1/channels/{quote(name)}").json()["config"]["format"] == "slack"
        # test send: the receiver gets one notification, with the kept secrets
        row.locator("[data-action=test]").click()
        page.wait_for_selector(f"#channel-list tr[data-channel='{name}'] .test-result.ok")
        assert len(receiver.bodies) == 1 and b"TEST" in receiver.bodies[0]
        shots(page, "channels-list")
        # a test that cannot be delivered says so in the server's words
        receiver.close()
        row.locator("[data-action=test]").click()
        failed = page.locator(f"#channel-list tr[data-channel='{name}'] .test-result.form-error")
        failed.wait_for()
        assert "not delivered" in failed.inner_text()
        shots(page, "channels-test-failed")
        page.once("dialog", lambda d: d.accept())
        row.locator("[data-action=delete]").click()
        row.wait_for(state="detached")
        assert api(server, "GET", f"/api/v1/channels/{quote(name)}").status_code == 404
    finally:
        api(server, "DELETE", f"/api/v1/channels/{quote(name)}")


def test_silence_a_firing_alert_then_expire_it(page: playwright_api.Page, server: ServerProcess) -> None:
    rule = f"ui-silence-{uuid.uuid4().hex[:6]}"
    created = api(server, "POST", "/api/v1/alerts/rules", json={
        "name": rule, "query": "service:checkout AND level:ERROR", "condition": "count > 0", "window": "1h",
        "interval": "10s", "group_by": ["instance"]})
    assert created.status_code == 201, created.text
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            firing = [a for a in api(server, "GET", "/api/v1/alerts").json()["alerts"]
                      if a["rule"] == rule and a["state"] == "firing"]
            if len(firing) == 2:
                break
            time.sleep(0.2)
        assert len(firing) == 2, "the rule did not fire"
        login(page, server, server.api_key, "/ui/settings/silences")
        page.wait_for_selector(f"#silence-alert-list tr[data-rule='{rule}']")
        shots(page, "silences-alerts")
        page.locator(f"#silence-alert-list tr[data-rule='{rule}'] [data-action=silence]").first.click()
        form = "#silence-form"
        page.wait_for_selector(form)
        rows = page.locator(f"{form} .matcher")
        assert rows.count() == 2
        first = rows.nth(0).locator("input").evaluate_all("els => els.map(e => e.value)")
        assert first == ["alertname", rule]
        group = rows.nth(1).locator("input").evaluate_all("els => els.map(e => e.value)")
        assert group[0] == "instance" and group[1] in {"i-0", "i-1"}
        # a regex the server refuses: its message under that matcher
        page.click("#add-matcher")
        extra = rows.nth(2)
        extra.locator("input[aria-label=label]").fill("service")
        extra.locator("select").select_option("=~")
        extra.locator("input[aria-label=value]").fill("(checkout")
        page.click("#silence-save")
        assert "bad regex" in error_for(page, form, "matchers.2")
        shots(page, "silences-invalid", focus="#silence-editor")
        extra.locator("button").click()
        page.fill(f"{form} input[name=ends_at]", "yesterday")
        page.click("#silence-save")
        page.wait_for_function("() => document.querySelector('#silence-error').textContent.length > 0")
        page.fill(f"{form} input[name=ends_at]", "90m")
        page.fill(f"{form} input[name=comment]", "deploying the fix")
        page.click("#silence-save")
        row = page.locator("#silence-list tr[data-state=active]")
        row.wait_for()
        active = api(server, "GET", "/api/v1/silences").json()["silences"]
        assert len(active) == 1
        assert active[0]["matchers"][0] == {"name": "alertname", "op": "=", "value": rule}
        assert active[0]["comment"] == "deploying the fix"
        assert 85 * 60 < (active[0]["ends_ns"] - active[0]["starts_ns"]) / 1e9 <= 90 * 60
        # the silenced group says so among the alerts, the other does not
        silenced = page.locator(f"#silence-alert-list tr[data-rule='{rule}'][data-silenced]")
        silenced.wait_for()
        assert silenced.count() == 1 and silenced.get_attribute("data-silenced") == str(active[0]["id"])
        assert group[1] in silenced.inner_text()
        shots(page, "silences-list")
        page.once("dialog", lambda d: d.accept())
        row.locator("[data-action=expire]").click()
        page.wait_for_selector("#no-silences")
        page.wait_for_selector(f"#silence-alert-list tr[data-rule='{rule}'][data-silenced]", state="detached")
        assert api(server, "GET", "/api/v1/silences").json()["silences"] == []
        page.check("#show-expired")
        page.wait_for_selector("#silence-list tr[data-state=expired]")
        # the Alerts page links each firing group here, with the form filled in
        matchers = "rows => rows.map(r => [...r.querySelectorAll('input, select')].map(e => e.value).join(' '))"
        page.click("#nav a[data-page=alerts]")
        page.locator(f"#active tr[data-rule='{rule}'] button.silence-link").first.wait_for()
        shots(page, "alerts-silence-button", focus="#active-alerts")
        page.locator(f"#active tr[data-rule='{rule}'] button.silence-link").first.click()
        page.wait_for_selector("#silence-form")
        values = page.locator("#silence-form .matcher").evaluate_all(matchers)
        assert values[0] == f"alertname = {rule}" and values[1] in ("instance = i-0", "instance = i-1")
        # any page can, with the matchers it needs
        page.goto(f"{server.url}/ui/settings/silences?matcher=alertname%3D{quote(rule)}&matcher=service%3D~check.*")
        page.wait_for_selector("#silence-form")
        values = page.locator("#silence-form .matcher").evaluate_all(matchers)
        assert values == [f"alertname = {rule}", "service =~ check.*"]
        # a reader sees the firing groups on the Alerts page, and no way to silence them
        page.evaluate("sessionStorage.clear()")
        login(page, server, server.create_key("reader"), "/ui/alerts")
        page.wait_for_selector(f"#active tr[data-rule='{rule}']")
        assert page.locator("#active button.silence-link").count() == 0
    finally:
        api(server, "DELETE", f"/api/v1/alerts/rules/{quote(rule)}")
        for s in api(server, "GET", "/api/v1/silences").json()["silences"]:
            api(server, "DELETE", f"/api/v1/silences/{s['id']}")


def test_keys_create_shown_once_copied_and_revoked(page: playwright_api.Page, server: ServerProcess) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    login(page, server, server.api_key, "/ui/settings/keys")
    page.wait_for_selector("#key-list")
    form = "#key-form"
    page.fill(f"{form} input[name=name]", "ui shipper")
    page.select_option(f"{form} select[name=role]", "writer")
    page.fill(f"{form} input[name=expires]", "soon")
    page.click("#key-create")
    assert "is not a duration" in error_for(page, form, "expires")
    page.fill(f"{form} input[name=expires]", "30d")
    page.fill(f"{form} input[name=ingest_rate]", "0")
    page.click("#key-create")
    assert "greater than or equal to 1" in error_for(page, form, "ingest_rate")
    shots(page, "keys-invalid")
    page.fill(f"{form} input[name=ingest_rate]", "500")
    page.fill(f"{form} input[name=tenant]", "acme")
    page.fill(f"{form} input[name=services]", "checkout, cart")
    page.click("#key-create")
    page.wait_for_selector("#new-key:not([hidden])")
    secret = page.input_value("#new-key-secret")
    assert secret.startswith("lh_")
    prefix = secret.split("_")[1]
    page.click("#copy-key")
    page.wait_for_function("() => document.querySelector('#copy-status').textContent === 'copied'")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    row = page.locator(f"#key-list tr[data-key='{prefix}']")
    row.wait_for()
    assert "tenant acme, services checkout, cart" in row.inner_text()
    listed = {k["prefix"]: k for k in api(server, "GET", "/api/v1/keys").json()["keys"]}[prefix]
    assert (listed["role"], listed["tenant"], listed["services"], listed["ingest_rate"]) == (
        "writer", "acme", ["checkout", "cart"], 500)
    shots(page, "keys-created")
    # the key works, and it is shown once: not after a reload
    assert api(server, "POST", "/api/v1/logs", key=secret, content=b'{"service":"checkout","message":"k"}',
               headers={"content-type": "application/x-ndjson"}).status_code < 300
    page.reload()
    page.wait_for_selector(f"#key-list tr[data-key='{prefix}']")
    assert secret not in page.content()
    page.once("dialog", lambda d: d.accept())
    page.locator(f"#key-list tr[data-key='{prefix}'] [data-action=revoke]").click()
    page.wait_for_selector(f"#key-list tr[data-key='{prefix}'][data-state=revoked]")
    assert api(server, "GET", "/api/v1/whoami", key=secret).status_code == 401
    shots(page, "keys-list", focus="#keys")


def test_a_scoped_admin_gets_the_servers_refusal(page: playwright_api.Page, server: ServerProcess) -> None:
    acme = server.create_key("admin", tenant="acme", name="acme admin")
    login(page, server, acme, "/ui/settings/keys")
    page.wait_for_selector("#key-list")
    assert "tenant acme" in page.inner_text("#settings-scope")
    page.fill("#key-form input[name=tenant]", "globex")
    page.click("#key-create")
    page.wait_for_function("() => document.querySelector('#key-error').textContent.includes('outside its own scope')")
    assert page.locator("#new-key:not([hidden])").count() == 0
    shots(page, "keys-scoped-refused")
    open_tab(page, "retention")
    page.wait_for_selector("#retention-error")
    assert "server-wide" in page.inner_text("#retention-error")
    page.wait_for_selector("#tier-list")
    shots(page, "retention-scoped")


def test_retention_rules_and_storage_by_tier(page: playwright_api.Page, server: ServerProcess) -> None:
    put = api(server, "PUT", "/api/v1/retention", json={"rules": [
        {"name": "debug", "match": {"level": "debug"}, "hot": "1d", "warm": "7d", "delete": "30d"},
        {"name": "checkout", "match": {"service": ["checkout", "cart"]}, "hot": "3d", "cold": "90d",
         "sample": {"after": "7d", "keep": 0.1}},
    ]})
    assert put.status_code == 200, put.text
    try:
        login(page, server, server.api_key, "/ui/settings/retention")
        page.wait_for_selector("#rule-list tr[data-rule=checkout]")
        cells = page.locator("#rule-list tr[data-rule=checkout] td").all_inner_texts()
        assert cells[1] == "service: checkout | cart" and cells[2] == "3d" and cells[4] == "90d"
        assert "keep 10 % after 7d" in cells[6]
        page.wait_for_selector("#tier-list tr[data-tier=hot]")
        storage = api(server, "GET", "/api/v1/storage").json()
        hot = page.get_attribute("#tier-list tr[data-tier=hot] td[data-records]", "data-records")
        assert int(hot) == storage["tiers"]["hot"]["records"] >= 100
        page.click("#retention-preview")
        page.wait_for_function("() => document.querySelector('#rule-list tr[data-rule=checkout] td.next').textContent")
        assert page.inner_text("#rule-list tr[data-rule=checkout] td.next") == "nothing"  # every record is young
        shots(page, "retention")
        # the editor: a mistake is said under its field, a preview counts the rules as typed, save replaces them
        page.click("#retention-edit")
        cards = page.locator("#retention-form .retention-rule")
        assert cards.count() == 2
        second = cards.nth(1)
        assert second.locator("input[data-key=service]").input_value() == "checkout, cart"
        assert second.locator("input[data-key=keep]").input_value() == "10"
        second.locator("input[data-key=warm]").fill("1d")  # younger than its hot age (3d): refused
        page.click("#retention-save")
        assert "grow from hot to warm to cold" in error_for(page, "#retention-form", "rules.1.warm")
        second.locator("input[data-key=warm]").fill("")
        page.click("#add-retention-rule")
        third = cards.nth(2)
        third.locator("input[data-key=name]").fill("everything else")
        third.locator("input[data-key=delete]").fill("30d")
        page.click("#retention-save")
        assert "pattern" in error_for(page, "#retention-form", "rules.2.name")
        shots(page, "retention-edit-invalid", focus="#retention-editor")
        third.locator("input[data-key=name]").fill("rest")
        page.click("#retention-edit-preview")
        # the server counted the rules as typed: the new, unsaved third one has its line too
        page.wait_for_function("() => document.querySelectorAll('#retention-form .rule-preview')[2].textContent")
        assert third.locator(".rule-preview").inner_text() == "Next run: nothing"
        page.click("#retention-save")
        page.wait_for_selector("#retention-editor", state="hidden")
        page.wait_for_selector("#rule-list tr[data-rule=rest]")
        assert [r["name"] for r in api(server, "GET", "/api/v1/retention").json()["rules"]] == ["debug", "checkout", "rest"]
    finally:
        api(server, "PUT", "/api/v1/retention", json={"rules": []})


def test_saved_queries_open_rename_delete(page: playwright_api.Page, server: ServerProcess) -> None:
    for name, q in (("checkout errors", "service:checkout AND level:ERROR"), ("taken", "service:cart")):
        assert api(server, "POST", "/api/v1/saved-queries", json={
            "name": name, "query": q, "description": "payments failing", "time_range": "1h"}).status_code == 201
    try:
        login(page, server, server.api_key, "/ui/settings/saved")
        row = page.locator("#saved-list tr[data-saved='checkout errors']")
        row.wait_for()
        shots(page, "saved")
        row.locator("[data-action=rename]").click()
        page.fill("#saved-list .rename-form input[name=name]", "taken")
        page.click("#saved-list .rename-form button[type=submit]")
        assert "taken" in error_for(page, "#saved-list .rename-form", "name") or \
            "exists" in error_for(page, "#saved-list .rename-form", "name")
        page.fill("#saved-list .rename-form input[name=name]", "bad/name")
        page.click("#saved-list .rename-form button[type=submit]")
        assert "pattern" in error_for(page, "#saved-list .rename-form", "name")
        shots(page, "saved-rename-invalid", focus="#saved-list")
        page.fill("#saved-list .rename-form input[name=name]", "payments failing")
        page.click("#saved-list .rename-form button[type=submit]")
        page.wait_for_selector("#saved-list tr[data-saved='payments failing']")
        names = {i["name"] for i in api(server, "GET", "/api/v1/saved-queries").json()["items"]}
        assert names == {"payments failing", "taken"}
        page.once("dialog", lambda d: d.accept())
        page.locator("#saved-list tr[data-saved='taken'] [data-action=delete]").click()
        page.wait_for_selector("#saved-list tr[data-saved='taken']", state="detached")
        page.click("#saved-list tr[data-saved='payments failing'] a.open-search")
        page.wait_for_selector("#results li.record")
        query = parse_qs(urlparse(page.url).query)
        assert query["q"] == ["service:checkout AND level:ERROR"] and query["from"] == ["now-1h"]
    finally:
        for item in api(server, "GET", "/api/v1/saved-queries").json()["items"]:
            api(server, "DELETE", f"/api/v1/saved-queries/{quote(item['name'])}")
