"""How a request limit counts the lines of a body (native NDJSON, Elasticsearch ``_bulk``)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from logharbor.server.ingest.base import line_count


def test_a_final_newline_ends_the_last_line() -> None:
    assert line_count(b"") == 0
    assert line_count(b"{}") == 1
    assert line_count(b"{}\n") == 1
    assert line_count(b"{}\n{}") == 2
    assert line_count(b"{}\n{}\n") == 2
    assert line_count(b"\n") == 1  # one empty line: still a line a limit may count


@given(st.lists(st.binary(min_size=1, max_size=20).filter(lambda b: b"\n" not in b), min_size=1, max_size=50),
       st.booleans())
def test_n_lines_joined_are_n_with_or_without_a_final_newline(lines: list[bytes], final: bool) -> None:
    body = b"\n".join(lines) + (b"\n" if final else b"")
    assert line_count(body) == len(lines)
