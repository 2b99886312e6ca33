"""Delete-by-query on a cold file keeps every row the filter does not match, including the rows
that lack the attribute it names.

An attribute a record does not have reads as SQL NULL (its text form, ATTRTEXT §4), so
``user_id:12`` is NULL — not false — on a record without ``user_id``. The cold file is rewritten
with the rows to keep; ``WHERE NOT (cond)`` dropped the NULL ones with the matches: one delete of
``user_id:12`` emptied a cold file of 46 records of which 2 matched (found by the attrtext attack,
on main's code as well). Hot and warm delete ``WHERE cond`` and were right."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.retention.helpers import counts, insert, open_tiers, record, set_policy

from logharbor.server.features.retention.delete import DeleteJobs

POLICY = {"rules": [{"name": "all", "hot": "7d", "warm": "30d", "cold": "365d"}]}


def _dataset() -> list[dict]:  # type: ignore[type-arg]
    """Per tier 10 records: 2 with user_id 12 (promoted), 2 with another user_id, 2 with a
    non-promoted k, 2 with a number num, 2 with no attributes at all."""
    out = []
    for age in (0.5, 10, 40):
        for i in range(10):
            extra = [{"user_id": "12"}, {"user_id": "u-1"}, {"k": "x"}, {"num": 7}, {}][i % 5]
            out.append(record(age, source="app", n=i, **extra))
    return out


@pytest.mark.e2e
def test_a_cold_delete_keeps_the_records_without_the_attribute(tmp_path: Path) -> None:
    """One job (each costs a full delete run): a promoted key, a parsed key's wildcard and a
    number range, each NULL on the records without that attribute; 6 of 10 per tier match."""
    q, matched = "user_id:12 OR k:x* OR num:>5", 6
    store, tiers, mover = open_tiers(tmp_path)
    try:
        insert(store, _dataset())
        set_policy(mover, POLICY)
        mover.tick()
        assert counts(tiers) == {"hot": 10, "warm": 10, "cold": 10}
        jobs = DeleteJobs(mover, mover.meta, purge_timeout_s=120)
        job = jobs.submit(q, "test")
        jobs.wait(300)
        done = jobs.get(job["id"])
        assert done is not None and done["state"] == "done", done
        left = 10 - matched
        assert counts(tiers) == {"hot": left, "warm": left, "cold": left}, q
    finally:
        store.close()
