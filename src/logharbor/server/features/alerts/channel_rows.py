"""Channel rows of the catalog: create, replace, read, delete, and seal their secrets.

Split from ``catalog.py`` (which mixes it in) because a channel row is two halves — the settings
shown by the API and the sealed secrets (``channels/secrets.py``) — and the scope of the key that
made it; the rules of both live here in one place.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import delete, insert, or_, select, update

from logharbor.server.meta.db import MetaStore
from logharbor.server.scopes import GLOBAL, Scope

from .channels import KINDS, UNDELIVERED, validate_config
from .channels.secrets import SecretBox, SecretsUnreadable, merge, shown, split
from .rules import validation_message
from .tables import alert_channels, alert_notifications

__all__ = ["CatalogError", "ChannelRows", "taken"]

log = logging.getLogger("logharbor.alerts")


class CatalogError(Exception):
    """A request the catalog refuses: ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def taken(what: str, name: str) -> CatalogError:
    """A name held by an object outside the caller's scope: taken, and nothing more is said."""
    return CatalogError(409, "exists", f"the {what} name {name!r} is taken; choose another")


class ChannelRows:
    """The channel half of :class:`~logharbor.server.features.alerts.catalog.Catalog`."""

    meta: MetaStore
    secrets: SecretBox
    #: raises ValueError when a channel's host is not allowed (``channels/hosts.py``)
    check_host: Callable[[str, BaseModel], None] | None
    #: the catalog's: every rule a scope covers (to refuse deleting a channel in use)
    list_rules: Callable[..., list[dict[str, Any]]]


    def put_channel(self, name: str, kind: str, config: dict[str, Any],
                    owner: Scope = GLOBAL) -> tuple[dict[str, Any], bool]:
        """Create (scoped like ``owner``) or replace a channel; secrets left out or sent as shown
        keep the stored ones (see ``channels/secrets.py``)."""
        now = time.time_ns()
        fields = _secret_fields(kind)
        with self.meta.engine.begin() as conn:
            row = conn.execute(select(alert_channels).where(alert_channels.c.name == name)).mappings().first()
            if row is not None and not owner.sees(row):
                raise taken("channel", name)
            public: dict[str, Any] = {}
            stored: dict[str, Any] = {}
            if row is not None and row["kind"] == kind:
                public, stored = self._halves(dict(row))
            try:
                full = merge(fields, dict(config), public, stored)
                model = validate_config(kind, full)
            except ValidationError as exc:
                raise CatalogError(400, "invalid_channel", validation_message(exc)) from None
            except (ValueError, SecretsUnreadable) as exc:
                raise CatalogError(400, "invalid_channel", str(exc)) from None
            if self.check_host is not None:
                try:
                    self.check_host(kind, model)
                except ValueError as exc:
                    raise CatalogError(400, "host_not_allowed", str(exc)) from None
            shown_config, secrets = split(fields, model.model_dump(by_alias=True))
            values = {"kind": kind, "config": shown_config, "secrets": self.secrets.seal(secrets),
                      "updated_ns": now}
            if row is None:
                conn.execute(insert(alert_channels).values(name=name, created_ns=now, **values,
                                                           **owner.columns()))
            else:
                conn.execute(update(alert_channels).where(alert_channels.c.id == row["id"]).values(**values))
        return self.get_channel(name) or {}, row is None

    def _halves(self, row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(shown config, secrets) of a stored row; a row from before sealing holds them in clear."""
        if row["secrets"] is None:
            return split(_secret_fields(row["kind"]), dict(row["config"]))
        return dict(row["config"]), self.secrets.open(row["secrets"])

    def channel(self, name: str) -> tuple[str, dict[str, Any], Scope] | None:
        """(kind, config with its secrets, scope) of a channel, for sending (SecretsUnreadable when
        this server lacks the key that sealed them)."""
        with self.meta.engine.connect() as conn:
            row = conn.execute(select(alert_channels).where(alert_channels.c.name == name)).mappings().first()
        if row is None:
            return None
        public, secrets = self._halves(dict(row))
        fields = _secret_fields(row["kind"])
        config = {**{k: v for k, v in public.items() if k not in fields}, **secrets}
        return row["kind"], config, Scope.from_row(row)

    def get_channel(self, name: str, viewer: Scope = GLOBAL) -> dict[str, Any] | None:
        """One channel as the API shows it (never a secret), or None."""
        with self.meta.engine.connect() as conn:
            row = conn.execute(select(alert_channels).where(alert_channels.c.name == name)).mappings().first()
        if not viewer.sees(row):
            return None
        return _channel_out(dict(row))

    def list_channels(self, viewer: Scope = GLOBAL) -> list[dict[str, Any]]:
        """Every channel ``viewer`` covers, as the API shows it (never a secret)."""
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(alert_channels).order_by(alert_channels.c.name)).mappings().all()
        return [_channel_out(dict(r)) for r in rows if viewer.sees(r)]

    def delete_channel(self, name: str, viewer: Scope = GLOBAL) -> None:
        """Delete a channel no rule uses (409 otherwise, naming the rules ``viewer`` sees)."""
        if self.get_channel(name, viewer) is None:
            raise CatalogError(404, "not_found", f"no channel named {name!r}")
        users = [r for r in self.list_rules() if name in r["spec"].get("channels", [])]
        if users:
            seen = [r["name"] for r in users if viewer.covers(Scope.from_json(r["scope"]))]
            others = len(users) - len(seen)
            text = ", ".join(seen)
            if others:
                text += f"{' and ' if seen else ''}{others} outside this key's scope"
            raise CatalogError(409, "in_use", f"channel {name!r} is used by rules: {text}")
        with self.meta.engine.begin() as conn:
            done = conn.execute(delete(alert_channels).where(alert_channels.c.name == name))
        if done.rowcount == 0:
            raise CatalogError(404, "not_found", f"no channel named {name!r}")

    def scrub_delivery_errors(self) -> int:
        """Replace delivery errors an older release stored with the receiver's answer or the URL
        (``webhook answered 500: <body>``, ``webhook https://…/TOKEN: ConnectError``, ``SMTP 535:
        <reply>``) by the one sentence a failure says now; how many rows changed."""
        with self.meta.engine.begin() as conn:
            done = conn.execute(update(alert_notifications).where(or_(
                alert_notifications.c.error.like("webhook %"), alert_notifications.c.error.like("SMTP %")))
                .values(error=UNDELIVERED))
        return int(done.rowcount or 0)

    def migrate_secrets(self) -> int:
        """Seal secrets stored in clear by an older release, reseal those under an older key, and
        scrub old delivery errors; how many rows changed. A row this server cannot open is left
        as it is (and logged)."""
        changed = 0
        with self.meta.engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(select(alert_channels)).mappings().all()]
        for row in rows:
            if row["secrets"] is not None and self.secrets.is_current(row["secrets"]):
                continue
            try:
                public, secrets = self._halves(row)
            except SecretsUnreadable as exc:
                log.warning("channel %r: %s", row["name"], exc)
                continue
            with self.meta.engine.begin() as conn:
                conn.execute(update(alert_channels).where(alert_channels.c.id == row["id"],
                                                          alert_channels.c.updated_ns == row["updated_ns"])
                             .values(config=public, secrets=self.secrets.seal(secrets)))
            changed += 1
        changed += self.scrub_delivery_errors()
        if changed:
            self.meta.scrub()
        return changed


def _secret_fields(kind: str) -> tuple[str, ...]:
    return getattr(KINDS.get(kind), "secret_fields", ())  # type: ignore[no-any-return]


def _channel_out(row: dict[str, Any]) -> dict[str, Any]:
    fields = _secret_fields(row["kind"])
    config = dict(row["config"]) if row["secrets"] is not None else split(fields, dict(row["config"]))[0]
    config, secure = shown(fields, config)
    return {"name": row["name"], "kind": row["kind"], "config": config, "secure_fields": secure,
            "scope": Scope.from_row(row).as_json(), "created_ns": row["created_ns"],
            "updated_ns": row["updated_ns"]}
