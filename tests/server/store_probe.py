"""Read the store of a stopped server directly (a separate process owns the chDB path)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_SCRIPT = """
import json, sys
from logharbor.server.engine.store.embedded import EmbeddedStore
store = EmbeddedStore(sys.argv[1]); store.open()
rows = store.query(sys.argv[2], json.loads(sys.argv[3]))
store.close()
print(json.dumps(rows))
"""


def query_stopped_store(data_dir: Path, sql: str, params: dict | None = None) -> list[dict]:  # type: ignore[type-arg]
    out = subprocess.run([sys.executable, "-c", _SCRIPT, str(data_dir / "store"), sql,
                          json.dumps(params or {})], capture_output=True, check=True, timeout=120)
    return json.loads(out.stdout)
