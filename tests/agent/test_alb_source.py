"""The agent's ``alb`` source against a folder and against S3 (a real moto server process): every
object read once, across restarts and re-listing (issue 8)."""

from __future__ import annotations

import contextlib
import gzip
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import httpx
import pytest
import yaml
from tests.agent.conftest import moto_server
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally

from logharbor.demo.alb import alb_object_path
from logharbor.demo.traffic import TrafficGenerator, render

BIN = Path(sys.executable).parent


def make_objects(n: int, per_object: int, seed: int) -> list[tuple[str, bytes, set[str]]]:
    """(key, gzip bytes, trace ids) for ``n`` objects of ALB lines, keys in time order."""
    gen = TrafficGenerator(seed)
    # recent slots: the source lists the date folders of its lookback window (24 h by default)
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=1)
    out = []
    for i in range(n):
        stories = list(gen.stories(per_object))
        lines = [render(s)["alb"][0] for s in stories]
        key = alb_object_path(Path("."), base + timedelta(minutes=5 * i), i).as_posix()
        out.append((key, gzip.compress(("\n".join(lines) + "\n").encode()), {s.trace_id for s in stories}))
    return out


def agent_yaml(tmp: Path, server: ServerProcess, key: str, source: dict) -> Path:  # type: ignore[type-arg]
    cfg = {"data_dir": str(tmp / "agent-data"), "metrics": {"port": 0},
           "sources": {"lb": {"type": "alb", "poll_interval_s": 0.3, "fields": {"service": "shop-alb"},
                              **source}},
           "sinks": {"server": {"type": "logharbor", "url": server.url, "api_key": key}}}
    path = tmp / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_agent(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "logharbor.cli.main", "agent", "-c", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def traces_in_store(server: ServerProcess) -> list[str]:
    rows = httpx.post(server.url + "/api/v1/query", headers=server.headers, timeout=30,
                      json={"q": "source:alb", "limit": 10000, "from": "2026-11-01T00:00:00Z"}).json()["rows"]
    return [r["trace_id"] for r in rows]


def wait_count(server: ServerProcess, n: int, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    found: list[str] = []
    while time.monotonic() < deadline:
        found = traces_in_store(server)
        if len(found) >= n:
            break
        time.sleep(0.3)
    return found


def check_once(server: ServerProcess, objects: list[tuple[str, bytes, set[str]]]) -> None:
    expected = set().union(*(t for _, _, t in objects))
    found = wait_count(server, len(expected))
    time.sleep(1.0)  # a few more polls: nothing may come twice
    found = traces_in_store(server)
    assert sorted(found) == sorted(expected)


@pytest.mark.e2e
def test_folder_objects_are_read_once_across_restarts(tmp_path: Path, server: ServerProcess) -> None:
    root = tmp_path / "alb"
    objects = make_objects(4, 50, seed=1)
    for key, data, _ in objects[:3]:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(data)
    config = agent_yaml(tmp_path, server, server.create_key("writer"), {"path": str(root)})
    agent = run_agent(config)
    try:
        check_once(server, objects[:3])
    finally:
        stop(agent)
    # restart, re-list the same objects, one new object arrives, an old one is re-delivered
    key, data, _ = objects[3]
    (root / key).parent.mkdir(parents=True, exist_ok=True)
    (root / key).write_bytes(data)
    os.utime(root / objects[0][0])
    agent = run_agent(config)
    try:
        check_once(server, objects)
    finally:
        stop(agent)


@pytest.mark.e2e
def test_s3_objects_via_list_objects_v2(tmp_path: Path, server: ServerProcess, moto_s3: str) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="eu-west-1")
    s3.create_bucket(Bucket="lb-logs", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    objects = make_objects(3, 40, seed=2)
    for key, data, _ in objects[:2]:
        s3.put_object(Bucket="lb-logs", Key=key, Body=data)
    config = agent_yaml(tmp_path, server, server.create_key("writer"),
                        {"bucket": "lb-logs", "prefix": "AWSLogs/", "endpoint_url": moto_s3,
                         "region": "eu-west-1"})
    agent = run_agent(config)
    try:
        check_once(server, objects[:2])
        key, data, _ = objects[2]
        s3.put_object(Bucket="lb-logs", Key=key, Body=data)
        s3.put_object(Bucket="lb-logs", Key=objects[0][0], Body=objects[0][1])  # re-delivered
        check_once(server, objects)
    finally:
        stop(agent)



@pytest.mark.e2e
@pytest.mark.parametrize("place", ["folder", "s3"])
def test_a_prefix_ending_inside_the_layout_reads_its_objects(tmp_path: Path, server: ServerProcess,
                                                             place: str) -> None:
    """A prefix that ends at a year (``…/eu-west-1/2026``, one year of one region) or inside its
    name (``…/eu-west-1/20``) without a slash: the walk took ``<prefix>/`` for the folder holding the
    year folders and listed ``…/2026/2026/mm/dd/``, so not one object was ever read."""
    objects = make_objects(3, 30, seed=3)
    region, year = objects[0][0].rsplit("/", 4)[:2]  # …/elasticloadbalancing/<region>, yyyy
    with contextlib.ExitStack() as stack:
        if place == "folder":
            root = tmp_path / "alb"
            for key, data, _ in objects:
                (root / key).parent.mkdir(parents=True, exist_ok=True)
                (root / key).write_bytes(data)
                os.utime(root / key, (time.time() - 60, time.time() - 60))  # settled: read at the first poll
            source: dict[str, str] = {"path": str(root), "prefix": f"{region}/{year}"}
        else:
            url = stack.enter_context(moto_server())
            s3 = boto3.client("s3", endpoint_url=url, region_name="eu-west-1")
            s3.create_bucket(Bucket="lb-logs", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
            for key, data, _ in objects:
                s3.put_object(Bucket="lb-logs", Key=key, Body=data)
            source = {"bucket": "lb-logs", "prefix": f"{region}/{year[:2]}", "endpoint_url": url,
                      "region": "eu-west-1"}
        tally = Tally(f"alb objects under the prefix {source['prefix']!r} ({place})")
        tally.ack(set().union(*(t for _, _, t in objects)))
        agent = run_agent(agent_yaml(tmp_path, server, server.create_key("writer"), source))
        try:
            wait_count(server, len(tally.acknowledged), timeout=60)
            time.sleep(1.0)  # a few more polls: nothing may come twice
            tally.saw(traces_in_store(server))
        finally:
            stop(agent)
    tally.report()
