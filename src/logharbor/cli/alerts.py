"""``logharbor alerts list | apply -f rules.yaml [--check] | test RULE``: alert rules as files in git.

A rule file is YAML: a list of rules, or ``{rules: [...]}``, or several documents separated by
``---``. ``apply --check`` validates every rule with the server's own model and query compiler,
without a server (for CI); ``apply`` creates or replaces each rule (``PUT``), and ``--prune``
also deletes the server's rules the files do not name. ``test`` evaluates a rule now and shows
each group's value and verdict without changing any state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import typer
import yaml
from rich.console import Console
from rich.table import Table

from logharbor import exactjson
from logharbor.cli.client import CA_OPTION, SERVER_OPTION, api_call, die, server_client
from logharbor.cli.terminal import cell_text, visible
from logharbor.types import JsonObject

__all__ = ["load_rule_file", "register"]

alerts_app = typer.Typer(help="Alert rules: list, apply from YAML files, test.", no_args_is_help=True)

_SERVER, _CA = SERVER_OPTION, CA_OPTION
_KEY = typer.Option(None, envvar="LOGHARBOR_API_KEY", help="an API key (admin for apply)")



def _condition_text(cond: JsonObject) -> str:
    """A stored condition in its text form (``count > 10``, ``anomaly(count) up > 3 MAD …``)."""
    from pydantic import ValidationError

    from logharbor.server.features.alerts.rules import Condition

    try:
        return Condition.model_validate(cond).text()
    except ValidationError:  # a server newer than this client: show what it stored
        return orjson.dumps(cond).decode()

def load_rule_file(path: Path) -> list[JsonObject]:
    """The rule objects of one YAML file (a list, ``{rules: [...]}``, or several documents)."""
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    rules: list[JsonObject] = []
    for doc in docs:
        if doc is None:
            continue
        if isinstance(doc, dict) and "rules" in doc:
            doc = doc["rules"]
        items = doc if isinstance(doc, list) else [doc]
        for item in items:
            if not isinstance(item, dict):
                raise ValueError(f"{path}: each rule is a mapping, got {type(item).__name__}")
            rules.append(item)
    return rules


def _check(files: list[Path]) -> list[JsonObject]:
    """Every rule of ``files`` validated locally; dies listing every bad rule."""
    from pydantic import ValidationError

    from logharbor.server.features.alerts.rules import Rule, validation_message

    good: list[JsonObject] = []
    errors: list[str] = []
    names: dict[str, Path] = {}
    for path in files:
        try:
            items = load_rule_file(path)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        for i, item in enumerate(items):
            label = f"{path}: rule {item.get('name') or f'#{i + 1}'}"
            try:
                rule = Rule.model_validate(item)
            except ValidationError as exc:
                errors.append(f"{label}: {validation_message(exc)}")
                continue
            if rule.name in names:
                errors.append(f"{label}: the name is used twice (also in {names[rule.name]})")
                continue
            names[rule.name] = path
            good.append(rule.model_dump(by_alias=True))
    if errors:
        for line in errors:
            typer.echo(f"logharbor: {line}", err=True)
        raise typer.Exit(1)
    return good


def _client(server: str, api_key: str | None, ca: Path | None) -> httpx.Client:
    if not api_key:
        die("an API key is needed: --api-key or LOGHARBOR_API_KEY")
    return server_client(server, api_key, ca)


def _call(client: httpx.Client, method: str, path: str, body: Any = None) -> Any:
    return api_call(client, method, path, body)


@alerts_app.command("list")
def list_rules(server: str = _SERVER, api_key: str | None = _KEY, ca: Path | None = _CA,
               as_json: bool = typer.Option(False, "--json", help="one JSON object per rule")) -> None:
    """Rules with their state counts and last evaluation error."""
    with _client(server, api_key, ca) as client:
        rules = _call(client, "GET", "/api/v1/alerts/rules")["rules"]
        alerts = _call(client, "GET", "/api/v1/alerts")["alerts"]
    if as_json:
        for rule in rules:
            typer.echo(orjson.dumps(rule).decode())
        return
    table = Table("rule", "condition", "window", "every", "firing", "pending", "last error")
    for rule in rules:
        spec = rule["spec"]
        text = _condition_text(spec["condition"])
        states = rule.get("states", {})
        table.add_row(*(cell_text(v) for v in (rule["name"], text, spec["window"], spec["interval"],
                                                states.get("firing", 0), states.get("pending", 0),
                                                (rule.get("last_error") or "")[:80])))
    Console().print(table)
    firing = [a for a in alerts if a["state"] == "firing"]
    for alert in firing:
        group = ", ".join(f"{k}={v}" for k, v in alert["group"].items())
        typer.echo(visible(f"FIRING {alert['rule']} {group} value={alert['value']}", newlines=False))


@alerts_app.command("apply")
def apply(files: list[Path] = typer.Option(..., "-f", "--file", help="YAML rule file (repeatable)"),
          check: bool = typer.Option(False, "--check", help="validate only, without a server"),
          prune: bool = typer.Option(False, "--prune", help="delete server rules the files do not name"),
          server: str = _SERVER, api_key: str | None = _KEY, ca: Path | None = _CA) -> None:
    """Create or replace every rule of the files on the server."""
    rules = _check(files)
    if check:
        typer.echo(f"{len(rules)} rule(s) valid")
        return
    with _client(server, api_key, ca) as client:
        for rule in rules:
            answer = _call(client, "PUT", f"/api/v1/alerts/rules/{_path(rule['name'])}", rule)
            typer.echo(f"{'created' if answer.get('created') else 'updated'} {rule['name']}")
        if prune:
            wanted = {r["name"] for r in rules}
            for existing in _call(client, "GET", "/api/v1/alerts/rules")["rules"]:
                if existing["name"] not in wanted:
                    _call(client, "DELETE", f"/api/v1/alerts/rules/{_path(existing['name'])}")
                    typer.echo(f"deleted {existing['name']}")


@alerts_app.command("test")
def test(rule: str = typer.Argument(..., help="the rule's name"),
         file: Path | None = typer.Option(None, "-f", "--file", help="take the rule from this file"),
         at: str | None = typer.Option(None, help="evaluate as of this time (default now)"),
         server: str = _SERVER, api_key: str | None = _KEY, ca: Path | None = _CA,
         as_json: bool = typer.Option(False, "--json", help="print the server's answer")) -> None:
    """Evaluate a rule now and show each group's value (changes nothing)."""
    body: JsonObject = {"name": rule}
    if file is not None:
        matching = [r for r in _check([file]) if r["name"] == rule]
        if not matching:
            die(f"{file} has no rule named {rule!r}")
        body = {"rule": matching[0]}
    if at:
        body["at"] = at
    with _client(server, api_key, ca) as client:
        answer = _call(client, "POST", "/api/v1/alerts/test", body)
    if as_json:
        typer.echo(exactjson.dumps(answer).decode())
        return
    typer.echo(f"{answer['rule']}: {answer['condition']} → {'FIRING' if answer['firing'] else 'not firing'}"
               f" ({answer['elapsed_ms']} ms)")
    for group in answer["groups"]:
        labels = ", ".join(f"{k}={v}" for k, v in group["group"].items()) or "(all)"
        mark = "*" if group["active"] else " "
        typer.echo(visible(f" {mark} {labels}: {group['value']}", newlines=False))  # labels are log values
        for key, text in group["annotations"].items():
            typer.echo(visible(f"     {key}: {text}", newlines=False))


def _path(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def register(app: typer.Typer) -> None:
    """Add ``logharbor alerts`` to the main app."""
    app.add_typer(alerts_app, name="alerts")
