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
        for year in years:
            # the folder holding the year folders: ``node`` itself when it ends with "/", its
            # parent when the prefix ends inside a name (``…/eu-west-1/2026`` or ``…/eu-west-1/20``)
            root = year.rstrip("/").rsplit("/", 1)[0] + "/" if "/" in year.rstrip("/") else ""
            if root not in roots:
                roots.append(root)
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


#: what to do about an S3 error code, in the agent's words (the config names the settings)
_ADVICE = {
    "NoSuchBucket": "the bucket does not exist: check `bucket` (and `region`) in the agent's alb source",
    "NoSuchKey": "the object is gone (removed or moved after it was listed); it is listed again next poll",
    "AccessDenied": "the agent's credentials may not do this: allow s3:ListBucket and s3:GetObject on "
                    "the bucket (and kms:Decrypt if the objects are KMS-encrypted)",
    "AllAccessDisabled": "access to the bucket is disabled by its owner",
    "InvalidAccessKeyId": "the access key is unknown to S3: check the agent's AWS credentials",
    "SignatureDoesNotMatch": "the secret key does not match the access key: check the agent's AWS "
                             "credentials",
    "ExpiredToken": "the session token has expired: refresh the agent's AWS credentials",
    "PermanentRedirect": "the bucket is in another region: set `region` in the agent's alb source",
    "AuthorizationHeaderMalformed": "the bucket is in another region: set `region` in the agent's alb "
                                    "source",
    "SlowDown": "S3 is throttling the agent; it retries at the next poll",
}


class S3Error(Exception):
    """An S3 call failed: one line naming the call, the bucket and key (or prefix), S3's error
    code and what to do (not botocore's text). The source logs it and tries again next poll."""

    def __init__(self, operation: str, bucket: str, key: str, exc: Exception,
                 endpoint_url: str | None = None) -> None:
        self.operation, self.bucket, self.key = operation, bucket, key
        self.code, detail, advice = _explain(exc, endpoint_url)
        super().__init__(f"S3 {operation} s3://{bucket}/{key} failed: {self.code}"
                         f"{f' ({detail})' if detail else ''}; {advice}")


def _explain(exc: Exception, endpoint_url: str | None) -> tuple[str, str, str]:
    """(code, S3's own short message, what to do) for a botocore exception."""
    from botocore import exceptions as bx

    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "error")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        detail = " ".join(str(error.get("Message") or "").split())[:200]
        if code in ("404", "403", "400", "301") and not detail:
            code = {"404": "NotFound", "403": "AccessDenied", "301": "PermanentRedirect"}.get(code, code)
        advice = _ADVICE.get(code, f"S3 answered HTTP {status}; it is tried again next poll")
        return code, detail, advice
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return ("NoCredentials", "", "no AWS credentials found: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or give the host an instance role")
    if isinstance(exc, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        where = endpoint_url or "S3"
        return (type(exc).__name__, "", f"cannot reach {where}: check `endpoint_url` (and `region`) in "
                "the agent's alb source and the network; it is tried again next poll")
    if isinstance(exc, bx.BotoCoreError):
        return type(exc).__name__, " ".join(str(exc).split())[:200], "it is tried again next poll"
    raise exc


class S3Lister:
    """ListObjectsV2 (with a delimiter for the walk) and GetObject on one bucket; a failed call
    raises :class:`S3Error` (one clear line), never botocore's exception."""

    def __init__(self, bucket: str, endpoint_url: str | None, region: str | None) -> None:
        import boto3

        self.bucket = bucket
        self.endpoint_url = endpoint_url
        # a session of its own: credentials are looked up when the source starts, not once per process
        self.client: Any = boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=region)

    def _failed(self, operation: str, key: str, exc: Exception) -> S3Error:
        return S3Error(operation, self.bucket, key, exc, self.endpoint_url)

    @staticmethod
    def _info(obj: dict[str, Any]) -> ObjectInfo:
        return ObjectInfo(obj["Key"], str(obj.get("ETag", "")).strip('"') or f"size:{obj['Size']}",
                          int(obj["Size"]), obj["LastModified"].timestamp())

    def children(self, prefix: str) -> tuple[list[str], list[ObjectInfo]]:
        from botocore.exceptions import BotoCoreError, ClientError

        subs: list[str] = []
        objects: list[ObjectInfo] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/")
            for page in pages:
                subs.extend(p["Prefix"] for p in page.get("CommonPrefixes", []))
                objects.extend(self._info(o) for o in page.get("Contents", []))
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("ListObjectsV2", prefix, exc) from exc
        return subs, objects

    def below(self, prefix: str) -> Iterator[ObjectInfo]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for o in page.get("Contents", []):
                    yield self._info(o)
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("ListObjectsV2", prefix, exc) from exc

    def read(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            data: bytes = self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise self._failed("GetObject", key, exc) from exc
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
