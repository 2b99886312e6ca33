"""The time slices a large set is counted and sampled on (``passes.pick_slices``): a pure function
of the set's extent and size, so the same question gets the same answer, and the slices hold
about the records asked for."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from logharbor.server.features.explain import passes
from logharbor.server.features.explain.passes import pick_slices

DOC = Path(__file__).resolve().parents[2] / "docs" / "explain.md"


def test_a_set_no_larger_than_asked_is_read_whole() -> None:
    assert pick_slices((0, 10**12), 1000, 1000, 100) is None
    assert pick_slices((0, 10**12), 999, 1000, 100) is None


@settings(deadline=None, max_examples=200)
@given(first=st.integers(0, 10**18), length=st.integers(10**6, 10**13), total=st.integers(2, 10**10),
       size=st.integers(1, 10**6), per_slice=st.integers(100, 10**5))
def test_slices_are_inside_the_span_disjoint_and_hold_about_the_share_asked(
        first: int, length: int, total: int, size: int, per_slice: int) -> None:
    span = (first, first + length)
    ranges = pick_slices(span, total, size, per_slice)
    if ranges is None:  # the whole set: small enough, or too few slices to leave any out
        count = -(-total // per_slice)
        assert total <= size or -(-size // per_slice) >= min(count, length + 1)
        return
    assert ranges == pick_slices(span, total, size, per_slice)  # the same question, the same slices
    for (a, b), (c, _) in itertools.pairwise(ranges):
        assert a < b < c  # sorted, adjacent ones merged
    assert span[0] <= ranges[0][0] and ranges[-1][1] <= span[1] + 1
    count = min(-(-total // per_slice), length + 1)
    keep = -(-size // per_slice)
    covered = sum(b - a for a, b in ranges)
    # keep slices of count, each (length + 1) / count wide give or take one ns
    assert abs(covered - (length + 1) * keep / count) <= 2 * keep
    assert covered < length + 1


def test_the_docs_state_the_sizes_the_code_uses() -> None:
    text = " ".join(DOC.read_text().split())
    assert f"A set of up to {passes.COUNTED:,} records is counted whole" in text
    assert f"when its window holds up to {passes.SCANNED:,} records" in text
    assert f"slices of about {passes.COUNT_SLICE:,} records" in text
    assert f"more than {passes.MAX_SLICES} slices" in text
    assert f"sample of up to {passes.SAMPLE:,} records per set" in text
    assert f"about {passes.SAMPLE_SLICE} records each" in text


def test_the_cli_summary_says_when_a_set_was_counted_on_slices() -> None:
    from logharbor.cli.explain import _summary

    answer = {"focus": {"count": 10_000_000, "from": "a", "to": "b"},
              "baseline": {"mode": "previous", "count": 9_000_000, "from": "c", "to": "a"},
              "statistic": {"threshold_p": 1e-4, "alpha": 0.01, "tests": 100},
              "counted": {"focus": 261_863, "baseline": 240_000, "exact": False},
              "sampled": {"focus": 2000, "baseline": 1990}}
    lines = _summary(answer)
    assert ("counted on time slices: 261863 of 10000000 focus records, 240000 of 9000000 baseline records; "
            "attributes on a sample of 2000 and 1990") in lines
    answer["counted"] = {"focus": 100, "baseline": 90, "exact": True}
    assert not [line for line in _summary(answer) if "slices" in line]
