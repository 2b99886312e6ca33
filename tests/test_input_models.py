"""JSON ``true`` is not a number: every model the server reads a request body or its config into
refuses a boolean for a field that takes only numbers, under that field's name (logharbor/models.py)."""

from __future__ import annotations

import importlib
import pkgutil
import typing
from typing import Any

import httpx
import pytest
from pydantic import BaseModel, ValidationError
from tests.conftest import ServerProcess

import logharbor.agent as agent_package
import logharbor.formats as formats_package
import logharbor.server as server_package
from logharbor.models import takes_only_numbers
from logharbor.server.config import ServerConfig


def _models(annotation: Any, seen: set[type[BaseModel]]) -> set[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and annotation not in seen:
        seen.add(annotation)
        for field in annotation.model_fields.values():
            _models(field.annotation, seen)
    for arg in typing.get_args(annotation):
        _models(arg, seen)
    return seen


def _input_models() -> set[type[BaseModel]]:
    seen: set[type[BaseModel]] = set()
    infos = [info for package in (server_package, agent_package, formats_package)
             for info in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    for info in infos:
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__:
                _models(value, seen)
    return seen


NUMERIC = sorted(((model, name, field.alias or name) for model in _input_models()
                  for name, field in model.model_fields.items() if takes_only_numbers(field.annotation)),
                 key=lambda t: (t[0].__module__, t[0].__qualname__, t[1]))


def test_the_walk_finds_the_models_that_were_fooled() -> None:
    names = {f"{model.__qualname__}.{name}" for model, name, _ in NUMERIC}
    assert {"Sample.keep", "Condition.threshold", "KeyCreate.ingest_rate", "Panel.width",
            "ServerConfig.port", "BatchConfig.max_events"} <= names


@pytest.mark.parametrize(("model", "name", "key"), NUMERIC,
                         ids=[f"{m.__module__.rsplit('.', 1)[-1]}.{m.__qualname__}.{n}" for m, n, _ in NUMERIC])
def test_a_boolean_is_refused_for_a_number(model: type[BaseModel], name: str, key: str) -> None:
    if model is ServerConfig:
        with pytest.raises(ValidationError) as caught:
            ServerConfig(**{name: True})  # type: ignore[arg-type]
    else:
        with pytest.raises(ValidationError) as caught:
            model.model_validate({key: True})
    assert any(err["loc"][:1] == (key,) or f"{key} must be a number" in err["msg"]
               for err in caught.value.errors()), caught.value.errors()


def test_numbers_still_read_as_before() -> None:
    from logharbor.server.features.retention.rules import Sample

    assert Sample.model_validate({"after": "1d", "keep": 1}).keep == 1.0
    assert Sample.model_validate({"after": "1d", "keep": "0.5"}).keep == 0.5


def test_a_retention_sample_of_true_is_a_400_naming_the_field(module_server: ServerProcess) -> None:
    """{"keep": true} kept 100 % of the sampled records."""
    rules = {"rules": [{"name": "half", "match": "service:noisy", "sample": {"after": "1d", "keep": True}}]}
    response = httpx.put(module_server.url + "/api/v1/retention", json=rules,
                         headers={"authorization": f"Bearer {module_server.api_key}"}, timeout=30)
    assert response.status_code == 400, response.text
    assert "keep" in response.text and "not true" in response.text
