"""Generated JSON values for the exactness tests (issue #20): every JSON type, key spellings that
collide in a naive store, strings an engine may take for dates or numbers, integers beyond 64
bits, floats at the edges, unicode beyond the BMP; and :func:`typed`, a comparison that tells
1 from 1.0 from True and 0.0 from -0.0 (key order aside, which JSON objects do not carry)."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

__all__ = ["BIG_INTS", "ODD_FLOATS", "ODD_KEYS", "ODD_STRINGS", "attribute_sets", "json_values", "keys", "typed"]


#: key spellings that collide in a naive store: dots, empty parts, the engine's own escape
ODD_KEYS = ["", ".", ".x", "x.", "..", "a.b", "a", "b", "%2E", "%2e", "%", "%25", "x%2Ey", "x.y", "`", "\\",
            "\x00", "é", "😀", "a b", "attributes", "http.x"]
#: strings an engine might take for another type
ODD_STRINGS = ["2018-07-02T22:22:48.364000Z", "2026-12-06T10:00:00+05:30", "2026-12-06", "12:00:00",
               "2018-07-02 22:22:48", "Jul  2 22:22:48", "02/Jul/2018:22:22:48 +0000", "1530569568",
               "1530569568123", "1", "1.5", "-0", "1e5", "0x10", "true", "null", "nan", "inf", "[1]", "{}",
               "192.168.0.1", "::1", "550e8400-e29b-41d4-a716-446655440000", "", " ", "\u2028", "\x00",
               "😀", "\U0010fffd\u00e9\u200b", "a%2Eb", "line\nbreak", 'quote"back\\slash']
BIG_INTS = [2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**64 + 1, -(2**63), -(2**63) - 1, 10**30, -(10**40), 2**53 + 1]
ODD_FLOATS = [0.0, -0.0, 1.0, 13.0, 0.1, 1e16, 1.5e16, 1e300, 5e-324, 2.2250738585072014e-308,
              1.7976931348623157e308, 123456789.123456789, -1.5]

keys = st.text(max_size=6) | st.sampled_from(ODD_KEYS)
strings = st.text(max_size=10) | st.sampled_from(ODD_STRINGS)
ints = st.integers(min_value=-(2**70), max_value=2**70) | st.sampled_from(BIG_INTS)
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(ODD_FLOATS)
scalars = st.none() | st.booleans() | ints | floats | strings
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                           max_leaves=12)
attribute_sets = st.dictionaries(keys, json_values, max_size=8)


def typed(value: Any) -> Any:
    """A value in a form where ``==`` tells 1 from 1.0 from True and 0.0 from -0.0 (not key order)."""
    if isinstance(value, dict):
        return ("object", sorted((k, typed(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("array", [typed(v) for v in value])
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, float):
        return ("float", value, math.copysign(1.0, value))
    if isinstance(value, int):
        return ("int", value)
    return ("text" if isinstance(value, str) else "null", value)
