"""The base of the models that input someone wrote is read into: a request body, the server's
config, the agent's config, a parser's options.

JSON ``true`` is not a number, but pydantic reads it as ``1`` for an ``int`` or ``float`` field:
``{"keep": true}`` kept 100 % of a sample, ``{"threshold": true}`` alerted above 1, ``port: yes``
in a YAML config listened on port 1, ``max_events: yes`` batched one event. :class:`InputModel`
refuses a boolean given for a field that takes only numbers, under the field's name; a field
that also takes a boolean (a time that is refused later with its own reason) is left to its own
checks. Strict mode would do it too, but it also refuses ``"5"`` and ``5.0`` for an integer, which
clients send. ``tests/test_input_models.py`` walks every model of the server, the agent
and the parsers and fails on a numeric field that reads ``true``.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationInfo, model_validator

__all__ = ["InputModel", "refuse_boolean_numbers", "takes_only_numbers"]


def takes_only_numbers(annotation: Any) -> bool:
    """Whether a field declared ``annotation`` takes numbers and nothing a boolean could be."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return takes_only_numbers(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in typing.get_args(annotation) if a is not type(None)]
        return bool(kinds) and all(takes_only_numbers(a) for a in kinds)
    return annotation in (int, float)


def refuse_boolean_numbers(model: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """``value`` unchanged, or ValueError when a field that takes only numbers is given a boolean
    (a ``field_validator("*", mode="before")``: the error is the field's, under its name)."""
    if isinstance(value, bool) and info.field_name is not None:
        field = model.model_fields.get(info.field_name)
        if field is not None and takes_only_numbers(field.annotation):
            raise ValueError(f"a number, not {str(value).lower()}")
    return value


class InputModel(BaseModel):
    """A model read from a request body or a config file: booleans are not numbers."""

    @model_validator(mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, data: Any) -> Any:
        # a model validator, not field_validator("*"): that one may not touch a discriminator field
        if isinstance(data, dict):
            for name, field in cls.model_fields.items():
                key = field.alias or name
                value = data.get(key, data.get(name))
                if isinstance(value, bool) and takes_only_numbers(field.annotation):
                    raise ValueError(f"{key} must be a number, not {str(value).lower()}")
        return data
