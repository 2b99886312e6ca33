"""``$time_iso8601``'s hour cache reads every text exactly as the general timestamp parser does.

``formats.nginx_vars.parse_time_iso8601`` parses the date, hour and offset once per hour and adds
the minutes and seconds; anything else goes to the general parser. Over NGINX's own shape with
odd fields (leap seconds, minutes out of range, offsets that cross 1970 or 2262, bad digits,
other shapes), both give the same ns or the same error, also when the hour is already cached.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import examples

from logharbor.formats.nginx_vars import _parse_any_time, parse_time_iso8601

DIGITS2 = st.integers(0, 99).map(lambda n: f"{n:02d}") | st.sampled_from(["٣4", "x1", " 1", "+1"])
YEAR = st.sampled_from(["1970", "1969", "2026", "2262", "2263", "9999", "0000", "02x6"]) | \
    st.integers(1970, 2300).map(str)
ISO = st.builds(lambda y, mo, d, h, mi, s, sign, oh, om, sep: f"{y}-{mo}-{d}T{h}:{mi}:{s}{sign}{oh}{sep}{om}",
                YEAR, DIGITS2, DIGITS2, DIGITS2, DIGITS2, DIGITS2, st.sampled_from("+-Z"), DIGITS2,
                DIGITS2, st.sampled_from([":", ":", ":", "", "x"]))
OTHER = st.sampled_from(["2026-11-25T01:02:03Z", "2026-11-25T01:02:03.5+00:00", "1970-01-01T00:30:00+00:45",
                         "2262-04-11T23:47:16+00:00", "2262-04-11T23:47:17+00:00", "", "-"]) | st.text(max_size=30)


def _read(parse: object, text: str) -> object:
    try:
        return parse(text)  # type: ignore[operator]
    except ValueError as exc:
        return ("error", str(exc))


@settings(max_examples=examples(400), deadline=None)
@given(text=ISO | OTHER)
def test_iso8601_hour_cache_matches_the_general_parser(text: str) -> None:
    expected = _read(_parse_any_time, text)
    assert _read(parse_time_iso8601, text) == expected
    assert _read(parse_time_iso8601, text) == expected  # the hour now cached
