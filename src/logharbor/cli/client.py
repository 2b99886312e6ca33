"""What every CLI command that talks to a server shares: where it is, the key, the CA, errors."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import NoReturn

import httpx
import typer

__all__ = ["DEFAULT_SERVER", "api_error_text", "die", "server_client"]

DEFAULT_SERVER = "http://127.0.0.1:8080"


def server_client(server: str, api_key: str | None, ca: Path | None = None, *,
                  timeout: float = 30.0) -> httpx.Client:
    """An httpx client for the server: key in the Authorization header, TLS verified (custom CA)."""
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    verify: ssl.SSLContext | bool = True
    if ca is not None:
        verify = ssl.create_default_context(cafile=str(ca))
    return httpx.Client(base_url=server.rstrip("/"), headers=headers, verify=verify,
                        timeout=httpx.Timeout(timeout, connect=10))


def api_error_text(response: httpx.Response) -> str:
    """One line from a JSON error answer (or the status when the body is not ours)."""
    try:
        error = response.json()["error"]
        return f"{error['message']} ({response.status_code} {error['code']})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def die(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"logharbor: {message}", err=True)
    raise typer.Exit(code)
