"""Options every source shares (how its lines are parsed, fields added to each record), and the
parser a source builds from them."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from logharbor.agent.options import Strict
from logharbor.types import JsonObject, RawRecord

__all__ = ["SourceConfig", "build_parser_for"]


class SourceConfig(Strict):
    """``parser`` is a parser name or ``{type: name, ...options}`` (see ``logharbor.formats``);
    without one, each line ships as the record's ``message`` (the fast path). ``fields`` are
    static fields of every record of this source (``service``, ``source``, ``env``…)."""

    parser: str | JsonObject | None = None
    fields: RawRecord = Field(default_factory=dict)

    @field_validator("parser")
    @classmethod
    def _parser(cls, value: str | JsonObject | None) -> str | JsonObject | None:
        if isinstance(value, dict) and not isinstance(value.get("type"), str):
            raise ValueError("a parser given as a mapping needs a 'type' naming the parser")
        return value

    def parser_spec(self) -> tuple[str, JsonObject] | None:
        """(name, options) of the configured parser, or None."""
        if self.parser is None:
            return None
        if isinstance(self.parser, str):
            return self.parser, {}
        options = dict(self.parser)
        return options.pop("type"), options


def build_parser_for(spec: tuple[str, JsonObject]) -> Any:
    """Build a parser from ``logharbor.formats`` (imported only when a config asks for one)."""
    from logharbor.formats.base import build_parser

    name, options = spec
    return build_parser(name, **options)
