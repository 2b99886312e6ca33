"""A process that fills a store, then runs one retention tick that stops at a chosen step of a
chosen move (writing a marker file) so the test can ``kill -9`` it there.

Usage: python -m tests.retention.crash_worker DATA_DIR STEP MOVE_NUMBER
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tests.retention.helpers import insert, open_tiers, record, set_policy

POLICY = {"rules": [
    {"name": "alb", "match": {"source": "alb"}, "hot": "7d", "warm": "30d", "cold": "365d"},
    {"name": "rest", "hot": "3d", "cold": "400d"},
]}
AGES = (1, 5, 6, 12, 13, 45, 46)
PER_GROUP = 300


def dataset() -> list[dict]:  # type: ignore[type-arg]
    return [record(age, source=source, service=f"svc-{source}", level=level, n=i,
                   trace_id=f"{i:032x}", user_id=f"u-{i % 7}")
            for age in AGES for source in ("alb", "app") for level in ("INFO", "ERROR")
            for i in range(PER_GROUP)]


def main() -> None:
    data_dir, step, move_number = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    started: list[str] = []

    def hook(at: str, move_id: str) -> None:
        if at == "intent":
            started.append(move_id)
        if at == step and len(started) >= move_number and move_id == started[move_number - 1]:
            (data_dir / "at-step").write_text(move_id)
            time.sleep(3600)  # the test kills us here

    store, _tiers, mover = open_tiers(data_dir, step_hook=hook)
    insert(store, dataset())
    set_policy(mover, POLICY)
    (data_dir / "loaded").write_text("ok")
    mover.tick()
    (data_dir / "finished").write_text("ok")


if __name__ == "__main__":
    main()
