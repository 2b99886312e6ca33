"""Encryption at rest for logharbor's own files (the server's WAL, the agent's disk buffer).

A key file holds one key per line, ``<id>:<64 hex chars>`` (AES-256), ``#`` comments allowed;
the line with the highest id is the current key. Rotation is adding a line: new data is sealed
with the new key, old data stays readable with the old one; a key is removed only once nothing
sealed with it is left.

A sealed blob is ``b"LHS1" + key id (1 byte) + nonce (12 bytes) + AES-GCM(ciphertext + tag)``:
authenticated, so a flipped bit is an error, never garbage handed on as a log line.
"""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KeyFileError", "SealError", "Sealer", "generate_key_file", "load_keys", "looks_sealed"]

_MAGIC = b"LHS1"
_NONCE = 12
_LINE = re.compile(r"(\d{1,3})\s*:\s*([0-9a-fA-F]{64})")


def looks_sealed(blob: bytes) -> bool:
    """Whether ``blob`` starts as a sealed blob does (``LHS`` and a format digit: a newer release's
    seal too). The plain payloads sealed here (WAL rows, agent buffer NDJSON) are JSON text, which
    never starts so: a reader without a key uses this to refuse sealed bytes instead of handing
    them on as if they were records."""
    return blob[:3] == _MAGIC[:3] and blob[3:4].isdigit()


class KeyFileError(ValueError):
    """The key file is missing, malformed, or readable by others."""


class SealError(ValueError):
    """A sealed blob is not ours, names an unknown key, or fails authentication."""


def load_keys(path: str | os.PathLike[str], *, require_private: bool = True) -> dict[int, bytes]:
    """Read ``id:hex`` lines; refuse a file that group or others can read."""
    p = Path(path)
    try:
        mode = p.stat().st_mode
        text = p.read_text()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {p}: {exc.strerror}") from None
    if require_private and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"key file {p} must be readable by its owner only (chmod 600)")
    keys: dict[int, bytes] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _LINE.fullmatch(line)
        if m is None:
            raise KeyFileError(f"{p}:{number}: expected '<id>:<64 hex characters>'")
        key_id = int(m[1])
        if not 1 <= key_id <= 255:
            raise KeyFileError(f"{p}:{number}: key id must be 1..255")
        if key_id in keys:
            raise KeyFileError(f"{p}:{number}: key id {key_id} appears twice")
        keys[key_id] = bytes.fromhex(m[2])
    if not keys:
        raise KeyFileError(f"key file {p} holds no key")
    return keys


def generate_key_file(path: str | os.PathLike[str], key_id: int = 1) -> None:
    """Append a fresh random key (creating the file with mode 0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as fh:
        fh.write(f"{key_id}:{secrets.token_hex(32)}\n")
    os.chmod(path, 0o600)


class Sealer:
    """Seals with the current (highest-id) key, opens with whichever key a blob names."""

    def __init__(self, keys: dict[int, bytes]) -> None:
        if not keys:
            raise KeyFileError("at least one key is needed")
        self.keys = dict(keys)
        self.current_id = max(keys)
        self._aead = {key_id: AESGCM(key) for key_id, key in keys.items()}

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Sealer:
        return cls(load_keys(path))

    def seal(self, data: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        header = _MAGIC + bytes([self.current_id])
        return header + nonce + self._aead[self.current_id].encrypt(nonce, data, header)

    def open(self, blob: bytes) -> bytes:
        if looks_sealed(blob) and blob[:4] != _MAGIC:  # kept as it is by the caller, never dropped
            raise SealError(f"sealed in format {blob[:4].decode()}, written by a newer release; this "
                            f"release opens {_MAGIC.decode()}")
        if blob[:4] != _MAGIC or len(blob) < 5 + _NONCE + 16:
            raise SealError("not a sealed blob")
        key_id = blob[4]
        aead = self._aead.get(key_id)
        if aead is None:
            raise SealError(f"sealed with key {key_id}, which the key file no longer has")
        try:
            return aead.decrypt(blob[5:5 + _NONCE], blob[5 + _NONCE:], blob[:5])
        except InvalidTag:
            raise SealError("sealed blob fails authentication (damaged or wrong key)") from None

    def clickhouse_disk_xml(self, base_path: str) -> str:
        """A chDB config with an encrypted disk over ``base_path`` holding every key (rotation)."""
        keys = "\n".join(f'        <key_hex id="{key_id}">{key.hex()}</key_hex>'
                         for key_id, key in sorted(self.keys.items()))
        return f"""<clickhouse>
  <storage_configuration>
    <disks>
      <logharbor_plain><type>local</type><path>{xml_escape(base_path)}/</path></logharbor_plain>
      <logharbor_sealed>
        <type>encrypted</type>
        <disk>logharbor_plain</disk>
        <path>sealed/</path>
{keys}
        <current_key_id>{self.current_id}</current_key_id>
        <algorithm>AES_256_CTR</algorithm>
      </logharbor_sealed>
    </disks>
    <policies>
      <logharbor_sealed><volumes><main><disk>logharbor_sealed</disk></main></volumes></logharbor_sealed>
    </policies>
  </storage_configuration>
</clickhouse>
"""
