"""Every source, transform and sink kind the agent knows: one line each.

A kind is its options model (``Config``, with a ``type`` literal) and a ``build`` function. The
built-ins register here exactly as an outside kind would; ``config.py`` assembles the config
schema from these tables, and :func:`check_components` builds each component once so that
``--check`` finds what pydantic alone cannot (a parser option, a redaction rule).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logharbor.agent.sinks import elasticsearch as elasticsearch_sink
from logharbor.agent.sinks import file as file_sink
from logharbor.agent.sinks import logharbor as logharbor_sink
from logharbor.agent.sinks import stdout as stdout_sink
from logharbor.agent.sources import alb as alb_source
from logharbor.agent.sources import container as container_source
from logharbor.agent.sources import file as file_source
from logharbor.agent.sources import stdin as stdin_source
from logharbor.agent.sources import syslog as syslog_source
from logharbor.agent.transforms import enrich, grep, redact, sample

if TYPE_CHECKING:
    from logharbor.agent.config import AgentConfig

__all__ = ["SINKS", "SOURCES", "TRANSFORMS", "Kind", "build_parser_for", "check_components"]


@dataclass(frozen=True)
class Kind:
    """A registered kind: its options model and how to build it."""

    Config: type
    build: Callable[..., Any]


#: build(name, config, data_dir, sinks) -> Source
SOURCES: dict[str, Kind] = {
    "file": Kind(file_source.Config, file_source.FileSource),
    "stdin": Kind(stdin_source.Config, stdin_source.StdinSource),
    "alb": Kind(alb_source.Config, alb_source.AlbSource),
    "container": Kind(container_source.Config, container_source.ContainerSource),
    "syslog": Kind(syslog_source.Config, syslog_source.SyslogSource),
}
#: build(config) -> Transform
TRANSFORMS: dict[str, Kind] = {
    "grep": Kind(grep.Config, grep.Grep),
    "redact": Kind(redact.Config, redact.Redact),
    "sample": Kind(sample.Config, sample.Sample),
    "enrich": Kind(enrich.Config, enrich.Enrich),
}
#: build(name, config, data_dir) -> Sink
SINKS: dict[str, Kind] = {
    "logharbor": Kind(logharbor_sink.Config, logharbor_sink.LogharborSink),
    "stdout": Kind(stdout_sink.Config, stdout_sink.StdoutSink),
    "file": Kind(file_sink.Config, file_sink.FileSink),
    "elasticsearch": Kind(elasticsearch_sink.Config, elasticsearch_sink.ElasticsearchSink),
}


def build_parser_for(spec: tuple[str, dict[str, Any]]) -> Any:
    """Build a parser from ``logharbor.formats`` (imported only when a config asks for one)."""
    from logharbor.formats.base import build_parser

    name, options = spec
    return build_parser(name, **options)


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
