"""Issue 21 item 8: channels are no way into the server's private network (SSRF).

The attacks: aim a webhook or an email channel at the cloud metadata address (or a name that
resolves to a denied address), read an internal service's answer or an SMTP/other banner through
``POST …/channels/{name}/test``, escape through a redirect, and map ports by telling refused ones
from open ones.
"""

from __future__ import annotations

import pytest
from tests.conftest import ServerProcess

from .receivers import banner_port, closed_port, http_receiver


@pytest.fixture
def server(module_server: ServerProcess) -> ServerProcess:
    """The module's one server (these tests only add channels of their own names)."""
    return module_server


def put_channel(server: ServerProcess, name: str, kind: str, config: dict) -> tuple[int, dict]:  # type: ignore[type-arg]
    with server.client() as c:
        response = c.put(f"/api/v1/channels/{name}", json={"kind": kind, "config": config})
    return response.status_code, response.json()


def send_test(server: ServerProcess, name: str) -> tuple[int, str]:
    with server.client(timeout=60) as c:
        response = c.post(f"/api/v1/channels/{name}/test")
    return response.status_code, response.text


def email(host: str, port: int, **extra: object) -> dict:  # type: ignore[type-arg]
    return {"host": host, "port": port, "starttls": False, "from": "lh@example.test", "to": ["a@example.test"],
            "timeout_s": 1, **extra}


@pytest.mark.parametrize(("kind", "config"), [
    ("webhook", {"url": "http://169.254.169.254/latest/meta-data/iam/security-credentials/"}),
    ("webhook", {"url": "http://[::ffff:169.254.169.254]/latest/meta-data/"}),
    ("webhook", {"url": "http://metadata.google.internal/computeMetadata/v1/"}),
    ("webhook", {"url": "http://[fe80::1]:8080/"}),
    ("webhook", {"url": "http://100.100.100.200/latest/meta-data/"}),
    ("email", email("169.254.169.254", 25)),
])
def test_metadata_and_link_local_addresses_are_refused_by_default(server: ServerProcess, kind: str,
                                                                  config: dict) -> None:  # type: ignore[type-arg]
    status, body = put_channel(server, "meta", kind, config)
    assert status == 400 and body["error"]["code"] == "host_not_allowed", body


def test_names_are_checked_after_resolution_at_save_and_at_send(server_factory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``localhost`` resolves to loopback: denied when loopback is, both when saved and when sent."""
    with http_receiver() as hook:
        port = hook.url.rsplit(":", 1)[1]
        data = tmp_path / "data"
        strict = ("--channel-deny-hosts", "default,127.0.0.0/8,::1/128")
        server: ServerProcess = server_factory(*strict, data_dir=data)
        status, body = put_channel(server, "local", "webhook", {"url": f"http://localhost:{port}/x"})
        assert status == 400 and body["error"]["code"] == "host_not_allowed"
        server.stop()
        server = ServerProcess(data)  # saved while loopback was allowed …
        server.start()
        assert put_channel(server, "local", "webhook", {"url": f"http://localhost:{port}/x"})[0] == 201
        assert send_test(server, "local")[0] == 200 and len(hook.requests) == 1
        server.stop()
        server = ServerProcess(data, *strict)  # … and sent once it is not: refused, nothing sent
        server.start()
        status, text = send_test(server, "local")
        server.stop()
        assert status == 400 and "host_not_allowed" in text
        assert len(hook.requests) == 1


def test_the_allow_list_confines_channels(server_factory) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = server_factory("--channel-allow-hosts", "*.example.test,10.0.0.0/8")
    assert put_channel(server, "ok", "webhook", {"url": "http://10.1.2.3/x"})[0] == 201
    assert put_channel(server, "name", "webhook", {"url": "https://hooks.example.test/x"})[0] == 201
    status, body = put_channel(server, "no", "webhook", {"url": "http://127.0.0.1:9/x"})
    assert status == 400 and "--channel-allow-hosts" in body["error"]["message"]


def test_a_test_send_never_echoes_the_receiver(server: ServerProcess) -> None:
    with http_receiver(status=500, body=b"INTERNAL-ADMIN-PAGE root:x:0:0") as internal:
        assert put_channel(server, "internal", "webhook", {"url": internal.url + "/admin", "timeout_s": 1})[0] == 201
        status, text = send_test(server, "internal")
    assert status == 502 and "INTERNAL-ADMIN-PAGE" not in text and "500" not in text
    with banner_port(b"220 SECRET-BANNER mail.internal ESMTP Postfix (Debian)\r\n") as port:
        assert put_channel(server, "banner", "email", email("127.0.0.1", port))[0] == 201
        status, text = send_test(server, "banner")
    assert status == 502 and "SECRET-BANNER" not in text and "Postfix" not in text
    with server.client() as c:
        outbox = c.get("/api/v1/alerts/notifications").text
    assert "INTERNAL-ADMIN-PAGE" not in outbox and "SECRET-BANNER" not in outbox


def test_a_redirect_is_not_followed(server: ServerProcess) -> None:
    with http_receiver() as target, http_receiver(status=302) as hop:
        hop.location = target.url + "/latest/meta-data/"
        assert put_channel(server, "hop", "webhook", {"url": hop.url + "/x", "timeout_s": 1})[0] == 201
        status, _ = send_test(server, "hop")
    assert status == 502 and len(hop.requests) == 1 and target.requests == []


@pytest.mark.parametrize("kind", ["webhook", "email"])
def test_refused_and_open_ports_answer_alike(server: ServerProcess, kind: str) -> None:
    """A closed port, a port speaking another protocol, and one that answers an error: one answer."""
    answers = []
    refused = closed_port()
    with banner_port(b"SSH-2.0-OpenSSH_9.6\r\n") as other, http_receiver(status=404, body=b"nope") as web:
        web_port = int(web.url.rsplit(":", 1)[1])
        for i, port in enumerate((refused, other, web_port)):
            config = ({"url": f"http://127.0.0.1:{port}/x", "timeout_s": 1} if kind == "webhook"
                      else email("127.0.0.1", port))
            assert put_channel(server, f"probe-{kind}-{i}", kind, config)[0] == 201
            status, text = send_test(server, f"probe-{kind}-{i}")
            answers.append((status, text.replace(f"probe-{kind}-{i}", "NAME")))
    assert answers[0][0] == 502 and len(set(answers)) == 1, answers
