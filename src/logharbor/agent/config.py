"""The agent's YAML configuration, validated by pydantic before anything starts.

Every source, transform and sink kind declares its own options model (with a ``type`` literal as
the discriminator) in its own module, on the shared models of :mod:`logharbor.agent.options`;
:func:`agent_config_model` assembles them from the registry into one :class:`AgentConfig`.
:func:`load_config` turns every problem — YAML syntax, an unknown key, a bad value, a regex that
does not compile, a parser option — into one :class:`ConfigError` whose message names the file,
the key path and the reason, so ``logharbor agent --check`` is a complete review of a config file.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, create_model

from logharbor.agent.options import BatchConfig, BufferConfig, MetricsConfig, Strict, TLSConfig
from logharbor.agent.registry import SINKS, SOURCES, TRANSFORMS
from logharbor.agent.sources.common import build_parser_for
from logharbor.agent.types import AgentError
from logharbor.types import JsonObject

__all__ = [
    "AgentConfig",
    "BatchConfig",
    "BufferConfig",
    "ConfigError",
    "MetricsConfig",
    "Strict",
    "TLSConfig",
    "agent_config_model",
    "check_components",
    "load_config",
    "parse_config",
]


class ConfigError(AgentError):
    """A config file is not valid; ``str()`` names the file, the key and the reason."""


class AgentConfig(Strict):
    """Top level of ``agent.yaml`` (the real model, with the registered kinds, is built at run time)."""

    data_dir: Path = Path("/var/lib/logharbor-agent")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    shutdown_timeout_secs: float = Field(default=10.0, ge=0)
    metrics: MetricsConfig = MetricsConfig()
    sources: JsonObject
    transforms: list[Any] = Field(default_factory=list)
    sinks: JsonObject


@functools.cache
def agent_config_model() -> type[AgentConfig]:
    """:class:`AgentConfig` with ``sources``/``transforms``/``sinks`` typed by the registered kinds."""
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


def check_components(cfg: AgentConfig) -> list[tuple[str, str]]:
    """Build every parser and transform once; (key, reason) for each that fails."""
    problems: list[tuple[str, str]] = []
    for name, src in cfg.sources.items():
        spec = src.parser_spec()
        if spec is not None:
            try:
                build_parser_for(spec)
            except Exception as exc:  # any build error is a config error to report
                problems.append((f"sources.{name}.parser", str(exc)))
    for i, tr in enumerate(cfg.transforms):
        for wanted in tr.sources or ():
            if wanted not in cfg.sources:
                problems.append((f"transforms.{i}.sources", f"no source named {wanted!r}"))
        try:
            TRANSFORMS[tr.type].build(tr)
        except Exception as exc:  # any build error is a config error to report
            problems.append((f"transforms.{i}", str(exc)))
    for name, sink in cfg.sinks.items():
        ca = getattr(getattr(sink, "tls", None), "ca_file", None)
        if ca is not None and not Path(ca).is_file():
            problems.append((f"sinks.{name}.tls.ca_file", f"no such file: {ca}"))
    return sorted(set(problems))
