"""``logharbor keys create | list | revoke``: manage API keys through the admin API, or straight
in a stopped server's data directory with ``--data-dir`` (e.g. when the admin key is lost)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from logharbor.cli.client import ADMIN_KEY_OPTION, CA_OPTION, SERVER_OPTION, api_call, die, server_client

__all__ = ["register"]

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)

_SERVER, _KEY, _CA = SERVER_OPTION, ADMIN_KEY_OPTION, CA_OPTION
_DATA = typer.Option(None, "--data-dir", help="work on a stopped server's data directory instead")


def _local_store(data_dir: Path):  # type: ignore[no-untyped-def]
    from logharbor.server.meta.db import MetaStore
    from logharbor.server.meta.keys import KeyStore

    if not (data_dir / "meta.db").exists():
        die(f"{data_dir} has no meta.db: is it a logharbor data directory?")
    meta = MetaStore.for_data_dir(data_dir)
    meta.create()
    return KeyStore(meta)


def _call(method: str, path: str, server: str, api_key: str | None, ca: Path | None,
          json: dict | None = None) -> Any:  # type: ignore[type-arg]
    if not api_key:
        die("an admin key is needed: --api-key or LOGHARBOR_API_KEY (or --data-dir on the server)")
    with server_client(server, api_key, ca) as client:
        return api_call(client, method, path, json)


@keys_app.command("create")
def create(
    role: str = typer.Option(..., help="admin, writer or reader"),
    name: str = typer.Option("", help="a label to recognise the key by"),
    tenant: str | None = typer.Option(None, help="confine the key to this tenant"),
    services: str | None = typer.Option(None, help="confine the key to these services (comma-separated)"),
    expires: str | None = typer.Option(None, help="lifetime such as 30d or 12h (default: never)"),
    ingest_rate: int | None = typer.Option(None, help="records per second this key may send"),
    server: str = _SERVER, api_key: str | None = _KEY, ca: Path | None = _CA, data_dir: Path | None = _DATA,
) -> None:
    """Create a key and print it once; it cannot be shown again."""
    service_list = [s.strip() for s in services.split(",") if s.strip()] if services else None
    if data_dir is not None:
        from logharbor.server.features.query.timeparse import TimeParseError, parse_duration_ns
        from logharbor.server.meta.keys import KeyRequestError

        try:
            expires_ns = time.time_ns() + parse_duration_ns(expires) if expires else None
            new = _local_store(data_dir).create(role=role, name=name, tenant=tenant, services=service_list,
                                                expires_ns=expires_ns, created_by="cli",
                                                ingest_rate=ingest_rate)
        except (KeyRequestError, TimeParseError) as exc:
            die(str(exc), 2)
        typer.echo(new.secret)
        return
    body = {"role": role, "name": name, "tenant": tenant, "services": service_list, "expires": expires,
            "ingest_rate": ingest_rate}
    typer.echo(_call("POST", "/api/v1/keys", server, api_key, ca, {k: v for k, v in body.items()
                                                                    if v not in (None, "")})["key"])


@keys_app.command("list")
def list_keys(server: str = _SERVER, api_key: str | None = _KEY, ca: Path | None = _CA,
              data_dir: Path | None = _DATA,
              as_json: bool = typer.Option(False, "--json", help="one JSON object per key")) -> None:
    """List keys (prefixes, roles, scopes; never secrets)."""
    if data_dir is not None:
        rows = _local_store(data_dir).list()
    else:
        rows = _call("GET", "/api/v1/keys", server, api_key, ca)["keys"]
    if as_json:
        for r in rows:
            typer.echo(orjson.dumps(r).decode())
        return
    table = Table("role", "name", "tenant", "services", "expires", "state")
    table.add_column("prefix", no_wrap=True)
    for r in rows:
        expires = "-"
        if r["expires_ns"]:
            expires = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["expires_ns"] / 1e9))
        table.add_row(r["role"], r["name"] or "", r["tenant"] or "*",
                      ",".join(r["services"]) if r["services"] else "*", expires,
                      "revoked" if r["revoked"] else "active", r["prefix"])
    Console().print(table)


@keys_app.command("revoke")
def revoke(prefix: str = typer.Argument(..., help="the key's prefix (the 12 hex after lh_)"),
           server: str = _SERVER, api_key: str | None = _KEY, ca: Path | None = _CA,
           data_dir: Path | None = _DATA) -> None:
    """Revoke a key; it stops working at once on this server."""
    prefix = prefix.removeprefix("lh_")[:12]
    if data_dir is not None:
        from logharbor.server.meta.keys import KeyRequestError

        try:
            _local_store(data_dir).revoke(prefix, actor="cli")
        except KeyRequestError as exc:
            die(str(exc))
    else:
        _call("DELETE", f"/api/v1/keys/{prefix}", server, api_key, ca)
    typer.echo(f"revoked {prefix}")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
