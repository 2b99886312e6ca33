"""The agent's YAML configuration, validated by pydantic before anything starts.

Every source, transform and sink kind declares its own options model (with a ``type`` literal as
the discriminator) in its own module; :func:`agent_config_model` assembles them from the registry
into one :class:`AgentConfig`. :func:`load_config` turns every problem — YAML syntax, an unknown
key, a bad value, a regex that does not compile, a parser option — into one :class:`ConfigError`
whose message names the file, the key path and the reason, so ``logharbor agent --check`` is a
complete review of a config file.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from logharbor.agent.types import AgentError

__all__ = [
    "AgentConfig",
    "BatchConfig",
    "BufferConfig",
    "ConfigError",
    "MetricsConfig",
    "Strict",
    "TLSConfig",
    "agent_config_model",
    "load_config",
    "parse_config",
]


class ConfigError(AgentError):
    """A config file is not valid; ``str()`` names the file, the key and the reason."""


class Strict(BaseModel):
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


class AgentConfig(Strict):
    """Top level of ``agent.yaml`` (the real model, with the registered kinds, is built at run time)."""

    data_dir: Path = Path("/var/lib/logharbor-agent")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shutdown_timeout_secs: float = Field(default=10.0, ge=0)
    metrics: MetricsConfig = MetricsConfig()
    sources: dict[str, Any]
    transforms: list[Any] = Field(default_factory=list)
    sinks: dict[str, Any]


@functools.cache
def agent_config_model() -> type[AgentConfig]:
    """:class:`AgentConfig` with ``sources``/``transforms``/``sinks`` typed by the registered kinds."""
    from logharbor.agent.registry import SINKS, SOURCES, TRANSFORMS

    def union(kinds: dict[str, Any]) -> Any:
        models = tuple(kind.Config for kind in kinds.values())
        if len(models) == 1:
            return models[0]
        return Annotated[_union(models), Field(discriminator="type")]

    model: type[AgentConfig] = create_model(
        "AgentConfig",
        __base__=AgentConfig,
        sources=(dict[str, union(SOURCES)], Field(min_length=1)),  # type: ignore[valid-type]
        transforms=(list[union(TRANSFORMS)], []),  # type: ignore[valid-type]
        sinks=(dict[str, union(SINKS)], Field(min_length=1)),  # type: ignore[valid-type]
    )
    return model


def _union(models: tuple[type, ...]) -> Any:
    out: Any = models[0]
    for m in models[1:]:
        out = out | m
    return out


def _describe(path: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        # pydantic adds the chosen union member's tag to the location; it is not a key of the file
        key = ".".join(p for i, p in enumerate(loc) if not (i > 0 and _is_tag(loc, i))) or "(top level)"
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        lines.append(f"{path}: {key}: {msg}")
    return "\n".join(lines)


def _is_tag(loc: list[str], i: int) -> bool:
    from logharbor.agent.registry import SINKS, SOURCES, TRANSFORMS

    section = loc[0]
    kinds = {"sources": SOURCES, "transforms": TRANSFORMS, "sinks": SINKS}.get(section, {})
    return i == 2 and loc[i] in kinds


def parse_config(data: Any, path: str = "<config>") -> AgentConfig:
    """Validate a decoded YAML document, then build every component once to check what pydantic cannot."""
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: (top level): expected a mapping, got {type(data).__name__}")
    try:
        cfg = agent_config_model().model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(path, exc)) from None
    from logharbor.agent.registry import check_components

    problems = check_components(cfg)
    if problems:
        raise ConfigError("\n".join(f"{path}: {key}: {why}" for key, why in problems))
    return cfg


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate ``agent.yaml``; raises :class:`ConfigError` naming file, key and reason."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(yaml)"
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{p}: {where}: invalid YAML: {reason}") from None
    return parse_config(data, str(p))
