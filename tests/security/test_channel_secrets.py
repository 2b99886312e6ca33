"""Issue 21 items 2 and 7: channel secrets are write-only for everybody and sealed in meta.db.

The attacks: read a webhook's Authorization header, a Slack-style token URL or an SMTP password
back through the API (as a reader, a scoped reader, an admin), or from the metadata database's
files on disk; and an admin who cannot read a stored secret sends it to a host of its choosing.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess

from .receivers import http_receiver

TOKENS = ["HDR-SECRET-7f3a", "PATH-TOKEN-91bc", "QUERY-TOKEN-22de", "HMAC-SECRET-5e6f", "SMTP-PASS-0a1b"]


def meta_bytes(data_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in data_dir.glob("meta.db*"))


def webhook(url: str) -> dict:  # type: ignore[type-arg]
    return {"kind": "webhook", "config": {
        "url": f"{url}/services/T0/B0/PATH-TOKEN-91bc?token=QUERY-TOKEN-22de",
        "headers": {"Authorization": "Bearer HDR-SECRET-7f3a", "X-Team": "ops"},
        "secret": "HMAC-SECRET-5e6f", "timeout_s": 5}}


EMAIL = {"kind": "email", "config": {"host": "127.0.0.1", "port": 2525, "starttls": False,
                                     "username": "alerts", "password": "SMTP-PASS-0a1b",
                                     "from": "lh@example.test", "to": ["oncall@example.test"]}}


def every_view(server: ServerProcess, keys: dict[str, str]) -> str:
    """Everything any key can read about channels (and what the server logged of them)."""
    seen = []
    for key in keys.values():
        with server.client(headers={"authorization": f"Bearer {key}"}) as c:
            for path in ("/api/v1/channels", "/api/v1/channels/hook", "/api/v1/channels/mail",
                         "/api/v1/audit?limit=1000", "/api/v1/alerts/notifications"):
                seen.append(c.get(path).text)
    return "\n".join(seen)


def test_secrets_are_write_only_and_sealed(server_factory) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = server_factory()
    keys = {"admin": server.api_key, "reader": server.create_key("reader"),
            "scoped": server.create_key("reader", tenant="acme")}
    with http_receiver() as hook, server.client() as c:
        assert c.put("/api/v1/channels/hook", json=webhook(hook.url)).status_code == 201
        assert c.put("/api/v1/channels/mail", json=EMAIL).status_code == 201
        views = every_view(server, keys) + server.log()
        for token in TOKENS:
            assert token not in views, token
        shown = c.get("/api/v1/channels/hook").json()
        assert shown["secure_fields"] == ["headers", "secret", "url"]
        assert shown["config"]["url"].startswith(hook.url) and shown["config"]["headers"]["X-Team"] == "********"
        assert c.get("/api/v1/channels/mail").json()["secure_fields"] == ["password"]

        # write back what GET showed, and the channel without its secrets: both keep them (Grafana's
        # secureJsonData: a secret is replaced only by writing it again)
        assert c.put("/api/v1/channels/hook", json={"kind": "webhook", "config": shown["config"]}).status_code == 200
        config = {k: v for k, v in shown["config"].items() if k not in ("url", "headers", "secret")}
        assert c.put("/api/v1/channels/hook", json={"kind": "webhook", "config": config}).status_code == 200
        assert c.post("/api/v1/channels/hook/test").status_code == 200
        got = hook.requests[-1]
        assert got["path"] == "/services/T0/B0/PATH-TOKEN-91bc?token=QUERY-TOKEN-22de"
        assert got["headers"]["authorization"] == "Bearer HDR-SECRET-7f3a" and got["headers"]["x-team"] == "ops"
        assert "x-logharbor-signature-256" in got["headers"]

        # a kept secret never follows the channel to a new host: the admin must write it again
        moved = {**shown["config"], "url": "http://127.0.0.2:9/steal"}
        response = c.put("/api/v1/channels/hook", json={"kind": "webhook", "config": moved})
        assert response.status_code == 400 and "destination changed" in response.json()["error"]["message"]
        response = c.put("/api/v1/channels/mail", json={"kind": "email", "config": {**EMAIL["config"],
                                                         "host": "127.0.0.2", "password": "********"}})
        assert response.status_code == 400, response.text
        # writing a secret again replaces it
        again = {**shown["config"], "headers": {"Authorization": "Bearer NEW-SECRET", "X-Team": "********"}}
        assert c.put("/api/v1/channels/hook", json={"kind": "webhook", "config": again}).status_code == 200
        assert c.post("/api/v1/channels/hook/test").status_code == 200
        assert hook.requests[-1]["headers"]["authorization"] == "Bearer NEW-SECRET"
    server.stop()
    on_disk = meta_bytes(server.data_dir)
    for token in [*TOKENS, "NEW-SECRET"]:
        assert token.encode() not in on_disk, token
    assert (server.data_dir / "secrets.key").stat().st_mode & 0o777 == 0o600


def test_an_upgrade_seals_secrets_stored_in_clear(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Rows an older release wrote (config in clear, no ``secrets``) are sealed at start and still send."""
    data = tmp_path / "old"
    server: ServerProcess = server_factory(data_dir=data)
    server.stop()
    with http_receiver() as hook:
        config = webhook(hook.url)["config"]
        with sqlite3.connect(data / "meta.db") as db:
            now = time.time_ns()
            db.execute("INSERT INTO alert_channels (name, kind, config, created_ns, updated_ns) "
                       "VALUES ('legacy', 'webhook', ?, ?, ?)", (orjson.dumps(config).decode(), now, now))
            # an older release's outbox error held the URL (its token) or the receiver's answer
            db.execute("INSERT INTO alert_notifications (dedup_key, channel, rule_id, rule_name, batch, kind, "
                       "alert, status, attempts, next_attempt_ns, created_ns, error) VALUES ('k', 'legacy', 1, "
                       "'r', 1, 'firing', ?, 'failed', 6, 1, 1, ?)",
                       (orjson.dumps({"labels": {}, "annotations": {}}).decode(),
                        f"webhook {config['url']}: ConnectError: refused"))
        assert b"HDR-SECRET-7f3a" in meta_bytes(data)  # what an older release left on disk
        server.start()
        with server.client() as c:
            shown = c.get("/api/v1/channels/legacy").json()
            assert shown["secure_fields"] == ["headers", "secret", "url"]
            assert c.post("/api/v1/channels/legacy/test").status_code == 200
            outbox = c.get("/api/v1/alerts/notifications").text
        assert "PATH-TOKEN-91bc" not in outbox and "not delivered" in outbox
        assert hook.requests[-1]["headers"]["authorization"] == "Bearer HDR-SECRET-7f3a"
        server.stop()
    on_disk = meta_bytes(data)
    for token in TOKENS[:4]:
        assert token.encode() not in on_disk, token
    with sqlite3.connect(data / "meta.db") as db:
        sealed, = db.execute("SELECT secrets FROM alert_channels WHERE name = 'legacy'").fetchone()
    assert sealed and "HDR" not in sealed


def test_secrets_follow_the_at_rest_key(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With --encryption-key-file the secrets are sealed with it (secrets.key is not created)."""
    from logharbor.sealing import generate_key_file

    key_file = tmp_path / "at-rest.key"
    generate_key_file(key_file)
    server: ServerProcess = server_factory("--encryption-key-file", str(key_file))
    with http_receiver() as hook, server.client() as c:
        assert c.put("/api/v1/channels/hook", json=webhook(hook.url)).status_code == 201
        assert c.post("/api/v1/channels/hook/test").status_code == 200
    assert hook.requests[-1]["headers"]["authorization"] == "Bearer HDR-SECRET-7f3a"
    assert not (server.data_dir / "secrets.key").exists()
    server.stop()
    assert b"HDR-SECRET-7f3a" not in meta_bytes(server.data_dir)


@pytest.mark.parametrize("config", [
    {"url": "http://127.0.0.1:9/x", "headers": {"Authorization": "********"}},
    {"url": "http://127.0.0.1:9/x", "secret": "********"},
])
def test_a_mask_stands_for_a_stored_secret_only(module_server: ServerProcess, config: dict) -> None:  # type: ignore[type-arg]
    """A new channel whose secret is the mask would store the mask itself: refused, naming the field.
    (Both cases share the module's server: each is refused, so nothing is left behind.)"""
    server = module_server
    response = server.client().post("/api/v1/channels", json={"name": "new", "kind": "webhook", "config": config})
    assert response.status_code == 400 and "stands for a stored value" in response.json()["error"]["message"]
    assert httpx.get(server.url + "/api/v1/channels/new", headers=server.headers).status_code == 404


def test_a_server_without_the_sealing_key_says_so(server_factory) -> None:  # type: ignore[no-untyped-def]
    """Servers sharing a metadata database need one secrets key: a server with another one says
    which key is missing rather than sending garbage."""
    from logharbor.sealing import generate_key_file

    server: ServerProcess = server_factory()
    with http_receiver() as hook:
        assert server.client().put("/api/v1/channels/hook", json=webhook(hook.url)).status_code == 201
        server.stop()
        (server.data_dir / "secrets.key").unlink()
        generate_key_file(server.data_dir / "secrets.key")
        server.start()
        response = server.client().post("/api/v1/channels/hook/test")
        assert hook.requests == []
    assert response.status_code == 500 and response.json()["error"]["code"] == "secrets_unreadable"
    assert "--secrets-key-file" in response.json()["error"]["message"]
