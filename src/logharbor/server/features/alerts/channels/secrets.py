"""Channel secrets: write-only through the API, sealed in the metadata database.

Each channel kind names its ``secret_fields`` (anything that authenticates: a webhook's ``url``
— Slack-style URLs carry their token in the path —, its ``headers`` and HMAC ``secret``, an SMTP
``password``). A stored channel row keeps two things:

- ``config``: the settings with each secret replaced by its *shown* form (``********``; a URL
  as ``https://host:port/********``; headers as ``{"Authorization": "********"}``), which is all
  the API ever returns, with ``secure_fields`` naming the secrets that are set (Grafana's
  ``secureJsonFields``);
- ``secrets``: the real values, one JSON document sealed with AES-256-GCM (:mod:`logharbor.sealing`)
  under the at-rest key when the server has one, else ``DATA/secrets.key``.

Writing a channel back (:func:`merge`): a secret left out, or sent as it was shown, keeps the
stored value; any other value replaces it; ``null`` clears an optional one. A kept secret never
follows the channel to a new destination (host or port): the client must write it again, so an
admin who cannot read a secret cannot send it somewhere else either.
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from logharbor.sealing import KeyFileError, Sealer, SealError, generate_key_file

__all__ = ["MASK", "SecretBox", "SecretsUnreadable", "destination", "merge", "shown", "split"]

log = logging.getLogger("logharbor.alerts")

MASK = "********"
SECRETS_KEY_FILE = "secrets.key"


class SecretsUnreadable(ValueError):
    """Sealed secrets that no key this server holds opens."""


class SecretBox:
    """Seals with the first sealer; opens with any (keys an older configuration used)."""

    def __init__(self, sealers: list[Sealer]) -> None:
        if not sealers:
            raise KeyFileError("channel secrets need a key")
        self.sealers = sealers

    @classmethod
    def for_server(cls, data_dir: Path, at_rest: Sealer | None, key_file: Path | None = None) -> SecretBox:
        """``key_file`` (``--secrets-key-file``: one file for every server sharing a metadata
        database) if given, else the at-rest key when configured, else ``DATA/secrets.key``
        (created 0600 on first start).

        An existing ``DATA/secrets.key`` still opens what was sealed before another key was
        configured; :meth:`Catalog.migrate_secrets` reseals those rows with the current key.
        """
        path = data_dir / SECRETS_KEY_FILE
        primary = Sealer.from_file(key_file) if key_file is not None else at_rest
        if primary is None and not path.exists():
            generate_key_file(path)
            log.warning("created %s (0600): it encrypts channel secrets in the metadata database; "
                        "servers sharing one metadata database need the same key (--secrets-key-file)", path)
        own = Sealer.from_file(path) if path.exists() else None
        return cls([s for s in (primary, own) if s is not None])

    def seal(self, secrets: dict[str, Any]) -> str:
        return base64.b64encode(self.sealers[0].seal(orjson.dumps(secrets))).decode()

    def open(self, text: str) -> dict[str, Any]:
        blob = base64.b64decode(text)
        for sealer in self.sealers:
            try:
                return orjson.loads(sealer.open(blob))  # type: ignore[no-any-return]
            except SealError:
                continue
        raise SecretsUnreadable("the channel's secrets were sealed with a key this server does not have "
                                "(servers sharing a metadata database need the same --secrets-key-file)")

    def is_current(self, text: str) -> bool:
        """Whether ``text`` is sealed with the key :meth:`seal` uses now."""
        blob = base64.b64decode(text)
        current = self.sealers[0]
        try:
            current.open(blob)
        except SealError:
            return False
        return blob[4] == current.current_id


def _shown_url(url: str) -> str:
    """Scheme, host and port: where the channel goes, without what may be a capability."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}/{MASK}"


def _shown_value(field: str, value: Any) -> Any:
    if field == "url" and isinstance(value, str):
        return _shown_url(value)
    if isinstance(value, dict):
        return {name: MASK for name in value}
    return MASK


def _is_set(value: Any) -> bool:
    return value not in (None, "", {}, [])


def split(secret_fields: tuple[str, ...], config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A validated config → (shown config, secrets): the two halves a channel row stores."""
    public, secrets = dict(config), {}
    for field in secret_fields:
        if _is_set(config.get(field)):
            secrets[field] = config[field]
            public[field] = _shown_value(field, config[field])
    return public, secrets


def shown(secret_fields: tuple[str, ...], public: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The stored public config as the API shows it, and the names of the secrets that are set."""
    return dict(public), sorted(f for f in secret_fields if _is_set(public.get(f)))


def destination(config: dict[str, Any]) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) a config sends to: a webhook's ``url`` or an email ``host``/``port``."""
    if isinstance(config.get("url"), str):
        parts = urlsplit(config["url"])
        try:
            port = parts.port
        except ValueError:
            port = None
        return parts.scheme, (parts.hostname or "").lower(), port
    if isinstance(config.get("host"), str):
        return "smtp", config["host"].lower().rstrip("."), config.get("port")
    return None


def merge(secret_fields: tuple[str, ...], incoming: dict[str, Any], public: dict[str, Any],
          secrets: dict[str, Any]) -> dict[str, Any]:
    """The full config a write means, given the stored row (``public`` shown config, ``secrets``).

    Raises ValueError naming the field when a masked value stands for nothing stored, or when a
    kept secret would go to a new destination.
    """
    config = dict(incoming)
    kept: list[str] = []
    for field in secret_fields:
        stored = secrets.get(field)
        if field not in incoming or incoming[field] == public.get(field):
            if _is_set(stored):
                config[field] = stored
                kept.append(field)
            elif field in incoming and incoming[field] is not None and _is_set(public.get(field)):
                raise ValueError(f"{field}: the stored secret is gone; write it again")
            continue
        value = incoming[field]
        if isinstance(value, dict) and isinstance(stored, dict):  # headers: a masked value keeps its header
            by_name = {k.lower(): v for k, v in stored.items()}
            merged = {}
            for name, item in value.items():
                if item == MASK:
                    if name.lower() not in by_name:
                        raise ValueError(f"{field}.{name}: {MASK} stands for a stored value, and there "
                                         "is none")
                    merged[name] = by_name[name.lower()]
                    kept.append(f"{field}.{name}")
                else:
                    merged[name] = item
            config[field] = merged
        elif value == MASK or (isinstance(value, dict) and MASK in value.values()):
            raise ValueError(f"{field}: {MASK} stands for a stored value, and there is none")
    if kept and destination(config) != destination(_with(public, secrets)):
        names = ", ".join(sorted({k.split(".")[0] for k in kept}))
        raise ValueError(f"the destination changed: write {names} again (a stored secret is never sent "
                         "to a new host)")
    return config


def _with(public: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
    return {**public, **secrets}
