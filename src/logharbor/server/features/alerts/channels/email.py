"""Email channel: SMTP with STARTTLS (or implicit TLS), login, several recipients.

smtplib is blocking, so a send runs in a worker thread. Connection problems and 4xx SMTP
replies are retried by the dispatcher; 5xx replies (a refused recipient, failed login) are
permanent. The subject is the notification's (``[FIRING] rule: summary``), the body its text.
The connection goes to the addresses the host rules checked (``hosts.py``), under the configured
name for STARTTLS/TLS verification; what the server answers (banner, replies) goes to the server
log only, never to the API or the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from logharbor.models import InputModel

from .base import UNDELIVERED, Blocked, Notification, Permanent, Retriable
from .hosts import HostNotAllowed, HostPolicy, Unresolvable

__all__ = ["EmailChannel", "EmailConfig"]

log = logging.getLogger("logharbor.alerts")


class _Pinned:
    """Connects to checked addresses while smtplib keeps the configured name (``self._host``)."""

    addresses: list[str]

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        error: OSError = OSError(f"no address for {host}")
        for address in self.addresses:
            try:
                sock = socket.create_connection((address, port), timeout)
            except OSError as exc:
                error = exc
                continue
            if isinstance(self, smtplib.SMTP_SSL):
                return self.context.wrap_socket(sock, server_hostname=self._host)  # type: ignore[attr-defined]
            return sock
        raise error


class _PinnedSMTP(_Pinned, smtplib.SMTP):
    def __init__(self, host: str, port: int, addresses: list[str], **kwargs: Any) -> None:
        self.addresses = addresses
        super().__init__(host, port, **kwargs)


class _PinnedSMTPS(_Pinned, smtplib.SMTP_SSL):
    def __init__(self, host: str, port: int, addresses: list[str], **kwargs: Any) -> None:
        self.addresses = addresses
        super().__init__(host, port, **kwargs)


class EmailConfig(InputModel):
    """The SMTP server, the login and who gets the mail."""

    host: str = Field(..., min_length=1)
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = Field(True, description="upgrade the connection with STARTTLS (port 587)")
    tls: bool = Field(False, description="implicit TLS from the first byte (port 465)")
    ca_file: str | None = Field(None, description="PEM CA bundle to verify the server with")
    username: str | None = None
    password: str | None = None
    sender: str = Field(..., min_length=3, alias="from")
    to: list[str] = Field(..., min_length=1)
    timeout_s: float = Field(20.0, gt=0, le=300)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @model_validator(mode="after")
    def _check(self) -> EmailConfig:
        if self.starttls and self.tls:
            raise ValueError("choose starttls or tls, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together")
        for address in [self.sender, *self.to]:
            if "@" not in address or any(c in address for c in "\r\n"):
                raise ValueError(f"{address!r} is not an email address")
        return self


class EmailChannel:
    """Sends one notification as one email to every recipient."""

    kind: ClassVar[str] = "email"
    config_model: ClassVar[type[BaseModel]] = EmailConfig
    secret_fields: ClassVar[tuple[str, ...]] = ("password",)

    def __init__(self, config: EmailConfig, hosts: HostPolicy | None = None) -> None:
        self.config = config
        self.hosts = hosts or HostPolicy()

    @staticmethod
    def destination(config: BaseModel) -> tuple[str, int]:
        """(host, port) the channel connects to."""
        return config.host, config.port  # type: ignore[attr-defined]

    def message(self, notification: Notification) -> EmailMessage:
        """The email for one notification."""
        msg = EmailMessage()
        msg["Subject"] = notification.subject.replace("\r", " ").replace("\n", " ")[:900]
        msg["From"] = self.config.sender
        msg["To"] = ", ".join(self.config.to)
        msg["Date"] = formatdate(notification.sent_ns / 1e9, usegmt=True)
        msg["Message-ID"] = make_msgid(domain="logharbor")
        msg["X-Logharbor-Rule"] = notification.rule
        msg.set_content(notification.text())
        return msg

    async def send(self, notification: Notification) -> None:
        """Send once over SMTP (in a worker thread); raise Retriable or Permanent."""
        await asyncio.to_thread(self._send, self.message(notification))

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.ca_file)

    def _send(self, msg: EmailMessage) -> None:
        c = self.config
        try:
            addresses = self.hosts.check(c.host, c.port)
        except Unresolvable as exc:
            log.warning("email via %s:%d not delivered: %s", c.host, c.port, exc)
            raise Retriable(UNDELIVERED) from None
        except HostNotAllowed as exc:
            raise Blocked(str(exc)) from None
        try:
            self._session(msg, addresses)
        except (Retriable, Permanent) as exc:
            log.warning("email via %s:%d not delivered: %s", c.host, c.port, exc.__cause__ or exc)
            raise type(exc)(UNDELIVERED) from exc.__cause__

    def _session(self, msg: EmailMessage, addresses: list[str]) -> None:
        """One SMTP session; the errors it raises carry the server's reply (for the log only)."""
        c = self.config
        try:
            if c.tls:
                smtp: smtplib.SMTP = _PinnedSMTPS(c.host, c.port, addresses, timeout=c.timeout_s,
                                                  context=self._context())
            else:
                smtp = _PinnedSMTP(c.host, c.port, addresses, timeout=c.timeout_s)
            with smtp:
                smtp.ehlo()
                if c.starttls:
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                if c.username is not None and c.password is not None:
                    smtp.login(c.username, c.password)
                smtp.send_message(msg, from_addr=c.sender, to_addrs=c.to)
        except smtplib.SMTPResponseException as exc:
            text = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            raise (Retriable if 400 <= exc.smtp_code < 500 else Permanent)(text) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise Permanent(f"SMTP refused recipients: {sorted(exc.recipients)}") from exc
        except ssl.SSLError as exc:
            raise Permanent(f"SMTP TLS: {exc}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise Retriable(f"SMTP {c.host}:{c.port}: {type(exc).__name__}: {exc}") from exc
