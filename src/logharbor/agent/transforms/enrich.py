"""Add fields to every record (``enrich``): static values, the host name, environment variables.

Environment variables are how Kubernetes' downward API hands a pod its name, namespace and node
(``POD_NAME: {fieldRef: metadata.name}``), so ``env_vars: {k8s.pod: POD_NAME}`` labels every line
with its pod. Values are read once, at start. The fields go into the chunk's shared fields, so
raw lines stay on the fast path; a record's own value wins unless ``overwrite`` is set.
"""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field

from logharbor.agent.transforms.common import TransformConfig
from logharbor.agent.types import Chunk
from logharbor.types import RawRecord

__all__ = ["Config", "Enrich"]


class Config(TransformConfig):
    """Options of ``enrich``."""

    type: Literal["enrich"]
    fields: RawRecord = Field(default_factory=dict)
    hostname: bool = False
    env_vars: dict[str, str] = Field(default_factory=dict)
    overwrite: bool = False


class Enrich:
    """The ``enrich`` transform."""

    def __init__(self, cfg: Config) -> None:
        values: RawRecord = dict(cfg.fields)
        if cfg.hostname:
            values["host"] = socket.gethostname()
        for field, var in cfg.env_vars.items():
            if var in os.environ:
                values[field] = os.environ[var]
        self.values = values
        self.overwrite = cfg.overwrite

    def __call__(self, chunk: Chunk) -> Chunk:
        chunk.meta.update(self.values)  # over the source's defaults; a record's own value still wins
        if self.overwrite and chunk.records is not None:
            for r in chunk.records:
                r.update(self.values)
        return chunk
