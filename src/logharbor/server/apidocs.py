"""``/api/docs``: the OpenAPI page, with Swagger UI served from this server, never from a CDN.

Why: FastAPI's stock page loads an unpinned ``swagger-ui-dist`` from a CDN with no integrity
check, on the same origin as the web UI, where a user's API key sits in sessionStorage: whoever
controls that CDN path would run script with the key in reach. Here the assets come from a
pinned Python package (``fastapi-offline``, which ships Swagger UI's files), the page's own
script is a file too, and a Content-Security-Policy lets the page load and call nothing but this
origin. ``--no-api-docs`` turns the page off; the schema stays at ``/api/openapi.json``.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from starlette.responses import HTMLResponse, Response

__all__ = ["ASSETS", "api_docs_router"]

#: the Swagger UI files of the pinned package, by the name they are served under
ASSETS = {
    "swagger-ui-bundle.js": "application/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>logharbor API</title>
<link rel="icon" type="image/png" href="/api/docs/favicon.png">
<link rel="stylesheet" href="/api/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script></body></html>
"""
_INIT = """window.ui = SwaggerUIBundle({
  url: "/api/openapi.json", dom_id: "#swagger-ui", layout: "BaseLayout", deepLinking: true,
  showExtensions: true, showCommonExtensions: true, queryConfigEnabled: false,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset]
});
"""


def _asset(name: str) -> bytes:
    return resources.files("fastapi_offline").joinpath("static", name).read_bytes()


def api_docs_router() -> APIRouter:
    """The page, its start-up script and the Swagger UI assets (public, like the schema)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/api/docs")
    async def page() -> HTMLResponse:
        return HTMLResponse(_PAGE, headers=_HEADERS)

    @router.get("/api/docs/init.js")
    async def init() -> Response:
        return Response(_INIT, media_type="application/javascript", headers=_HEADERS)

    for name, media_type in ASSETS.items():
        body = _asset(name)  # read once: a missing package fails the start, not the page

        async def serve(body: bytes = body, media_type: str = media_type) -> Response:
            return Response(body, media_type=media_type, headers=_HEADERS)

        router.add_api_route(f"/api/docs/{name}", serve, methods=["GET", "HEAD"])
    return router
