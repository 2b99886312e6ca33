"""Encryption at rest: a planted secret is nowhere on disk in clear, and still queryable (issue 5)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess

from logharbor.sealing import KeyFileError, Sealer, SealError, generate_key_file, load_keys

SECRET = "PLANTED-7f3a9c1e-SECRET"


def files_containing(root: Path, needle: bytes) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``needle`` (what `grep -r` would find)."""
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                if needle in path.read_bytes():
                    hits.append(path)
            except OSError:
                continue
    return hits


def ingest(server: ServerProcess, message: str) -> None:
    body = orjson.dumps({"message": message, "service": "vault", "card_note": message})
    response = httpx.post(server.url + "/api/v1/logs", content=body, headers=server.headers, timeout=30)
    assert response.status_code == 200 and response.json()["accepted"] == 1


def messages(server: ServerProcess) -> list[str]:
    rows = httpx.post(server.url + "/api/v1/query", json={"q": "service:vault", "from": "now-1h"},
                      headers=server.headers, timeout=30).json()["rows"]
    return sorted(r["message"] for r in rows)


@pytest.mark.e2e
def test_store_and_wal_are_sealed_and_keys_rotate(tmp_path: Path) -> None:
    keyfile = tmp_path / "keys"
    generate_key_file(keyfile, 1)
    data = tmp_path / "data"
    # first with the batcher paused: the secret sits in the WAL only
    server = ServerProcess(data, "--encryption-key-file", str(keyfile), "--pause-batcher").start()
    ingest(server, SECRET + " one")
    assert files_containing(data, SECRET.encode()) == []
    server.stop()
    # then without: it moves into the store, which is on the encrypted disk
    server = ServerProcess(data, "--encryption-key-file", str(keyfile), "--batch-max-age", "0.2").start()
    assert server.wait_rows(1) == 1
    assert messages(server) == [SECRET + " one"]
    server.stop()
    assert files_containing(data, SECRET.encode()) == []
    assert files_containing(data, b"vault") == []  # the service name too

    # rotation: a new current key; data sealed with the old one stays readable
    generate_key_file(keyfile, 2)
    server = ServerProcess(data, "--encryption-key-file", str(keyfile), "--batch-max-age", "0.2").start()
    ingest(server, SECRET + " two")
    assert server.wait_rows(2) == 2
    assert messages(server) == [SECRET + " one", SECRET + " two"]
    server.stop()
    assert files_containing(data, SECRET.encode()) == []


@pytest.mark.e2e
def test_encrypted_store_refuses_to_start_without_its_keys(tmp_path: Path) -> None:
    keyfile = tmp_path / "keys"
    generate_key_file(keyfile)
    data = tmp_path / "data"
    ServerProcess(data, "--encryption-key-file", str(keyfile)).start().stop()
    result = subprocess.run([sys.executable, "-m", "logharbor.cli.main", "server", "--data-dir", str(data),
                             "--port", "0"], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "created with encryption" in result.stdout + result.stderr


def test_sealer_detects_tampering_and_unknown_keys(tmp_path: Path) -> None:
    keyfile = tmp_path / "keys"
    generate_key_file(keyfile, 1)
    sealer = Sealer.from_file(keyfile)
    blob = sealer.seal(b"payload")
    assert sealer.open(blob) == b"payload" and b"payload" not in blob
    tampered = bytearray(blob)
    tampered[-1] ^= 1
    with pytest.raises(SealError, match="authentication"):
        sealer.open(bytes(tampered))
    generate_key_file(keyfile, 2)
    newer = Sealer.from_file(keyfile)
    assert newer.current_id == 2 and newer.open(blob) == b"payload"
    only_new = Sealer({2: load_keys(keyfile)[2]})
    with pytest.raises(SealError, match="key 1"):
        only_new.open(blob)


def test_key_file_must_be_private_and_well_formed(tmp_path: Path) -> None:
    keyfile = tmp_path / "keys"
    generate_key_file(keyfile)
    os.chmod(keyfile, 0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_keys(keyfile)
    os.chmod(keyfile, 0o600)
    keyfile.write_text("1:abc\n")
    with pytest.raises(KeyFileError, match=":1:"):
        load_keys(keyfile)


def test_agent_disk_buffer_is_sealed(tmp_path: Path) -> None:
    """The agent's disk buffer holds what a down server has not taken yet: sealed too."""
    from logharbor.agent.buffer import open_buffer
    from logharbor.agent.types import Encoded

    keyfile = tmp_path / "keys"
    generate_key_file(keyfile, 1)
    directory = tmp_path / "buffer"
    payload = orjson.dumps({"message": SECRET + " in the buffer"}) + b"\n"
    buffer = open_buffer("disk", directory, 1 << 20, "block", keyfile)
    assert buffer.put(Encoded(payload, 1, None))
    buffer.close()
    assert files_containing(directory, SECRET.encode()) == []
    generate_key_file(keyfile, 2)  # rotated while the agent was down: still readable
    reopened = open_buffer("disk", directory, 1 << 20, "block", keyfile)
    item = reopened.get(timeout=1)
    assert item is not None and item.payload == payload
    reopened.commit([item])
    reopened.close()
