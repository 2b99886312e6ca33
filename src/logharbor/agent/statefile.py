"""The agent's small state documents, checked by a CRC and written with the previous copy kept.

Checkpoints, the ALB read-set and a disk buffer's delivered position (``ack.json``) are each one
JSON document with a ``crc`` member: the CRC-32 of the document without it, serialized with
sorted keys, so a flipped bit that still parses (a digit of an offset) is seen, not believed.

A write goes to ``<name>.tmp`` (fsync'd), the current file is linked as ``<name>.prev``, the temp
file is renamed over the current one, and the directory is fsync'd: the document is never
missing, and a crash at any point leaves a whole newest copy (the temp file or the current one)
and the one before it. A read takes the first
sound copy of: the temp file (present only when a crash came between its fsync and the renames;
then it is the newest), the current file, the previous one. A copy that exists but is not sound
is named in :attr:`Loaded.damaged`, and the caller says (:func:`report`) what that costs: one
write older (the previous copy) is a few acknowledgements sent again, never everything.
Documents written before the CRC existed (older agents) have none and are taken as they are.

A sound copy whose ``version`` is a number this release does not read was written by a newer
release (the CRC covers the version: it is not damage): :func:`read` raises
:class:`~logharbor.formatversion.NewerFormat` instead of falling back to an older copy, so the
agent stops before it writes anything over it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from logharbor.agent import telemetry
from logharbor.durable import fsync_dir, temp_path, write_temp
from logharbor.formatversion import NewerFormat
from logharbor.types import JsonObject

__all__ = ["Loaded", "Versions", "dump", "read", "report", "write"]

_COPIES = (("tmp", ".tmp"), ("current", ""), ("previous", ".prev"))


def _crc(doc: JsonObject) -> int:
    return zlib.crc32(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))


def dump(doc: JsonObject) -> bytes:
    """``doc`` with its ``crc`` member, as written (indented: people read checkpoints)."""
    body = {k: v for k, v in doc.items() if k != "crc"}
    return orjson.dumps({**body, "crc": _crc(body)}, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def parse(data: bytes) -> JsonObject:
    """The document in ``data``; raises ValueError saying why it is not sound."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({'empty' if not data.strip() else exc})") from None
    if not isinstance(doc, dict):
        raise ValueError("not a JSON object")
    if "crc" in doc:
        crc = doc.pop("crc")
        if crc != _crc(doc):
            raise ValueError("fails its CRC (changed on disk)")
    return doc


@dataclass
class Loaded:
    """What :func:`read` found: the document, which copy it came from, and the unsound copies."""

    path: Path
    doc: JsonObject | None = None
    source: str | None = None  # "tmp", "current" or "previous"
    damaged: list[str] = field(default_factory=list)  # "<file>: <why>"

    @property
    def fell_back(self) -> bool:
        """The newest state was lost: the document is the previous copy, or there is none."""
        return bool(self.damaged) and self.source in (None, "previous")


@dataclass(frozen=True)
class Versions:
    """The ``version`` members a document kind may have here (``default``: what its absence means)."""

    what: str
    readable: tuple[int, ...]
    default: int | None = None

    def check(self, doc: JsonObject, copy: Path) -> None:
        """Raise :class:`NewerFormat` for a number not read here; ValueError for a version that
        is not a number (damage)."""
        version = doc.get("version", self.default)
        if type(version) is int and version not in self.readable:
            raise NewerFormat(copy, self.what, version, self.readable)
        if type(version) is not int:
            raise ValueError(f"version {version!r} is not a number")


def read(path: Path, valid: Any = None, versions: Versions | None = None) -> Loaded:
    """The first sound copy of ``path``'s document (``valid(doc)`` may refuse one by raising
    ValueError: a document of the wrong shape is as unusable as a damaged one). A sound copy of a
    version ``versions`` does not read raises :class:`NewerFormat`."""
    out = Loaded(path)
    for source, suffix in _COPIES:
        copy = path.with_name(path.name + suffix)
        try:
            data = copy.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            out.damaged.append(f"{copy.name}: unreadable ({exc.strerror})")
            continue
        try:
            doc = parse(data)
            if versions is not None:
                versions.check(doc, copy)
            if valid is not None:
                valid(doc)
        except (ValueError, TypeError, KeyError) as exc:
            if source != "tmp":  # a temp file cut by a crash is expected, not damage
                out.damaged.append(f"{copy.name}: {exc}")
            continue
        out.doc, out.source = doc, source
        return out
    return out


def write(path: Path, doc: JsonObject) -> None:
    """Replace ``path``'s document durably, keeping the one it replaces as ``<name>.prev``."""
    tmp = temp_path(path)
    try:
        write_temp(path, dump(doc))
        _keep_previous(path)
        os.replace(tmp, path)
    except OSError:
        # a half-written temp file (a full disk) would be read at the next start as the newest
        # copy and reported as damage: the write failed, the current copy stands
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    with contextlib.suppress(OSError):  # a filesystem that cannot sync a directory: the renames stand
        fsync_dir(path.parent)


def _keep_previous(path: Path) -> None:
    """The current copy becomes ``.prev`` while ``path`` stays in place (a hard link; a copy on a
    filesystem without them), so a reader never finds the document missing."""
    prev = path.with_name(path.name + ".prev")
    staged = path.with_name(path.name + ".prev.tmp")
    staged.unlink(missing_ok=True)
    try:
        os.link(path, staged)
    except FileNotFoundError:
        return
    except OSError:
        try:
            staged.write_bytes(path.read_bytes())
        except FileNotFoundError:
            return
    os.replace(staged, prev)


def report(kind: str, loaded: Loaded, consequence: str) -> None:
    """Log (ERROR) and count unsound copies, saying which copy is used and what that costs."""
    if not loaded.damaged:
        return
    used = {"tmp": "the newest copy (.tmp)", "current": "the current copy",
            "previous": "the previous copy (.prev, one write older)"}.get(loaded.source or "", "no copy")
    telemetry.state_damaged(kind, str(loaded.path), loaded.damaged, used,
                            consequence if loaded.fell_back else "nothing (a newer copy is sound)",
                            level=logging.ERROR if loaded.fell_back else logging.WARNING)
