"""Files written by a newer (or unknown) release: refused whole, never read as damage, never changed.

Every file a server or an agent keeps between runs names its format: segment files by an 8-byte
magic (``LHWAL02\\n``, ``LHBUF02\\n``), JSON documents by a ``version`` member, the idempotency
file by a version byte in each record, the metadata database by its ``logharbor_schema`` row. A
reader that meets a version it does not know raises :class:`NewerFormat` *before anything is
written*, and the process stops with the file, the version found and the versions this release
reads. An operator who rolled back a release (the most common "fault" of all) then starts the
release that wrote the file again; nothing of it was cut, quarantined, rewritten or moved aside.

Newer or damaged? Decided by what a checksum covers:

- a version under a checksum that holds (an agent state document's ``crc``, an idempotency
  record's CRC) was written as it reads: newer, refused;
- a checksum that fails is damage, whatever the version says: the file's damage handling applies;
- a version no checksum covers (a segment's magic, ``batcher.json``, the pattern snapshot) is
  taken at its word when it is well formed (``LHWAL`` + two digits + newline; an integer
  ``version``): refused. Anything else there is damage. A flipped bit that turns ``LHWAL02`` into
  ``LHWAL03`` is therefore refused too: the safe side, since a refusal changes nothing (the
  release that names that version, or a look with ``od -c``, tells the operator which it was).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from logharbor.framing import MAGIC_SIZE

__all__ = ["NewerFormat", "magic_version"]


class NewerFormat(RuntimeError):
    """A file in a format version this release does not read; nothing of it was changed.

    Not a ``ValueError`` on purpose: readers catch ``ValueError`` as damage, and this must pass
    them all the way up to the start, which stops.
    """

    def __init__(self, path: Path | str, what: str, found: object, readable: Iterable[object],
                 advice: str = "") -> None:
        from logharbor import __version__

        self.path = Path(path)
        self.found = found
        self.readable = tuple(readable)
        reads = ", ".join(str(v) for v in self.readable)
        super().__init__(
            f"{path}: {what} in format version {found}, written by a newer (or unknown) release of "
            f"logharbor; this release ({__version__}) reads version {reads}. Nothing was changed. "
            "Start the release that wrote it (or a newer one)"
            + (f"; {advice}" if advice else "") + " (docs: 'Upgrades and downgrades')")


def magic_version(head: bytes, prefix: bytes) -> int | None:
    """The version a well-formed magic names (``prefix`` + two digits + newline), else None."""
    if len(head) < MAGIC_SIZE or head[: len(prefix)] != prefix or head[MAGIC_SIZE - 1:MAGIC_SIZE] != b"\n":
        return None
    digits = head[len(prefix):MAGIC_SIZE - 1]
    return int(digits) if len(digits) == 2 and digits.isdigit() else None
