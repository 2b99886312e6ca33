"""The embedded store's engine keeps skip-index granules decompressed between queries (a trace
lookup tests every granule's bloom filter): the size comes from ``--query-index-cache-mb`` through
``open_store``. A subprocess each: chDB is one engine per process and
takes server settings when it starts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from tests.conftest import ROOT

PROBE = r"""
import json, sys
from pathlib import Path
from logharbor.server.app import open_store
from logharbor.server.config import ServerConfig
config = ServerConfig.model_validate({"data_dir": sys.argv[1], **(
    {"query_index_cache_bytes": int(sys.argv[2]) * 1024 * 1024} if sys.argv[2] != "default" else {})})
store = open_store(config)
store.open()
row = store.query("SELECT value FROM system.server_settings WHERE name = 'index_uncompressed_cache_size'", {})
store.close()
print(json.dumps({"size": int(row[0]["value"])}))
"""


@pytest.mark.parametrize(("mb", "want"), [("default", 256 * 1024 * 1024), ("8", 8 * 1024 * 1024)])
def test_the_engine_gets_the_configured_index_cache(tmp_path, mb: str, want: int) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "data"), mb], capture_output=True,
                            text=True, timeout=300, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"size": want}
