"""What every CLI command that talks to a server shares: where it is, the key, the CA, errors."""

from __future__ import annotations

import hashlib
import os
import ssl
from pathlib import Path
from typing import NoReturn

import httpx
import typer

from logharbor.cli.errors import CliError

__all__ = ["ADMIN_KEY_OPTION", "CA_OPTION", "DEFAULT_SERVER", "KEY_OPTION", "SERVER_OPTION", "api_call",
           "api_error_text", "die", "key_advice", "key_fingerprint", "server_client"]

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


def key_fingerprint(api_key: str) -> str:
    """What names a key without revealing it: its public prefix ``lh_<12 hex>_…`` (the one
    ``logharbor keys list`` shows), or for anything else a hash of it (``sha256:1a2b3c4d``)."""
    if api_key.startswith("lh_") and len(api_key) > 16 and api_key[15] == "_" and \
            all(c in "0123456789abcdef" for c in api_key[3:15]):
        return f"{api_key[:15]}_…"
    return "sha256:" + hashlib.sha256(api_key.encode()).hexdigest()[:8]


def key_advice(status: int, api_key: str | None) -> str | None:
    """For a 401/403, which key was sent (fingerprint and where it came from) and how to set
    another; None for other answers."""
    if status not in (401, 403):
        return None
    if not api_key:
        return ("no API key was sent; set one with: export LOGHARBOR_API_KEY=lh_… (or --api-key); "
                "the first admin key is in the server's data directory, DATA_DIR/admin.key")
    source = "LOGHARBOR_API_KEY" if os.environ.get("LOGHARBOR_API_KEY") == api_key else "--api-key"
    used = f"the key {key_fingerprint(api_key)} (from {source})"
    if status == 403:
        return (f"{used} lacks the role or scope for this; use another key: "
                "export LOGHARBOR_API_KEY=lh_… (logharbor keys list shows each key's role)")
    return (f"the server did not accept {used}: it is unknown to this server, revoked or expired; "
            "set a valid one with: export LOGHARBOR_API_KEY=lh_… (or --api-key)")


def api_error_text(response: httpx.Response, api_key: str | None = None) -> str:
    """One line from a JSON error answer (or the status when the body is not ours), and for an
    authentication failure a second one saying which key was used and how to set one."""
    try:
        error = response.json()["error"]
        text = f"{error['message']} ({response.status_code} {error['code']})"
    except (ValueError, KeyError, TypeError):
        text = f"HTTP {response.status_code}"
    advice = key_advice(response.status_code, api_key)
    return text if advice is None else f"{text}\n  {advice}"


def api_call(client: httpx.Client, method: str, path: str, body: object = None) -> object:
    """One JSON request; a transport failure or an error answer ends the command with one line."""
    try:
        response = client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        die(f"cannot reach {client.base_url}: {exc}", 2)
    if response.status_code >= 400:
        sent = client.headers.get("authorization", "")
        die(api_error_text(response, sent.removeprefix("Bearer ") or None))
    return response.json()


def die(message: str, code: int = 1) -> NoReturn:
    """Stop the command with ``logharbor: message`` on stderr (a :class:`CliError`)."""
    raise CliError(message, code, prog="logharbor")
