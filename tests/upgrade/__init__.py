"""Files of other releases met by this one (old ones upgraded, newer ones refused), and helpers."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

import pytest


def unpack(factory: pytest.TempPathFactory, tgz: Path, top: str) -> Path:
    """``tgz`` unpacked once into a new temporary directory; the path of its ``top`` folder."""
    root = factory.mktemp(top)
    with tarfile.open(tgz) as tar:
        tar.extractall(root, filter="data")
    return root / top


def tree(root: Path) -> dict[str, str]:
    """Every file and directory under ``root``: a file's sha256, a directory as such (so a file
    or a directory that appears, goes or changes by one byte is seen)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}
