"""How the server serves the UI: pages and assets under /ui/, secure headers, the / redirect."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx
from fastapi import FastAPI
from tests.ui.conftest import Demo

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
#: it was 133 KB before the field sidebar, suggestions and charts came
FIRST_PAGE_BUDGET = 135_000


def test_the_first_search_stays_small(demo: Demo) -> None:
    index = httpx.get(demo.server.url + "/ui/").text
    assets = re.findall(r'(?:src|href)="(/ui/assets/[^"]+)"', index)
    sizes = {a: len(httpx.get(demo.server.url + a).content) for a in assets}
    total = len(index.encode()) + sum(sizes.values())
    assert total <= FIRST_PAGE_BUDGET, f"the first page loads {total} bytes: {sizes}"
