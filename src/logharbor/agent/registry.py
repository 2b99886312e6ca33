"""Every source, transform and sink kind the agent knows: one line each.

A kind is its options model (``Config``, with a ``type`` literal) and a ``build`` function. The
built-ins register here exactly as an outside kind would; ``config.py`` assembles the config
schema from these tables and builds each component once, so that ``--check`` finds what pydantic
alone cannot (a parser option, a redaction rule). A kind's module never imports this table or the
config loader: its options build on :mod:`logharbor.agent.options`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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

__all__ = ["SINKS", "SOURCES", "TRANSFORMS", "Kind"]


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
