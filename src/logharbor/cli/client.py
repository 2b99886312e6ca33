"""What every CLI command that talks to a server shares: where it is, the key, the CA, errors."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import NoReturn

import httpx
import typer

__all__ = ["ADMIN_KEY_OPTION", "CA_OPTION", "DEFAULT_SERVER", "KEY_OPTION", "SERVER_OPTION", "api_call",
           "api_error_text", "die", "server_client"]

DEFAULT_SERVER = "http://127.0.0.1:8080"

#: the options every command that talks to a server takes (typer reads them as defaults)
SERVER_OPTION = typer.Option(DEFAULT_SERVER, envvar="LOGHARBOR_SERVER", metavar="URL", help="server URL")
KEY_OPTION = typer.Option(None, envvar="LOGHARBOR_API_KEY", metavar="KEY", help="an API key (lh_…)")
ADMIN_KEY_OPTION = typer.Option(None, envvar="LOGHARBOR_API_KEY", metavar="KEY", help="an admin API key")
CA_OPTION = typer.Option(None, envvar="LOGHARBOR_CA", metavar="FILE",
                         help="PEM CA bundle for the server's TLS certificate")


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


def api_call(client: httpx.Client, method: str, path: str, body: object = None) -> object:
    """One JSON request; a transport failure or an error answer ends the command with one line."""
    try:
        response = client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        die(f"cannot reach {client.base_url}: {exc}", 2)
    if response.status_code >= 400:
        die(api_error_text(response))
    return response.json()


def die(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"logharbor: {message}", err=True)
    raise typer.Exit(code)
