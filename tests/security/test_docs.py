"""docs/security.md: the endpoint table says what the auth table enforces and names every route,
its worked example runs against a real server, and its flags exist and parse."""

from __future__ import annotations

import re
import shlex
import warnings
from typing import Any

import orjson
import typer
from tests.conftest import ROOT, ServerProcess

from logharbor.cli.main import app as cli
from logharbor.server.auth import required_permission
from logharbor.server.config import ServerConfig

DOC = ROOT / "docs" / "security.md"
FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def endpoint_rows() -> list[tuple[str, str, str]]:
    """(method, path, permission) of every endpoint the table under "Every endpoint" names."""
    text = DOC.read_text().split("### Every endpoint", 1)[1].split("\n\n| endpoint", 1)[1]
    rows = []
    for line in text.split("\n\n", 1)[0].splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        for endpoint in re.findall(r"`([A-Z]+ [^`]+)`", cells[0]):
            method, path = endpoint.split(" ", 1)
            rows.append((method, path, cells[1]))
    return rows


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path).replace("…", "/")


def test_the_endpoint_table_is_what_the_server_enforces() -> None:
    rows = endpoint_rows()
    assert len(rows) > 60
    for method, path, permission in rows:
        expected = None if permission == "public" else permission
        assert required_permission(method, concrete(path)) == expected, (method, path)


def test_the_endpoint_table_names_every_route(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from logharbor.server.app import create_app

    documented = {(m, p) for m, p, _ in endpoint_rows()}
    with warnings.catch_warnings():  # FastAPI warns of the ES routes' duplicate operation ids
        warnings.simplefilter("ignore")
        paths = create_app(ServerConfig(data_dir=tmp_path)).openapi()["paths"]
    routes = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    assert routes <= documented, sorted(routes - documented)


def inside(expected: Any, actual: Any) -> bool:
    """Whether ``expected`` is a part of ``actual`` (dict keys recursively; other values equal)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and inside(v, actual[k]) for k, v in expected.items())
    return bool(expected == actual)


def test_the_worked_example_runs(server: ServerProcess) -> None:
    keys = {"admin": server.api_key}
    last: Any = None
    steps = 0
    for info, body in FENCE.findall(DOC.read_text()):
        words = info.split()
        if words[:2] == ["json", "request"]:
            method, path = words[2], words[3]
            options = dict(w.split("=", 1) for w in words[4:])
            with server.client(headers={"authorization": f"Bearer {keys[options['as']]}"}) as c:
                response = c.request(method, path, content=body.strip() or None,
                                     headers={"content-type": "application/json"})
            assert response.status_code == int(options["status"]), (info, response.text)
            last = response.json() if "json" in response.headers.get("content-type", "") else None
            if method == "POST" and path == "/api/v1/keys" and response.status_code == 201:
                keys[orjson.loads(body)["name"]] = last["key"]
            steps += 1
        elif words[:2] == ["json", "answer"]:
            assert inside(orjson.loads(body), last), (body, last)
    assert steps >= 10


def test_the_flags_exist_and_parse() -> None:
    [block] = [b for info, b in FENCE.findall(DOC.read_text()) if info.strip() == "sh flags"]
    words = shlex.split(block)
    flags = dict(zip(words[2::2], words[3::2], strict=True))
    command = typer.main.get_command(cli).commands["server"]  # type: ignore[attr-defined]
    options = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}  # --no-auth
    assert set(flags) <= options, set(flags) - options
    documented = {m[1] for m in re.finditer(r"^\| `(--[a-z-]+)`", DOC.read_text(), re.MULTILINE)}
    assert documented and documented <= options, documented - options
    ServerConfig(channel_allow_hosts=flags["--channel-allow-hosts"].split(","),
                 channel_deny_hosts=flags["--channel-deny-hosts"].split(","))
