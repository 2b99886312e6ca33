"""ALB log objects delivered late and out of key order, to an S3 API server (moto) and to a folder.

Fault: ALB keys sort by load balancer, then 5-minute slot, then node address, and nodes deliver
late. A source that lists only keys after the last one it read (``StartAfter``) never reads an
object that sorts below that point. Here a real agent process reads objects from a real S3 API
server and from a folder while they arrive in the worst order:

- another node's object for an older slot (sorts between objects already read);
- a second load balancer under the same prefix whose keys sort below the first one's;
- an object in yesterday's date folder, delivered after today's were read;
- an object made of two gzip members (``cat a.gz b.gz``);
- an identical object delivered again (must not be read twice);

with the agent killed (``kill -9``) and stopped (SIGTERM) between the deliveries, at points where
what it read was acknowledged. Every request line carries a unique trace id; the ids are read
back through the real query API: every object read exactly once (no loss, no duplicate).
"""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
from tests.agent.conftest import AgentProcess, moto_server, wait_for, write_config
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally

from logharbor.demo.traffic import TrafficGenerator, render

ACCOUNT = "123456789012"
REGION = "eu-west-1"
ROOT = f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/"
SHOP = "app.shop.50dc6c495c0c9188"
API = "app.api.0a1b2c3d4e5f6789"  # sorts below SHOP: every key of it sorts below every shop key


class Objects:
    """Builds ALB objects (gzip'd lines with unique trace ids) and remembers which ids each holds."""

    def __init__(self) -> None:
        self.gen = TrafficGenerator(20)
        self.ids: dict[str, set[str]] = {}
        self.bodies: dict[str, bytes] = {}

    def make(self, lb: str, slot: datetime, node: str, lines: int = 40, members: int = 1) -> str:
        key = (f"{ROOT}{slot:%Y/%m/%d}/{ACCOUNT}_elasticloadbalancing_{REGION}_{lb}_{slot:%Y%m%dT%H%MZ}_"
               f"{node}_{len(self.ids):08x}.log.gz")
        stories = list(self.gen.stories(lines))
        text = [render(s)["alb"][0] + "\n" for s in stories]
        step = -(-len(text) // members)
        self.bodies[key] = b"".join(gzip.compress("".join(text[i:i + step]).encode())
                                    for i in range(0, len(text), step))
        self.ids[key] = {s.trace_id for s in stories}
        return key


def stored_ids(server: ServerProcess) -> list[str]:
    rows = server.query("source:alb | fields trace_id", limit=100_000, since="now-3d")["rows"]
    return [r["trace_id"] for r in rows]


@pytest.fixture(params=["s3", "folder"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dict[str, Any], Callable[[str, bytes], None]]]:
    """(the source's options, put(key, body)) for an S3 bucket on moto's server, or a folder."""
    if request.param == "folder":
        root = tmp_path / "alb"

        def put_file(key: str, body: bytes) -> None:
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name("." + path.name)  # written aside, renamed in: whole when it appears
            tmp.write_bytes(body)
            os.replace(tmp, path)

        yield {"path": str(root), "prefix": f"AWSLogs/{ACCOUNT}/"}, put_file
        return
    with moto_server() as url:
        s3 = boto3.client("s3", endpoint_url=url, region_name=REGION)
        s3.create_bucket(Bucket="lb-logs", CreateBucketConfiguration={"LocationConstraint": REGION})

        def put_object(key: str, body: bytes) -> None:
            s3.put_object(Bucket="lb-logs", Key=key, Body=body)

        # the prefix of the docs' own example
        yield {"bucket": "lb-logs", "prefix": ROOT, "endpoint_url": url, "region": REGION}, put_object


@pytest.mark.slow
def test_late_and_out_of_order_objects_are_each_read_exactly_once(
        tmp_path: Path, server: ServerProcess, place: tuple[dict[str, Any], Callable[[str, bytes], None]]) -> None:
    options, put = place
    kind = "folder" if "path" in options else "s3"
    cfg = write_config(tmp_path / "agent.yaml", {
        "data_dir": str(tmp_path / "agent-data"), "metrics": {"port": 0},
        # two days of date folders: the slot below is yesterday's when the test runs before 00:30 UTC,
        # and the "yesterday" object must then lie in the folder before the slot's
        "sources": {"lb": {"type": "alb", "poll_interval_s": 0.3, "lookback_hours": 48, **options}},
        "sinks": {"srv": {"type": "logharbor", "url": server.url, "api_key": server.create_key("writer"),
                          "batch": {"timeout_secs": 0.2}}}})
    log = tmp_path / "agent.log"
    checkpoint = tmp_path / "agent-data" / "lb.alb.json"
    objects = Objects()
    tally = Tally(f"alb objects late and out of key order ({kind})")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    slot = now - timedelta(minutes=now.minute % 5 + 30)  # a 5-minute slot half an hour ago
    delivered: list[str] = []

    def deliver(*keys: str) -> None:
        for key in keys:
            put(key, objects.bodies[key])
            if key not in delivered:
                delivered.append(key)
                tally.ack(objects.ids[key])

    def settled() -> bool:
        """Everything delivered so far is stored and checkpointed as read (nothing in flight)."""
        try:
            done = orjson.loads(checkpoint.read_bytes())["objects"]
        except (OSError, ValueError, KeyError):
            return False
        want = set().union(*(objects.ids[k] for k in delivered))
        return all(k in done for k in delivered) and set(stored_ids(server)) >= want

    agent = AgentProcess(cfg, log).start()
    try:
        a0 = objects.make(SHOP, slot, "10.0.0.5")
        a1 = objects.make(SHOP, slot + timedelta(minutes=5), "10.0.0.5")
        a2 = objects.make(SHOP, slot + timedelta(minutes=10), "10.0.0.5")
        deliver(a0, a1, a2)
        assert wait_for(settled, 60), log.read_text()[-3000:]
        agent.kill9()  # killed with everything read acknowledged

        late_node = objects.make(SHOP, slot, "10.0.0.9")  # another node, the oldest slot
        agent = AgentProcess(cfg, log).start()
        deliver(late_node)
        assert wait_for(settled, 60), log.read_text()[-3000:]
        second_lb = objects.make(API, slot + timedelta(minutes=15), "10.0.1.5")  # sorts below all of SHOP
        deliver(second_lb)
        assert wait_for(settled, 60), log.read_text()[-3000:]
        assert agent.stop() == 0  # a clean stop between deliveries

        yesterday = (slot - timedelta(days=1)).replace(hour=23, minute=55)  # the day before the slot's
        old_folder = objects.make(SHOP, yesterday, "10.0.0.5")  # yesterday's folder, after today's
        two_members = objects.make(SHOP, slot + timedelta(minutes=20), "10.0.0.7", lines=60, members=2)
        deliver(old_folder, two_members)
        agent = AgentProcess(cfg, log).start()
        assert wait_for(settled, 60), log.read_text()[-3000:]
        deliver(a0)  # the very same object delivered again
        agent.kill9()
        agent = AgentProcess(cfg, log).start()
        last = objects.make(SHOP, slot + timedelta(minutes=25), "10.0.0.5")
        deliver(last)
        assert wait_for(settled, 60), log.read_text()[-3000:]
        time.sleep(1.0)  # several more polls: nothing may be read twice
        assert agent.stop() == 0
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.proc.kill()
    tally.saw(stored_ids(server))
    late = [orjson.loads(x)["key"] for x in log.read_text().splitlines()
            if x.startswith("{") and "alb object discovered late" in x]
    tally.extra.update(objects=len(delivered), late_logged=len(late))
    tally.report()
    assert set(late) == {late_node, second_lb, old_folder}, late
