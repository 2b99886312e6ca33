"""Serves the web UI under ``/ui/``: the built assets and, for every page path, ``index.html``.

The front-end (``ui/`` at the repository root) is built by ``scripts/install.sh`` into ``dist/``
beside this module. Pages are public, as ``auth.py`` says: they hold no data, and every API call
they make carries the key the user typed into the login form. A browser's ``GET /`` is redirected
here by the Elasticsearch version probe (``ingest/elasticsearch.py``), which answers shippers
with JSON and browsers (``Accept: text/html``) with a redirect.

Every answer carries a strict Content-Security-Policy: scripts, styles and connections only from
this origin, so nothing the page shows (log lines are untrusted text) can load or send anything
elsewhere, and the page cannot be framed.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response

__all__ = ["DIST_DIR", "SECURITY_HEADERS", "ui_router"]

DIST_DIR = Path(__file__).resolve().parent / "dist"

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
#: hashed file names change with their content, so browsers may keep them for good
_IMMUTABLE = "public, max-age=31536000, immutable"
#: index.html names the current hashes: always ask again
_REVALIDATE = "no-cache"

_NOT_BUILT = """<!doctype html><html lang="en"><meta charset="utf-8"><title>logharbor</title>
<h1>The web UI is not built</h1>
<p>Run <code>scripts/install.sh</code> (it runs <code>npm ci &amp;&amp; npm run build</code> in
<code>ui/</code>) and reload this page. The API works without it.</p></html>"""


def _inside(root: Path, relative: str) -> Path | None:
    """The file ``relative`` names under ``root``, or None (missing, a directory, or outside)."""
    if "\x00" in relative:
        return None
    candidate = (root / relative).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def ui_router(dist_dir: Path | None = None) -> APIRouter:
    """The router the app factory mounts; ``dist_dir`` is for tests of other builds."""
    root = (dist_dir or DIST_DIR).resolve()
    router = APIRouter(include_in_schema=False)

    @router.api_route("/ui", methods=["GET", "HEAD"])
    async def ui_slash(request: Request) -> Response:
        query = request.url.query
        return RedirectResponse("/ui/" + (f"?{query}" if query else ""), status_code=308,
                                headers=SECURITY_HEADERS)

    @router.api_route("/ui/server.json", methods=["GET", "HEAD"])
    async def ui_server(request: Request) -> Response:
        # whether the pages need a key: asked without one, so answered without a 401 (a probe of
        # /api/v1/whoami put one in the browser console on every page load)
        config = getattr(getattr(request.app.state, "runtime", None), "config", None)
        return JSONResponse({"auth": bool(getattr(config, "auth", True))},
                            headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})

    @router.api_route("/ui/{path:path}", methods=["GET", "HEAD"])
    async def ui_file(path: str) -> Response:
        index = root / "index.html"
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT, status_code=503,
                                headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})
        if path.startswith("assets/"):
            asset = _inside(root, path)
            if asset is None:
                return Response("not found", status_code=404, media_type="text/plain",
                                headers=SECURITY_HEADERS)
            return FileResponse(asset, headers={**SECURITY_HEADERS, "Cache-Control": _IMMUTABLE})
        # a page path (/ui/search, /ui/trace/<id>): the app routes it in the browser
        found = _inside(root, path) if path else None
        return FileResponse(found or index, headers={**SECURITY_HEADERS, "Cache-Control": _REVALIDATE})

    return router
