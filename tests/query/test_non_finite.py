"""A number no float holds (1e400, -1e400, inf, nan) in a comparison is a 400 naming the term:
compared as text it matched records at random (``num:>1e400`` matched ``num=5``)."""

from __future__ import annotations

import pytest

from logharbor.server.features.loki.logql import LogQLError, parse_logql
from logharbor.server.features.query.compiler import compile_filter
from logharbor.server.features.query.errors import QueryTypeError

NON_FINITE = [
    "num:>1e400", "num:>=1e400", "num:<-1e400", "num:<=1E+999", "num:[1e400 TO *]",
    "num:[* TO -1e400]", "num:{0 TO 1e400}", "num:>inf", "num:<-Infinity", "num:>=nan",
    "status:>1e400", "status:1e400", "duration_ms:[0 TO 1e999]",
]


@pytest.mark.parametrize("text", NON_FINITE)
def test_non_finite_number_in_a_comparison_is_refused(text: str) -> None:
    with pytest.raises(QueryTypeError, match="not a finite number") as err:
        compile_filter(text)
    assert err.value.to_dict()["code"] == "type_mismatch"
    assert repr(text.split(":")[0]) in err.value.message or text.split(":")[0] in err.value.message


@pytest.mark.parametrize("text", ["num:>1e300", "num:[-1e300 TO 5]", "num:<1.5", "num:>=-7"])
def test_finite_numbers_still_compare_numerically(text: str) -> None:
    sql, params = compile_filter(text)
    assert any(isinstance(v, int | float) and not isinstance(v, bool) for v in params.values()), (sql, params)


@pytest.mark.parametrize("text", ["num:>1_000", "num:>١٢"])
def test_only_ascii_decimal_numbers_compare_as_numbers(text: str) -> None:
    """float() also reads ``1_000`` and Arabic-Indic digits; the query language does not."""
    _, params = compile_filter(text)
    assert all(isinstance(v, str) for v in params.values()), params


@pytest.mark.parametrize("text", [
    '{service="api"} | json | num > 1e400', '{service="api"} | json | num >= 1e400',
    '{service="api"} | json | num < -1e400', '{service="api"} | logfmt | num == 1e999',
])
def test_logql_label_filter_with_a_non_finite_number_is_refused(text: str) -> None:
    with pytest.raises(LogQLError, match="not a finite number"):
        parse_logql(text)
