"""Finding ALB log objects under a prefix, in S3 or in a folder, without a high-water mark.

Why not ``StartAfter`` the last key read: ALB keys sort by account, region, date, then load
balancer, slot time and node address, and nodes deliver late. Another node's object for an older
slot, a second load balancer's objects, or any late object sorts *below* keys already read and a
mark would skip it for good. So every poll lists a *window* and the source remembers the set of
objects it read in it.

What is listed each poll, bounded by the AWS key layout
(``…/AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/<name>.log.gz``):

- *roots* — prefixes whose children are year folders (``…/eu-west-1/``) — are found by walking the
  tree below the configured prefix with a delimiter (a few small listings, repeated every few
  minutes, so a new region or account appears by itself);
- under each root, only the date folders of the window (``lookback_hours`` back from now, UTC) are
  listed, whole;
- objects outside the layout (no date folders above them) are listed on each walk, whole.

The folder lister reads the same tree on disk (a key is the path relative to the folder) and
leaves files modified in the last :data:`SETTLE_SECS` for the next poll (a file still being
written would otherwise be read half); S3 objects appear whole.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["SETTLE_SECS", "FolderLister", "Lister", "ObjectInfo", "S3Lister", "day_of", "find_roots",
           "is_log_key", "scan", "window_days"]

#: a folder file modified this recently may still be being written: left for the next poll
SETTLE_SECS = 2.0
#: how deep and how wide the walk for roots may go (a prefix far above the layout is still bounded)
_MAX_DEPTH = 8
_MAX_NODES = 2000
_YEAR = re.compile(r"(?:19|20|21)\d\d")
_DAY_PATH = re.compile(r"/(\d{4})/(\d\d)/(\d\d)/[^/]*$")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object: its key, a version (ETag, or the size of a folder file), its size and
    modification time, and its date folder when it sits in the AWS layout."""

    key: str
    version: str
    size: int
    modified: float
    day: dt.date | None = None


class Lister(Protocol):
    """A place objects are listed and read from."""

    def children(self, prefix: str) -> tuple[list[str], list[ObjectInfo]]:
        """Sub-prefixes (ending in ``/``) and objects directly below ``prefix``."""
        ...

    def below(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under ``prefix``, at any depth."""
        ...

    def read(self, key: str) -> bytes:
        """The object's bytes, as stored (still compressed)."""
        ...


def is_log_key(key: str) -> bool:
    """Whether a key names an ALB log object (``.log.gz``, or ``.log`` for uncompressed copies)."""
    name = key.rsplit("/", 1)[-1]
    return name.endswith((".log.gz", ".log")) and not name.startswith(".")


def day_of(key: str) -> dt.date | None:
    """The date folder of a key in the AWS layout (``…/2026/11/24/name``), if it has one."""
    m = _DAY_PATH.search(key)
    if not m:
        return None
    try:
        return dt.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def window_days(lookback_hours: float, now: float | None = None) -> list[dt.date]:
    """The UTC dates of the window: from ``lookback_hours`` ago to one hour ahead (clock skew)."""
    at = dt.datetime.fromtimestamp(time.time() if now is None else now, tz=dt.UTC)
    first = (at - dt.timedelta(hours=lookback_hours)).date()
    last = (at + dt.timedelta(hours=1)).date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def find_roots(lister: Lister, prefix: str) -> tuple[list[str], list[ObjectInfo]]:
    """Walk below ``prefix``: the layout roots (prefixes holding year folders) and the log objects
    found on the way outside any root's year folders."""
    roots: list[str] = []
    loose: list[ObjectInfo] = []
    queue: list[tuple[str, int]] = [(prefix, 0)]
    nodes = 0
    while queue and nodes < _MAX_NODES:
        node, depth = queue.pop()
        nodes += 1
        subs, objects = lister.children(node)
        loose.extend(o for o in objects if is_log_key(o.key))
        years = [s for s in subs if _YEAR.fullmatch(s.rstrip("/").rsplit("/", 1)[-1])]
        if years:
            roots.append(node if node.endswith("/") or not node else node + "/")
        if depth < _MAX_DEPTH:
            queue.extend((s, depth + 1) for s in subs if s not in years)
    return sorted(roots), loose


def scan(lister: Lister, prefix: str, roots: list[str], days: list[dt.date]) -> list[ObjectInfo]:
    """The log objects in the window's date folders of every root."""
    found: list[ObjectInfo] = []
    for root in roots:
        for day in days:
            folder = f"{root}{day:%Y/%m/%d}/"
            for o in lister.below(folder):
                if is_log_key(o.key) and o.key.startswith(prefix):
                    found.append(ObjectInfo(o.key, o.version, o.size, o.modified, day))
    return found


class S3Lister:
    """ListObjectsV2 (with a delimiter for the walk) and GetObject on one bucket."""

    def __init__(self, bucket: str, endpoint_url: str | None, region: str | None) -> None:
        import boto3

        self.bucket = bucket
        self.client: Any = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)

    @staticmethod
    def _info(obj: dict[str, Any]) -> ObjectInfo:
        return ObjectInfo(obj["Key"], str(obj.get("ETag", "")).strip('"') or f"size:{obj['Size']}",
                          int(obj["Size"]), obj["LastModified"].timestamp())

    def children(self, prefix: str) -> tuple[list[str], list[ObjectInfo]]:
        subs: list[str] = []
        objects: list[ObjectInfo] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix, Delimiter="/")
        for page in pages:
            subs.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
            objects.extend(self._info(o) for o in page.get("Contents", []))
        return subs, objects

    def below(self, prefix: str) -> Iterator[ObjectInfo]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for o in page.get("Contents", []):
                yield self._info(o)

    def read(self, key: str) -> bytes:
        data: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return data


class FolderLister:
    """The same tree on disk; a key is a path relative to ``root`` with ``/`` separators."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _info(self, key: str, st: os.stat_result) -> ObjectInfo | None:
        if time.time() - st.st_mtime < SETTLE_SECS:
            return None  # may still be being written: the next poll takes it
        return ObjectInfo(key, f"size:{st.st_size}", st.st_size, st.st_mtime)

    def children(self, prefix: str) -> tuple[list[str], list[ObjectInfo]]:
        directory, _, start = prefix.rpartition("/")
        path = self.root / directory if directory else self.root
        subs: list[str] = []
        objects: list[ObjectInfo] = []
        try:
            entries = list(os.scandir(path))
        except OSError:
            return subs, objects
        for entry in entries:
            if not entry.name.startswith(start):
                continue
            key = f"{directory}/{entry.name}" if directory else entry.name
            try:
                if entry.is_dir():
                    subs.append(key + "/")
                elif entry.is_file():
                    info = self._info(key, entry.stat())
                    if info is not None:
                        objects.append(info)
            except OSError:
                continue
        return sorted(subs), objects

    def below(self, prefix: str) -> Iterator[ObjectInfo]:
        subs, objects = self.children(prefix)
        yield from objects
        for sub in subs:
            yield from self.below(sub)

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()
