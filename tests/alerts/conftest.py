"""Fixtures for the alert tests: a real chDB store, a fresh metadata DB, a manual clock, and real
receivers on loopback (an HTTP webhook receiver and an aiosmtpd SMTP server with STARTTLS+AUTH)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import os
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from tests.conftest import free_port

from logharbor.record import normalize
from logharbor.sealing import Sealer
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.features.alerts.catalog import Catalog
from logharbor.server.features.alerts.channels.secrets import SecretBox
from logharbor.server.features.alerts.evaluator import Evaluator, ManualClock
from logharbor.server.features.alerts.notify import Dispatcher
from logharbor.server.features.alerts.silences import SilenceStore
from logharbor.server.meta.db import MetaStore

T0 = 1_800_000_000_000_000_000  # a whole minute (2027-01-15T08:00:00Z)
S = 1_000_000_000
_tokens = itertools.count()


@pytest.fixture(scope="package")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    """One chDB store for the package (one chDB path per process); tests use their own services."""
    s = EmbeddedStore(tmp_path_factory.mktemp("alerts") / "store")
    s.open()
    yield s
    s.close()


def insert(store: EmbeddedStore, records: list[dict[str, Any]]) -> None:
    """Normalize and insert records as ingest would."""
    rows = b"\n".join(encode_row(normalize(r, received_ns=T0)) for r in records)
    store.insert(rows, dedup_token=f"alerts-test-{next(_tokens)}")


@dataclass
class Harness:
    """Catalog, evaluator and dispatcher on one metadata DB, the shared store and a manual clock."""

    meta: MetaStore
    store: EmbeddedStore
    clock: ManualClock
    catalog: Catalog
    silences: SilenceStore
    evaluator: Evaluator
    dispatcher: Dispatcher
    secrets: SecretBox

    def reopen(self) -> Harness:
        """New objects on the same databases (and the same secrets key): what a server restart sees."""
        return make_harness(self.meta, self.store, self.clock, secrets=self.secrets)


def make_harness(meta: MetaStore, store: EmbeddedStore, clock: ManualClock, *, secrets: SecretBox | None = None,
                 **dispatch: Any) -> Harness:
    secrets = secrets or SecretBox([Sealer({1: os.urandom(32)})])  # the server's is a key file
    catalog = Catalog(meta, secrets)
    silences = SilenceStore(meta)
    dispatcher = Dispatcher(catalog, silences, clock, **({"backoff_s": 1.0} | dispatch))
    evaluator = Evaluator(catalog, lambda sql, params: store.query(sql, params), store.table, clock)
    return Harness(meta, store, clock, catalog, silences, evaluator, dispatcher, secrets)


@pytest.fixture
def harness(tmp_path: Path, store: EmbeddedStore) -> Iterator[Harness]:
    meta = MetaStore(f"sqlite:///{tmp_path / 'meta.db'}")
    meta.create()
    yield make_harness(meta, store, ManualClock(T0))
    meta.close()


# ----------------------------------------------------------------------------- webhook receiver


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 recording requests; ``fail_first`` answers 500 that often."""

    url: str
    secret: str | None = None
    fail_first: int = 0
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)  # every request, failed or not
    delivered: list[dict[str, Any]] = field(default_factory=list)  # bodies answered with 2xx
    lock: threading.Lock = field(default_factory=threading.Lock)

    def signature_ok(self, body: bytes, header: str | None) -> bool:
        if self.secret is None:
            return header is None
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        return header is not None and hmac.compare_digest(expected, header)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with state.lock:
                entry = {"body": orjson.loads(body), "raw": body, "path": self.path,
                         "headers": {k.lower(): v for k, v in self.headers.items()},
                         "signature_ok": state.signature_ok(body, self.headers.get("x-logharbor-signature-256"))}
                state.requests.append(entry)
                failing = len(state.requests) <= state.fail_first
                status = 500 if failing else state.status
                if status < 300:
                    state.delivered.append(entry)
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


# ----------------------------------------------------------------------------- SMTP server


@dataclass
class Mailbox:
    """What the SMTP server received; ``config`` is an email channel config pointing at it."""

    config: dict[str, Any]
    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    tls_sessions: int = 0


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if session.ssl is not None:
            self.box.tls_sessions += 1
        self.box.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[Mailbox]:
    """aiosmtpd on loopback: STARTTLS required (certificate from a test CA), then AUTH LOGIN."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    box = Mailbox(config={})

    def authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == b"alerts" and data.password == b"s3cret-pass"
        if ok:
            box.logins.append(mechanism)
        return AuthResult(success=ok, handled=False)

    port = free_port()
    controller = Controller(_Handler(box), hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, authenticator=authenticate, auth_require_tls=True)
    controller.start()
    box.config = {"host": "127.0.0.1", "port": port, "starttls": True, "ca_file": str(ca_file),
                  "username": "alerts", "password": "s3cret-pass", "from": "logharbor@example.test",
                  "to": ["oncall@example.test", "team@example.test"]}
    yield box
    controller.stop()


def run(coro: Any) -> Any:
    """Run a coroutine to completion (the tests are plain functions)."""
    return asyncio.run(coro)
