"""Option models that the agent's config and its components share.

Sources, transforms and sinks declare their options on these (``Strict``, a sink's buffer and
batch, TLS); ``config.py`` assembles the file's model from the registry. Both sides import this
module and neither imports the other, so a component never reaches back into the config loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field

from logharbor.models import InputModel

__all__ = ["BatchConfig", "BufferConfig", "MetricsConfig", "Strict", "TLSConfig"]


class Strict(InputModel):
    """Base of every options model: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class BufferConfig(Strict):
    """Where a sink keeps what it has not delivered yet, and what happens when that is full."""

    type: Literal["memory", "disk"] = "memory"
    max_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    when_full: Literal["block", "drop_newest"] = "block"
    #: seal a disk buffer at rest (AES-GCM) with the keys of this file (``id:hex`` lines, mode 0600)
    encryption_key_file: Path | None = None


class BatchConfig(Strict):
    """A batch is sent when it reaches ``max_bytes`` or ``max_events``, or is ``timeout_secs`` old."""

    max_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_events: int = Field(default=20_000, ge=1)
    timeout_secs: float = Field(default=1.0, gt=0)


class TLSConfig(Strict):
    """Certificate checks for HTTPS: a custom CA bundle, or (for labs only) no verification."""

    ca_file: Path | None = None
    verify: bool = True


class MetricsConfig(Strict):
    """The agent's own Prometheus endpoint (``/metrics``) on its own port; ``port: 0`` disables it."""

    address: str = "127.0.0.1"
    port: int = Field(default=9598, ge=0, le=65535)
