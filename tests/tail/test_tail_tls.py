"""Tail over wss:// and SSE over https://, and trace, against a server whose CA is private (--ca)."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import trustme
from tests.conftest import ROOT, ServerProcess


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, Path]]:
    d = tmp_path_factory.mktemp("tail-tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    cert.private_key_pem.write_to_path(str(d / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(d / "cert.pem"))
    server = ServerProcess(d / "data", "--tls-cert", str(d / "cert.pem"), "--tls-key", str(d / "key.pem"),
                           "--batch-max-age", "0.2")
    server.url = server.url.replace("http://", "https://")
    import tests.conftest as conftest

    verify = ssl.create_default_context(cafile=str(d / "ca.pem"))
    original_get = conftest.httpx.get
    conftest.httpx.get = lambda url, **kw: original_get(url, verify=verify, **kw)  # the readiness probe
    try:
        server.start()
    finally:
        conftest.httpx.get = original_get
    yield server, d / "ca.pem"
    server.stop()


@pytest.mark.parametrize("transport", [[], ["--ws"]], ids=["https-sse", "wss"])
@pytest.mark.e2e
def test_tail_and_trace_with_a_private_ca(tls_server, transport: list[str]) -> None:  # type: ignore[no-untyped-def]
    server, ca = tls_server
    tag = "tls-ws" if transport else "tls-sse"
    env = dict(os.environ, LOGHARBOR_API_KEY=server.api_key, LOGHARBOR_SERVER=server.url, LOGHARBOR_CA=str(ca))
    proc = subprocess.Popen([sys.executable, "-m", "logharbor.cli.main", "tail", *transport, "-o", "json",
                             f"service:{tag}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            cwd=ROOT, text=True)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert "tailing" in proc.stderr.readline()
        trace = "5759e988bd862e3fe1be46a99427" + ("0001" if transport else "0002")
        body = orjson.dumps({"service": tag, "message": f"{tag} over TLS", "trace_id": trace})
        response = httpx.post(server.url + "/api/v1/logs", content=body, headers=server.headers,
                              verify=ssl.create_default_context(cafile=str(ca)))
        assert response.status_code == 200
        assert orjson.loads(proc.stdout.readline())["message"] == f"{tag} over TLS"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    shown = subprocess.run([sys.executable, "-m", "logharbor.cli.main", "trace", trace, "-o", "json"],
                           capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert shown.returncode == 0, shown.stderr
    assert [r["message"] for r in orjson.loads(shown.stdout)["records"]] == [f"{tag} over TLS"]
    without_ca = {k: v for k, v in env.items() if k != "LOGHARBOR_CA"}
    refused = subprocess.run([sys.executable, "-m", "logharbor.cli.main", "tail", *transport, "x"],
                             capture_output=True, text=True, timeout=60, env=without_ca, cwd=ROOT)
    assert refused.returncode == 2 and "certificate" in refused.stderr.lower()
