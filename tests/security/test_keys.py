"""Key life cycle, audit log, CLI, rate limits and TLS (issue 5)."""

from __future__ import annotations

import os
import ssl
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
import trustme
from tests.conftest import ServerProcess


@pytest.fixture
def server(module_server: ServerProcess) -> ServerProcess:
    """The module's one server (these tests only add keys of their own and read what they made)."""
    return module_server


def whoami(server: ServerProcess, key: str) -> int:
    return httpx.get(server.url + "/api/v1/whoami", headers={"authorization": f"Bearer {key}"}).status_code


def test_first_start_writes_an_owner_only_admin_key(server: ServerProcess) -> None:
    key_file = server.data_dir / "admin.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert server.api_key.startswith("lh_")
    assert server.api_key not in server.log()  # the path is printed, never the key
    listed = httpx.get(server.url + "/api/v1/keys", headers=server.headers).json()["keys"]
    assert all("secret" not in k and server.api_key not in orjson.dumps(k).decode() for k in listed)


def test_revoked_and_expired_keys_stop_working(server: ServerProcess) -> None:
    key = server.create_key("reader")
    assert whoami(server, key) == 200
    prefix = key[3:15]
    assert httpx.delete(server.url + f"/api/v1/keys/{prefix}", headers=server.headers).status_code == 200
    assert whoami(server, key) == 401
    response = httpx.post(server.url + "/api/v1/keys", json={"role": "reader", "expires": "later"},
                          headers=server.headers)
    assert response.status_code == 400 and "duration" in response.json()["error"]["message"]
    response = httpx.post(server.url + "/api/v1/keys", json={"role": "root"}, headers=server.headers)
    assert response.status_code == 400


def test_audit_log_records_admin_actions_and_failures(server: ServerProcess) -> None:
    key = server.create_key("writer", name="ci")
    httpx.delete(server.url + f"/api/v1/keys/{key[3:15]}", headers=server.headers)
    httpx.get(server.url + "/api/v1/whoami", headers={"authorization": "Bearer lh_nope"})
    entries = httpx.get(server.url + "/api/v1/audit", headers=server.headers).json()["entries"]
    actions = [e["action"] for e in entries]
    assert {"key.create", "key.revoke", "auth.failed"} <= set(actions)
    assert any(e["target"] == key[3:15] and e["action"] == "key.revoke" for e in entries)


@pytest.mark.slow
def test_keys_cli_against_the_api(server: ServerProcess) -> None:
    env = dict(os.environ, LOGHARBOR_SERVER=server.url, LOGHARBOR_API_KEY=server.api_key)
    run = [sys.executable, "-m", "logharbor.cli.main", "keys"]
    created = subprocess.run([*run, "create", "--role", "reader", "--tenant", "acme", "--services",
                              "checkout,api", "--expires", "30d"], env=env, capture_output=True, text=True,
                             timeout=60)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert httpx.get(server.url + "/api/v1/whoami", headers={"x-api-key": key}).json() == {
        "prefix": key[3:15], "role": "reader", "name": "", "tenant": "acme", "services": ["checkout", "api"]}
    listed = subprocess.run([*run, "list", "--json"], env=env, capture_output=True, text=True, timeout=60)
    rows = [orjson.loads(line) for line in listed.stdout.splitlines()]
    mine = [r for r in rows if r["prefix"] == key[3:15]]
    assert mine and mine[0]["tenant"] == "acme" and not mine[0]["revoked"]
    assert key[16:] not in listed.stdout
    revoked = subprocess.run([*run, "revoke", key[3:15]], env=env, capture_output=True, text=True, timeout=60)
    assert revoked.returncode == 0 and whoami(server, key) == 401
    bad = subprocess.run([*run, "create", "--role", "god"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "role" in bad.stderr


def test_per_key_ingest_rate(server_factory) -> None:  # type: ignore[no-untyped-def]
    server = server_factory("--ingest-rate", "50")
    body = b"\n".join(orjson.dumps({"message": f"m{i}"}) for i in range(40))
    statuses = [httpx.post(server.url + "/api/v1/logs", content=body, headers=server.headers).status_code
                for _ in range(4)]
    assert statuses[0] == 200 and 429 in statuses
    response = httpx.post(server.url + "/api/v1/logs", content=body, headers=server.headers)
    if response.status_code == 429:
        assert int(response.headers["retry-after"]) >= 1
        assert response.json()["error"]["code"] == "rate_limited"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    d = tmp_path_factory.mktemp("tls")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    cert.private_key_pem.write_to_path(str(d / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(d / "cert.pem"))
    return d / "ca.pem", d / "cert.pem", d / "key.pem"


@pytest.mark.e2e
def test_tls_handshake_and_refusal_without_the_ca(tmp_path: Path, tls_files) -> None:  # type: ignore[no-untyped-def]
    ca, cert, key = tls_files
    server = ServerProcess(tmp_path / "data", "--tls-cert", str(cert), "--tls-key", str(key))
    server.url = server.url.replace("http://", "https://")
    import tests.conftest as conftest

    original_get = conftest.httpx.get
    conftest.httpx.get = lambda url, **kw: original_get(url, verify=ssl.create_default_context(cafile=str(ca)), **kw)
    try:
        server.start()
    finally:
        conftest.httpx.get = original_get
    try:
        verified = httpx.get(server.url + "/api/v1/whoami", headers=server.headers,
                             verify=ssl.create_default_context(cafile=str(ca)))
        assert verified.status_code == 200 and verified.json()["role"] == "admin"
        with pytest.raises(httpx.ConnectError):
            httpx.get(server.url + "/healthz")  # the system trust store does not know our CA
        env = dict(os.environ, LOGHARBOR_SERVER=server.url, LOGHARBOR_API_KEY=server.api_key)
        cli = [sys.executable, "-m", "logharbor.cli.main", "keys", "list"]
        assert subprocess.run([*cli, "--ca", str(ca)], env=env, capture_output=True, timeout=60).returncode == 0
        refused = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and "certificate" in refused.stderr.lower()
    finally:
        server.stop()


@pytest.mark.parametrize("extra", [{"service": "checkout"}, {"tennant": "globex"}, {"scope": {"tenant": "acme"}},
                                   {"expires_ns": 1}, {"expires_in": "1h"}, {"permissions": ["read"]}])
def test_a_key_request_with_an_unknown_field_is_refused_naming_it(server: ServerProcess, extra: dict) -> None:  # type: ignore[type-arg]
    """Ignored, each of these made a key wider or longer-lived than asked: an acme reader of every
    service (``service`` for ``services``), an unscoped reader, a key that never expires."""
    with server.client() as client:
        before = len(client.get("/api/v1/keys").json()["keys"])
        response = client.post("/api/v1/keys", json={"role": "reader", "tenant": "acme", **extra})
        assert response.status_code == 400, response.text
        assert next(iter(extra)) in response.json()["error"]["message"]
        assert len(client.get("/api/v1/keys").json()["keys"]) == before  # no key was made
