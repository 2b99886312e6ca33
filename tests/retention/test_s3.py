"""The cold tier on S3, against a real moto S3 server process on loopback: moves write Parquet
objects, queries read them through the engine's s3() function, deletes rewrite them."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from tests.conftest import free_port
from tests.retention.helpers import counts, insert, open_tiers, record, set_policy

from logharbor.server.engine.store.coldstore import S3Cold
from logharbor.server.features.query import compile_query

BIN = Path(sys.executable).parent


@pytest.fixture
def moto_s3() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_cold_tier_on_s3(tmp_path: Path, moto_s3: str) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_s3, aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    s3.create_bucket(Bucket="cold-logs")
    cold = S3Cold(bucket="cold-logs", prefix="lh/cold", endpoint=moto_s3, access_key="testing",
                  secret_key="testing")
    store, tiers, mover = open_tiers(tmp_path, cold)
    try:
        insert(store, [record(age, level=level, n=i, user_id=f"u-{i % 3}")
                       for age in (1, 50, 51) for level in ("INFO", "ERROR") for i in range(30)])
        set_policy(mover, {"rules": [{"name": "all", "hot": "10d", "cold": "365d"}]})
        assert mover.tick()["moved"] == 120
        assert counts(tiers) == {"hot": 60, "warm": 0, "cold": 120}
        objects = [o["Key"] for o in s3.list_objects_v2(Bucket="cold-logs")["Contents"]]
        assert len(objects) == 2 and all(k.startswith("lh/cold/") and k.endswith(".parquet") for k in objects)
        assert cold.keys() == sorted(k[len("lh/cold/"):] for k in objects)  # no staging object left

        compiled = compile_query("level:ERROR AND user_id:u-1", table=store.table, time_from_ns=None,
                                 time_to_ns=None, limit=1000, max_limit=1000)
        assert len(store.query(compiled.sql, compiled.params)) == 30  # 10 per age, two of them cold

        # a delete rewrites the objects without the matches, and leaves everything else
        assert tiers.delete_where("cold", "JSONExtractString(attributes, 'user_id') = {u:String}", {"u": "u-1"}) == 40
        assert counts(tiers) == {"hot": 60, "warm": 0, "cold": 80}
        assert counts(tiers, "JSONExtractString(attributes, 'user_id') = 'u-1'")["cold"] == 0
    finally:
        store.close()
