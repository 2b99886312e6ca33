"""JSON ``true``/``false`` are not times nor counts: pydantic made them the ints 1/0 (a bool is an
int in Python), so ``{"from": true}`` queried from epoch second 1 and ``"limit": true`` capped at 1."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError

from logharbor.server.errors import ApiError
from logharbor.server.features.alerts.silences import SilenceCreate
from logharbor.server.features.explain import routes as explain_routes
from logharbor.server.features.query import routes as query_routes
from logharbor.server.features.query.timeparse import TimeParseError, parse_time_ns
from logharbor.server.features.query.window import request_time


@pytest.mark.parametrize("value", [True, False])
def test_parse_time_ns_refuses_bools(value: bool) -> None:
    with pytest.raises(TimeParseError, match="is not a time"):
        parse_time_ns(value)


@pytest.mark.parametrize("field", ["from", "to"])
@pytest.mark.parametrize("value", ["true", "false"])
def test_query_body_bool_time_is_the_invalid_time_400(field: str, value: str) -> None:
    body = query_routes.QueryRequest.model_validate_json(f'{{"q": "x", "{field}": {value}}}')
    got = body.from_ if field == "from" else body.to
    assert isinstance(got, bool)
    with pytest.raises(ApiError) as err:
        request_time(got, field, time.time_ns())
    assert (err.value.status, err.value.code) == (400, "invalid_time")


@pytest.mark.parametrize("field", ["from", "to", "baseline_from", "baseline_to"])
def test_explain_body_bool_time_is_the_invalid_time_400(field: str) -> None:
    body = explain_routes.ExplainBody.model_validate_json(f'{{"q": "x", "{field}": true}}')
    got = getattr(body, "from_" if field == "from" else field)
    with pytest.raises(ApiError) as err:
        request_time(got, field, time.time_ns())
    assert (err.value.status, err.value.code) == (400, "invalid_time")


def test_silence_bool_end_is_refused() -> None:
    silence = SilenceCreate.model_validate_json('{"matchers": [{"name": "a", "value": "b"}], "ends_at": true}')
    with pytest.raises(ValueError, match="not a time"):
        silence.times(time.time_ns())


@pytest.mark.parametrize(("model", "body"), [
    (query_routes.QueryRequest, '{"q": "x", "limit": true}'),
    (explain_routes.ExplainBody, '{"q": "x", "limit": true}'),
    (explain_routes.ExplainBody, '{"q": "x", "alpha": true}'),
])
def test_bool_counts_are_refused(model: type, body: str) -> None:
    with pytest.raises(ValidationError):
        model.model_validate_json(body)


def test_numbers_still_accepted() -> None:
    body = query_routes.QueryRequest.model_validate_json('{"q": "x", "from": 1700000000, "limit": 5}')
    assert body.from_ == 1700000000 and body.limit == 5
    assert explain_routes.ExplainBody.model_validate_json('{"alpha": 0.01, "limit": 3}').limit == 3
