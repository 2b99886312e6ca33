"""Carry the current request's ids to outgoing HTTP calls (httpx and requests).

Why: a request that fans out to other services is one story; when the callee's middleware reads
the same ``X-Request-ID`` and ``traceparent``, its lines share the trace id with the caller's and
the server can show the whole request in one view.

Usage::

    client = sdk.propagate_httpx(httpx.Client())          # or httpx.AsyncClient()
    session = sdk.propagate_requests(requests.Session())
    headers = sdk.outgoing_headers()                       # for any other client
"""

from __future__ import annotations

from typing import Any

from logharbor.sdk.context import current, new_span_id

__all__ = ["outgoing_headers", "propagate_httpx", "propagate_requests"]


def outgoing_headers() -> dict[str, str]:
    """Headers that continue the current request's trace (empty outside of a request).

    ``traceparent`` names this hop's span as the parent; without a current span a new one is
    made so the header stays valid.
    """
    ctx = current()
    headers: dict[str, str] = {}
    trace_id = ctx.get("trace_id")
    if trace_id:
        span = ctx.get("span_id") or new_span_id()
        headers["traceparent"] = f"00-{trace_id}-{span}-01"
    request_id = ctx.get("request_id")
    if request_id:
        headers["X-Request-ID"] = str(request_id)
    return headers


def _add_missing(target: Any) -> None:
    for name, value in outgoing_headers().items():
        if name not in target:
            target[name] = value


def _sync_hook(request: Any) -> None:
    _add_missing(request.headers)


async def _async_hook(request: Any) -> None:
    _add_missing(request.headers)


def propagate_httpx(client: Any) -> Any:
    """Add a request hook to an ``httpx.Client`` or ``httpx.AsyncClient``; returns the client.

    Headers the caller set explicitly are left alone.
    """
    import httpx

    hook = _async_hook if isinstance(client, httpx.AsyncClient) else _sync_hook
    hooks = client.event_hooks
    requests = list(hooks.get("request", []))
    if hook not in requests:
        requests.append(hook)
    hooks["request"] = requests
    client.event_hooks = hooks
    return client


def propagate_requests(session: Any) -> Any:
    """Mount an adapter on a ``requests.Session`` that adds the headers; returns the session."""
    from requests.adapters import HTTPAdapter

    class _PropagatingAdapter(HTTPAdapter):
        def add_headers(self, request: Any, **kwargs: Any) -> None:
            _add_missing(request.headers)

    adapter = _PropagatingAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
