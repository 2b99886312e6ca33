"""The cold tier: Parquet files on object storage, a local folder or an S3 bucket.

Files are laid out ``<root>/<YYYY-MM-DD>/<move id>.parquet`` and read by the engine itself
(``file()`` / ``s3()`` table functions), so queries reach them through the same SQL as the hot
table. A file is written under a staging name that the read glob does not match and then
published (a rename on a folder, a server-side copy on S3), so a reader or a crash never sees a
half-written file; publishing the same move twice writes the same object again (idempotent).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from logharbor.durable import replace_durably
from logharbor.server.engine.store.base import Store

__all__ = ["ColdStore", "LocalCold", "S3Cold", "cold_store_from_url", "literal"]

#: characters allowed in a path, URL or key that must appear in a view definition as a literal
_LITERAL_OK = re.compile(r"^[A-Za-z0-9_./:@%+=*,{}-]*$")
_STAGING = ".staging"


def literal(text: str) -> str:
    """A SQL string literal of operator-configured text (paths, URLs, credentials).

    Only for the view definition, where parameters cannot stand; the text is first held to a
    strict character set, so a quote or a backslash can never reach SQL.
    """
    if not _LITERAL_OK.match(text):
        raise ValueError(f"cold storage setting {text[:40]!r} has characters outside [A-Za-z0-9_./:@%+=-]")
    return "'" + text + "'"


class ColdStore(Protocol):
    """Where cold Parquet files live."""

    #: shown in /api/v1/storage and the docs
    url: str

    def table_function(self, key: str | None, structure: str) -> str:
        """``file(…)``/``s3(…)`` reading one key, or every published file when ``key`` is None."""

    def write(self, store: Store, key: str, select_sql: str, params: Mapping[str, Any]) -> None:
        """Write the rows of ``select_sql`` to ``key`` (staged, then published)."""

    def keys(self) -> list[str]:
        """Published files, oldest day first."""

    def remove(self, key: str) -> None:
        """Delete one file (no error when it is already gone)."""

    def size(self, key: str) -> int:
        """Bytes of one file."""

    def clear_staging(self) -> int:
        """Remove staged copies a crash left behind (call with no write under way); how many."""

    def forget_versions(self, key: str) -> int:
        """Remove the earlier versions a versioned bucket keeps of ``key``; how many."""


#: zstd 9 (level 15+ is 3x slower for 5 %); no bloom filters: they cost 13 % of the file on the
#: demo mix, while row-group min/max statistics still prune by time and the sort order by service
_PARQUET_SETTINGS = ("SETTINGS output_format_parquet_compression_method = 'zstd', "
                     "output_format_parquet_write_bloom_filter = 0, output_format_compression_level = 9, "
                     "output_format_parquet_row_group_size = 1000000")


@dataclass
class LocalCold:
    """Cold files in a folder (another disk, an NFS mount, a test's temporary directory)."""

    root: Path

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        literal(str(self.root))
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / _STAGING).mkdir(exist_ok=True)

    @property
    def url(self) -> str:
        return f"file://{self.root}"

    def table_function(self, key: str | None, structure: str) -> str:
        target = str(self.root / key) if key else f"{self.root}/*/*.parquet"
        return f"file({literal(target)}, 'Parquet', {literal_structure(structure)})"

    def write(self, store: Store, key: str, select_sql: str, params: Mapping[str, Any]) -> None:
        staging = self.root / _STAGING / (key.replace("/", "_") + ".part")
        staging.unlink(missing_ok=True)
        store.execute(f"INSERT INTO FUNCTION file({{cold_path:String}}, 'Parquet') {select_sql} "
                      f"{_PARQUET_SETTINGS}, engine_file_truncate_on_insert = 1",
                      {**params, "cold_path": str(staging)})
        final = self.root / key
        final.parent.mkdir(parents=True, exist_ok=True)
        replace_durably(staging, final)

    def keys(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.glob("*/*.parquet"))

    def remove(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def size(self, key: str) -> int:
        try:
            return (self.root / key).stat().st_size
        except FileNotFoundError:
            return 0

    def clear_staging(self) -> int:
        n = 0
        for path in (self.root / _STAGING).glob("*"):
            if path.is_file():
                path.unlink(missing_ok=True)
                n += 1
        return n

    def forget_versions(self, key: str) -> int:
        return 0  # a folder keeps no versions (a snapshotting filesystem is the operator's)


@dataclass
class S3Cold:
    """Cold files in an S3 bucket (or anything speaking its protocol: MinIO, moto, R2)."""

    bucket: str
    prefix: str
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def __post_init__(self) -> None:
        import boto3

        self.prefix = self.prefix.strip("/")
        for value in (self.bucket, self.prefix, self.endpoint, self.access_key, self.secret_key):
            literal(value)
        self._s3 = boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                                aws_secret_access_key=self.secret_key, region_name=self.region)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def _object(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _http(self, key: str) -> str:
        return f"{self.endpoint.rstrip('/')}/{self.bucket}/{self._object(key)}"

    def table_function(self, key: str | None, structure: str) -> str:
        target = self._http(key if key else "*/*.parquet")
        return (f"s3({literal(target)}, {literal(self.access_key)}, {literal(self.secret_key)}, "
                f"'Parquet', {literal_structure(structure)})")

    def write(self, store: Store, key: str, select_sql: str, params: Mapping[str, Any]) -> None:
        staging = f"{_STAGING}/{key.replace('/', '_')}.part"
        store.execute(
            f"INSERT INTO FUNCTION s3({{cold_url:String}}, {{cold_key:String}}, {{cold_secret:String}}, "
            f"'Parquet') {select_sql} {_PARQUET_SETTINGS}, s3_truncate_on_insert = 1",
            {**params, "cold_url": self._http(staging), "cold_key": self.access_key,
             "cold_secret": self.secret_key})
        self._s3.copy_object(Bucket=self.bucket, Key=self._object(key),
                             CopySource={"Bucket": self.bucket, "Key": self._object(staging)})
        self._s3.delete_object(Bucket=self.bucket, Key=self._object(staging))

    def keys(self) -> list[str]:
        out: list[str] = []
        start = f"{self.prefix}/" if self.prefix else ""
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start):
            for obj in page.get("Contents", []):
                key = obj["Key"][len(start):]
                if key.endswith(".parquet") and not key.startswith(_STAGING) and key.count("/") == 1:
                    out.append(key)
        return sorted(out)

    def remove(self, key: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=self._object(key))

    def size(self, key: str) -> int:
        try:
            return int(self._s3.head_object(Bucket=self.bucket, Key=self._object(key))["ContentLength"])
        except self._s3.exceptions.ClientError:
            return 0

    def clear_staging(self) -> int:
        n = 0
        prefix = self._object(_STAGING + "/")
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                self._s3.delete_object(Bucket=self.bucket, Key=obj["Key"])
                n += 1
        return n + self._forget_versions(prefix, exact=False)

    def forget_versions(self, key: str) -> int:
        return self._forget_versions(self._object(key), exact=True)

    def _forget_versions(self, prefix: str, *, exact: bool) -> int:
        """On a versioned bucket, delete every version but the current one of the objects named."""
        status = self._s3.get_bucket_versioning(Bucket=self.bucket).get("Status")
        if status not in ("Enabled", "Suspended"):
            return 0
        n = 0
        pages = self._s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]:
                if (exact and item["Key"] != prefix) or (item.get("IsLatest") and "Size" in item):
                    continue  # another object, or the current version itself
                self._s3.delete_object(Bucket=self.bucket, Key=item["Key"], VersionId=item["VersionId"])
                n += 1
        return n


def literal_structure(structure: str) -> str:
    """The column list given to file()/s3(): built by the server from the table's own columns."""
    if not re.match(r"^[A-Za-z0-9_ ,()'`]*$", structure):
        raise ValueError("unexpected characters in the cold table structure")
    return "'" + structure.replace("'", "\\'") + "'"


def cold_store_from_url(url: str, data_dir: Path, *, endpoint: str | None = None) -> ColdStore:
    """``s3://bucket/prefix`` (endpoint and keys from the environment), a folder, or the default.

    S3 settings come from ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION`` and
    ``endpoint`` (``AWS_ENDPOINT_URL`` when not given).
    """
    if url.startswith("s3://"):
        parsed = urlparse(url)
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or "https://s3.amazonaws.com"
        return S3Cold(bucket=parsed.netloc, prefix=parsed.path, endpoint=endpoint,
                      access_key=os.environ.get("AWS_ACCESS_KEY_ID", ""),
                      secret_key=os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
                      region=os.environ.get("AWS_REGION", "us-east-1"))
    path = Path(url[len("file://"):]) if url.startswith("file://") else Path(url)
    if not path.is_absolute():
        path = data_dir / path
    return LocalCold(path)
