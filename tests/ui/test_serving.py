"""How the server serves the UI: pages and assets under /ui/, secure headers, the / redirect."""

from __future__ import annotations

import asyncio
import gzip
import re
from pathlib import Path

import httpx
from fastapi import FastAPI
from tests.ui.conftest import Demo, playwright_api

from logharbor.server.compression import MINIMUM_SIZE
from logharbor.server.ui import ui_router


def test_pages_and_assets_are_public_with_secure_headers(demo: Demo) -> None:
    base = demo.server.url
    for path in ("/ui/", "/ui/search", "/ui/trace/0123abcd", "/ui/tail?q=x"):
        response = httpx.get(base + path)  # no key: the page itself holds no data
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/html")
        assert "<div id=\"main\"" in response.text or 'id="main"' in response.text
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-cache"
    index = httpx.get(base + "/ui/").text
    assets = re.findall(r'(?:src|href)="(/ui/assets/[^"]+)"', index)
    assert any(a.endswith(".js") for a in assets) and any(a.endswith(".css") for a in assets)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", index), "no inline script (the CSP forbids it)"
    assert "http://" not in index and "https://" not in index, "every asset comes from this server"
    for asset in assets:
        response = httpx.get(base + asset)
        assert response.status_code == 200
        assert "immutable" in response.headers["cache-control"]
        assert response.headers["content-security-policy"]
        body = response.text
        assert "//fonts.googleapis" not in body and "cdn.jsdelivr" not in body


def test_missing_assets_and_traversal_are_404(demo: Demo) -> None:
    base = demo.server.url
    assert httpx.get(base + "/ui/assets/nope-123.js").status_code == 404
    for path in ("/ui/assets/..%2f..%2froutes.py", "/ui/assets/%2e%2e/%2e%2e/routes.py",
                 "/ui/assets/../../../app.py"):
        response = httpx.get(base + path)
        assert "ui_router" not in response.text and "create_app" not in response.text, path


def test_root_redirects_browsers_and_answers_shippers(demo: Demo) -> None:
    base = demo.server.url
    browser = httpx.get(base + "/", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert browser.status_code in (302, 307, 308) and browser.headers["location"] == "/ui/"
    shipper = httpx.get(base + "/", headers={"accept": "application/json"})
    assert shipper.status_code == 200 and shipper.json()["version"]["number"].startswith("8.")
    assert shipper.headers["x-elastic-product"] == "Elasticsearch"
    assert httpx.get(base + "/ui").headers["location"] == "/ui/"


def test_api_still_needs_a_key(demo: Demo) -> None:
    response = httpx.post(demo.server.url + "/api/v1/query", json={"q": "*"})
    assert response.status_code == 401


def test_router_on_a_given_build(tmp_path: Path) -> None:
    asyncio.run(_router_on_a_given_build(tmp_path))


async def _router_on_a_given_build(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    app = FastAPI()
    app.include_router(ui_router(dist))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ui") as client:
        missing = await client.get("/ui/")
        assert missing.status_code == 503 and "scripts/install.sh" in missing.text
        (dist / "assets").mkdir(parents=True)
        (dist / "index.html").write_text("<!doctype html><title>t</title><div id=main></div>")
        (dist / "assets" / "app-1.js").write_text("console.log(1)")
        (tmp_path / "secret.txt").write_text("not for you")
        assert (await client.get("/ui/trace/abc")).text.startswith("<!doctype html>")
        js = await client.get("/ui/assets/app-1.js")
        assert js.status_code == 200 and "javascript" in js.headers["content-type"]
        for path in ("/ui/assets/..%2f..%2fsecret.txt", "/ui/..%2fsecret.txt", "/ui/assets/%2e%2e/%2e%2e/secret.txt"):
            assert "not for you" not in (await client.get(path)).text, path
        assert (await client.get("/ui/assets/app-2.js")).status_code == 404
        assert (await client.get("/ui?x=1")).headers["location"] == "/ui/?x=1"


#: what the first search may load (the other pages and the search's dialogs load when first used);
#: it was 133 KB before the field sidebar, suggestions and charts came, 135 KB before the partial
#: last bucket, the Explain button and the admin check (whoami) came (136.9 KB with them; the
#: explain panel, Settings and the trace's clock styles load with their first use), 139.6 KB
#: since a click on any value filters on exactly its key (fieldnames.ts: the server's quoting
#: of names, read and written) and the Create alert dialog shows errors beside their fields
FIRST_PAGE_BUDGET = 140_500


def test_the_first_search_stays_small(demo: Demo) -> None:
    index = httpx.get(demo.server.url + "/ui/").text
    assets = re.findall(r'(?:src|href)="(/ui/assets/[^"]+)"', index)
    sizes = {a: len(httpx.get(demo.server.url + a).content) for a in assets}
    total = len(index.encode()) + sum(sizes.values())
    assert total <= FIRST_PAGE_BUDGET, f"the first page loads {total} bytes: {sizes}"


#: what chromium sends; the server answers with gzip (compression.py)
BROWSER_ACCEPT_ENCODING = "gzip, deflate, br, zstd"


def _on_the_wire(url: str, accept_encoding: str | None) -> httpx.Response:
    """GET ``url`` keeping the body as sent (``.raw``), not decoded by httpx."""
    with httpx.Client() as client:
        if accept_encoding is None:
            del client.headers["accept-encoding"]
        else:
            client.headers["accept-encoding"] = accept_encoding
        with client.stream("GET", url) as response:
            response.raw = b"".join(response.iter_raw())  # type: ignore[attr-defined]
        return response


def test_assets_are_gzip_for_browsers_and_identity_for_the_rest(demo: Demo) -> None:
    base = demo.server.url
    index = httpx.get(base + "/ui/").text
    assets = re.findall(r'(?:src|href)="(/ui/assets/[^"]+)"', index)
    assert assets
    plain_total = packed_total = 0
    for asset in assets:
        plain = _on_the_wire(base + asset, None)
        assert plain.status_code == 200 and "content-encoding" not in plain.headers, asset
        packed = _on_the_wire(base + asset, BROWSER_ACCEPT_ENCODING)
        assert packed.status_code == 200, asset
        if len(plain.raw) < MINIMUM_SIZE:  # type: ignore[attr-defined]  # not worth the CPU: sent as is
            assert "content-encoding" not in packed.headers and packed.raw == plain.raw, asset  # type: ignore[attr-defined]
            continue
        assert packed.headers["content-encoding"] == "gzip", asset
        assert "accept-encoding" in packed.headers["vary"].lower(), asset
        assert gzip.decompress(packed.raw) == plain.raw, asset  # type: ignore[attr-defined]
        assert "immutable" in packed.headers["cache-control"] and packed.headers["content-security-policy"]
        plain_total += len(plain.raw)  # type: ignore[attr-defined]
        packed_total += len(packed.raw)  # type: ignore[attr-defined]
    assert packed_total * 2 < plain_total, (packed_total, plain_total)


def test_the_browser_gets_gzip_assets(browser: playwright_api.Browser, demo: Demo) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        encodings: dict[str, str | None] = {}
        page.on("response", lambda r: encodings.__setitem__(r.url, r.headers.get("content-encoding"))
                if "/ui/assets/" in r.url else None)
        page.goto(demo.server.url + "/ui/login")
        page.wait_for_selector("#login-form")
        # a chunk under the compression minimum (a few hundred bytes) is sent as is
        large = {url: value for url, value in encodings.items()
                 if len(httpx.get(url).content) >= MINIMUM_SIZE}
        assert large and all(value == "gzip" for value in large.values()), encodings
    finally:
        context.close()
