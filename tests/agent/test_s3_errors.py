"""An S3 error in the agent's ALB source is one clear line naming the bucket, the key or prefix and
what to do, never botocore's raw exception text (issue #28 item 4). Against moto's server and a
closed port: a missing bucket, a missing key, refused credentials, an unreachable endpoint."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import pytest
from tests.agent.conftest import free_port

from logharbor.agent.sources.alb_listing import S3Error, S3Lister


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))


def _one_line(error: S3Error, *must: str) -> str:
    text = str(error)
    assert "\n" not in text and "botocore" not in text and "An error occurred (" not in text, text
    for part in must:
        assert part in text, (part, text)
    return text


def test_a_missing_bucket_names_it_and_the_setting(moto_s3: str) -> None:
    lister = S3Lister("no-such-bucket", moto_s3, "eu-west-1")
    with pytest.raises(S3Error) as caught:
        lister.children("AWSLogs/")
    _one_line(caught.value, "s3://no-such-bucket/AWSLogs/", "NoSuchBucket", "bucket")


def test_a_missing_key_names_it(moto_s3: str) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="eu-west-1")
    s3.create_bucket(Bucket="lb-logs", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(S3Error) as caught:
        S3Lister("lb-logs", moto_s3, "eu-west-1").read("AWSLogs/gone.log.gz")
    _one_line(caught.value, "s3://lb-logs/AWSLogs/gone.log.gz", "NoSuchKey")


def test_an_unreachable_endpoint_names_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    lister = S3Lister("lb-logs", url, "eu-west-1")
    lister.client.meta.config.retries = {"max_attempts": 0}
    with pytest.raises(S3Error) as caught:
        list(lister.below("AWSLogs/"))
    _one_line(caught.value, "s3://lb-logs/AWSLogs/", url, "endpoint_url")


def test_missing_credentials_say_where_they_come_from(moto_s3: str, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(S3Error) as caught:
        S3Lister("lb-logs", moto_s3, "eu-west-1").read("AWSLogs/x.log.gz")
    _one_line(caught.value, "s3://lb-logs/AWSLogs/x.log.gz", "credentials", "AWS_ACCESS_KEY_ID")
