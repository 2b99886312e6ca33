"""``logharbor migrate --to URL`` (the in-place conversion, cli/migrate.py) in its own process,
killed with SIGKILL just before the Kth store statement matching a pattern
(tests/faults/test_cluster_convert_crash.py).

``python -m tests.cluster.convert_child --url URL [--kill-before REGEX [--nth K]] [--page BYTES]``:
statements are matched as their SQL text, or ``LOAD <table>`` for a page of rewritten rows;
prints ``statements <n>`` and exits with the command's code when nothing killed it.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from typing import Any

from rich.console import Console

from logharbor.cli.migrate import convert_in_place
from logharbor.server.engine.store import clusterconvert
from logharbor.server.engine.store.clickhouse import ClickHouseStore

_count = 0
_matched = 0


def _killing(method: Any, pattern: re.Pattern[str] | None, nth: int, load: bool) -> Any:
    def wrapper(store: ClickHouseStore, first: str, *rest: Any, **kwargs: Any) -> Any:
        global _count, _matched
        _count += 1
        if pattern is not None and pattern.search(f"LOAD {first}" if load else first.lstrip()):
            _matched += 1
            if _matched == nth:
                os.kill(os.getpid(), signal.SIGKILL)
        return method(store, first, *rest, **kwargs)
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--kill-before")
    parser.add_argument("--nth", type=int, default=1)
    parser.add_argument("--page", type=int)
    args = parser.parse_args()
    if args.page:
        clusterconvert._PAGE_BYTES = args.page
    pattern = re.compile(args.kill_before) if args.kill_before else None
    for name in ("execute", "load_rows"):
        setattr(ClickHouseStore, name, _killing(getattr(ClickHouseStore, name), pattern, args.nth,
                                                name == "load_rows"))
    code = convert_in_place(args.url, "logs", Console(stderr=True, width=200))
    print(f"statements {_count}", flush=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
