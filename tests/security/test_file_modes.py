"""Issue 21 item 7: the data directory is the server user's alone (0700 directories, 0600 files),
for files made at start, files the engine writes later, and a directory an older release left open.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.conftest import ServerProcess


def too_open(root: Path) -> list[str]:
    """Every path under ``root`` (itself included) that group or others may use."""
    found = []
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        if not stat.S_ISLNK(info.st_mode) and info.st_mode & 0o077:
            found.append(f"{oct(info.st_mode & 0o777)} {path.relative_to(root.parent)}")
    return found


def use(server: ServerProcess, tag: str) -> None:
    """Write through every part that keeps files: ingest (WAL, store parts, patterns), metadata."""
    server.ingest([{"message": f"user {i} logged in from {tag}", "service": "auth", "level": "INFO"}
                   for i in range(50)])
    with server.client() as c:
        c.put(f"/api/v1/saved-queries/{tag}", json={"query": "level:ERROR"}).raise_for_status()
        c.put(f"/api/v1/channels/{tag}", json={"kind": "webhook", "config": {
            "url": "http://127.0.0.1:9/x", "secret": "a-long-secret"}}).raise_for_status()


def test_a_new_data_directory_is_private(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    old = os.umask(0o022)  # what a service manager usually gives: files 0644 unless the server says
    try:
        server: ServerProcess = server_factory(data_dir=tmp_path / "data")
    finally:
        os.umask(old)
    use(server, "first")
    names = {p.name for p in server.data_dir.rglob("*")}
    assert {"meta.db", "meta.db-wal", "admin.key", "secrets.key", "journal.ndjson"} <= names, sorted(names)
    assert too_open(server.data_dir) == []
    server.stop()  # the flush and shutdown write files too
    assert too_open(server.data_dir) == []


def test_an_upgraded_data_directory_is_tightened(server_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    server: ServerProcess = server_factory(data_dir=data)
    use(server, "before")
    server.stop()
    for path in [data, *data.rglob("*")]:  # what an older release (umask 022) left behind
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert too_open(data)
    server.start()
    use(server, "after")
    assert too_open(data) == []
    assert server.query("logged", **{"from": "now-1d", "limit": 1000})["rows"]  # the data is still there
