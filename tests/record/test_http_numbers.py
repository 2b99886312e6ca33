"""A typed ``http`` field given as text is read only when the text is a plain ASCII number.

Python's int() and float() also read "5_02" (502), Arabic-Indic digits and "inf": a status of
"5_02" was stored as 502, which the sender never wrote (found by an attack)."""

from __future__ import annotations

import pytest

from logharbor.record import RecordError, normalize


@pytest.mark.parametrize("text", ["5_02", "\u0665\u0660\u0662", "inf", "nan", "0x1f6", "½", "5 02"])
def test_text_that_is_not_a_plain_number_is_refused(text: str) -> None:
    with pytest.raises(RecordError, match=r"http\.status must be a non-negative number"):
        normalize({"message": "m", "http": {"status": text}}, received_ns=1)


@pytest.mark.parametrize(("text", "status"), [("502", 502), (" 200 ", 200), ("+204", 204)])
def test_plain_number_text_is_read(text: str, status: int) -> None:
    assert normalize({"message": "m", "http": {"status": text}}, received_ns=1)["http"] == {"status": status}


def test_a_duration_as_text_is_a_float() -> None:
    record = normalize({"message": "m", "http": {"duration_ms": "12.5"}}, received_ns=1)
    assert record["http"] == {"duration_ms": 12.5}
