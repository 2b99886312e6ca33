"""``logharbor retention show | apply -f retention.yaml | preview | run | delete | storage``:
retention rules, delete by query and storage figures through the admin API."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import typer
import yaml
from rich.console import Console
from rich.table import Table

from logharbor.cli.client import ADMIN_KEY_OPTION, CA_OPTION, SERVER_OPTION, api_call, die, server_client
from logharbor.types import JsonObject

__all__ = ["register"]

retention_app = typer.Typer(help="Retention rules, delete by query, storage figures.", no_args_is_help=True)

_SERVER, _KEY, _CA = SERVER_OPTION, ADMIN_KEY_OPTION, CA_OPTION
_JSON = typer.Option(False, "--json", help="print the server's JSON answer")


def _call(method: str, path: str, server: str, api_key: str | None, ca: Path | None,
          json: Any = None) -> Any:
    if not api_key:
        die("an admin key is needed: --api-key or LOGHARBOR_API_KEY")
    with server_client(server, api_key, ca, timeout=600) as client:
        return api_call(client, method, path, json)


def _load(path: Path) -> JsonObject:
    """A rules file (YAML or JSON), validated here first so errors name the file's key."""
    from pydantic import ValidationError

    from logharbor.server.features.retention.rules import RetentionPolicy

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        die(f"cannot read {path}: {exc}")
    try:
        return RetentionPolicy.model_validate(data or {}).model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        first = exc.errors()[0]
        die(f"{path}: {'.'.join(str(p) for p in first['loc'])}: {first['msg']}")


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@retention_app.command("show")
def show(server: str = _SERVER, api_key: str | None = _KEY, ca: Path | None = _CA,
         as_json: bool = _JSON) -> None:
    """Print the rules the server applies, as YAML ready for 'retention apply -f'."""
    data = _call("GET", "/api/v1/retention", server, api_key, ca)
    if as_json:
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    typer.echo(yaml.safe_dump({"rules": data.get("rules", [])}, sort_keys=False).rstrip())
    typer.echo(f"# cold storage: {data.get('cold_storage')}")


@retention_app.command("apply")
def apply(file: Path = typer.Option(..., "-f", "--file", help="rules file (YAML)"),
          server: str = _SERVER, api_key: str | None = _KEY, ca: Path | None = _CA) -> None:
    """Replace the server's rules with the file's."""
    rules = _load(file)
    data = _call("PUT", "/api/v1/retention", server, api_key, ca, json=rules)
    typer.echo(f"applied {len(data.get('rules', []))} retention rules")


@retention_app.command("preview")
def preview(file: Path | None = typer.Option(None, "-f", "--file", help="preview these rules instead"),
            server: str = _SERVER, api_key: str | None = _KEY, ca: Path | None = _CA,
            as_json: bool = _JSON) -> None:
    """How many records and bytes each rule would move or delete on its next run."""
    body = _load(file) if file is not None else None
    data = _call("POST", "/api/v1/retention/preview", server, api_key, ca, json=body)
    if as_json:
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("rule", "to warm", "to cold", "delete", "sampled out", "bytes")
    for row in data["rules"]:
        table.add_row(row["rule"], str(row["to_warm"]), str(row["to_cold"]), str(row["delete"]),
                      str(row["sample_out"]), _size(row["bytes"]))
    Console().print(table)


@retention_app.command("run")
def run(server: str = _SERVER, api_key: str | None = _KEY, ca: Path | None = _CA) -> None:
    """Apply the rules now instead of at the mover's next interval."""
    data = _call("POST", "/api/v1/retention/run", server, api_key, ca)
    typer.echo(" ".join(f"{k}={v}" for k, v in data.items()))


@retention_app.command("delete")
def delete(q: str = typer.Argument(..., metavar="QUERY",
                                   help="filter in the query language, e.g. user_id:u-123"),
           wait: bool = typer.Option(True, help="wait until the delete has finished"),
           server: str = _SERVER, api_key: str | None = _KEY, ca: Path | None = _CA) -> None:
    """Delete every record matching the query from hot, warm and cold (audited)."""
    job = _call("POST", "/api/v1/delete", server, api_key, ca, json={"q": q})
    while wait and job["state"] in ("pending", "running"):
        time.sleep(0.5)
        job = _call("GET", f"/api/v1/delete/{job['id']}", server, api_key, ca)
    typer.echo(f"delete {job['id']}: {job['state']}, {job['deleted']} records deleted")
    if job["state"] == "failed":
        die(job.get("error") or "the delete failed")


@retention_app.command("storage")
def storage(server: str = _SERVER, api_key: str | None = _KEY, ca: Path | None = _CA,
            as_json: bool = _JSON) -> None:
    """Bytes and records per tier and the compression ratio."""
    data = _call("GET", "/api/v1/storage", server, api_key, ca)
    if as_json:
        typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table("tier", "records", "bytes", "bytes/record", "ratio")
    for tier, f in data["tiers"].items():
        table.add_row(tier, str(f["records"]), _size(f["bytes"]), str(f["bytes_per_record"]),
                      f"{f['compression_ratio']}x")
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(retention_app, name="retention")
