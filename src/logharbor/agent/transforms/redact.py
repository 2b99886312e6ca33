"""Mask secrets and personal data in every record (``redact``), with the rules the sdk uses.

A thin wrapper over :class:`logharbor.redaction.Redactor`: the same rule names, custom patterns
and sensitive field names, so a value is masked the same way in the app and in the agent. Raw
lines are masked as text without building records.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from logharbor.agent.options import Strict
from logharbor.agent.transforms.common import TransformConfig
from logharbor.agent.types import Chunk
from logharbor.redaction import Redactor
from logharbor.types import JsonObject

__all__ = ["Config", "Redact"]


class Pattern(Strict):
    """A custom rule: a regular expression and what replaces its matches."""

    name: str | None = None
    pattern: str
    replacement: str = "[REDACTED]"


class Config(TransformConfig):
    """Options of ``redact`` (see the rule table in ``logharbor.redaction``)."""

    type: Literal["redact"]
    rules: list[str] | None = None
    ip: bool = False
    fields: list[str] = Field(default_factory=list)
    patterns: list[Pattern] = Field(default_factory=list)
    mask: str = "[REDACTED]"


class Redact:
    """The ``redact`` transform."""

    def __init__(self, cfg: Config) -> None:
        spec: JsonObject = {"ip": cfg.ip, "fields": cfg.fields, "mask": cfg.mask,
                                "patterns": [p.model_dump(exclude_none=True)
                                             for p in cfg.patterns]}
        if cfg.rules is not None:
            spec["rules"] = cfg.rules
        self.redactor = Redactor.from_config(spec)

    def __call__(self, chunk: Chunk) -> Chunk:
        if chunk.records is None:
            text = self.redactor.redact_text
            chunk.lines = [text(line) for line in chunk.lines]
        else:
            rec = self.redactor.redact_record
            chunk.records = [rec(r) for r in chunk.records]
        return chunk
