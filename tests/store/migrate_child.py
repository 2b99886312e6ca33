"""A server's start on an old-layout store, in its own process, optionally killed with SIGKILL just
before its Nth store statement (tests/faults/test_attrmigrate_crash.py).

``python -m tests.store.migrate_child --path DIR [--kill-at N | --kill-before REGEX [--nth K]]
[--page ROWS] [--dump FILE]`` opens the embedded store and its tiers (which migrate the hot and
warm tables), killing itself before the Nth statement (or the Kth one matching REGEX: SQL text, or
``LOAD <table>`` for a page of rows), prints ``statements <n>`` (how many it ran) and, with
``--dump``, writes every row of the hot and warm tables in wire form (NDJSON) and the names of the
tables left in the database.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
from pathlib import Path
from typing import Any

import orjson

from logharbor import exactjson
from logharbor.server.engine.store import attrmigrate
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import row_to_wire
from logharbor.server.engine.store.tiers import Tiers

_count = 0
_matched = 0


def _killing(method: Any, args: argparse.Namespace, load: bool) -> Any:
    pattern = re.compile(args.kill_before) if args.kill_before else None

    def wrapper(store: EmbeddedStore, first: str, *rest: Any, **kwargs: Any) -> Any:
        global _count, _matched
        _count += 1
        if args.kill_at is not None and _count == args.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if pattern is not None and pattern.search(f"LOAD {first}" if load else first.lstrip()):
            _matched += 1
            if _matched == args.nth:
                os.kill(os.getpid(), signal.SIGKILL)
        return method(store, first, *rest, **kwargs)
    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--path", required=True)
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--kill-before")
    parser.add_argument("--nth", type=int, default=1)
    parser.add_argument("--page", type=int)
    parser.add_argument("--dump")
    args = parser.parse_args()
    if args.page:
        attrmigrate._PAGE = args.page
    for name in ("_run_on_session", "load_rows", "execute"):
        setattr(EmbeddedStore, name, _killing(getattr(EmbeddedStore, name), args, name == "load_rows"))
    store = EmbeddedStore(Path(args.path))
    store.open()
    try:
        tiers = Tiers(store, None)
        tiers.open()
        print(f"statements {_count}", flush=True)
        if args.dump:
            lines = [exactjson.dumps({"tier": tier, "wire": row_to_wire(row)})
                     for tier, table in (("hot", store.hot_table), ("warm", tiers.warm))
                     for row in store.query(f"SELECT * FROM {table}", {})]  # noqa: S608 - quoted names
            tables = [str(r["name"]) for r in store.query(
                "SELECT name FROM system.tables WHERE database = currentDatabase()", {})]
            lines.append(orjson.dumps({"tables": tables}))
            Path(args.dump).write_bytes(b"\n".join(lines) + b"\n")
    finally:
        store.close()


if __name__ == "__main__":
    main()
