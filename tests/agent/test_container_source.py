"""The ``container`` source as a real agent process shipping to the counting receiver: CRI and
Docker json-file framing with partial lines, stack traces, the kubelet's rotation (rename, then
gzip), the Kubernetes metadata from file names and the downward-API environment."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.agent.conftest import ROOT, agent_metric, checkpoint_offsets, free_port, log_events, wait_for

from logharbor.agent.config import ConfigError, parse_config
from logharbor.agent.sources.container import path_metadata
from logharbor.record import parse_timestamp

CID = "3f" * 32
DOCKER_ID = "c0ffee" + "0" * 58


def kube_layout(root: Path, ns: str = "shop", pod: str = "checkout-7d9f", uid: str = "0b4c-11ef",
                container: str = "app", cid: str = CID) -> Path:
    """The kubelet's layout: the real file under pods/, a symlink to it under containers/."""
    real = root / "pods" / f"{ns}_{pod}_{uid}" / container / "0.log"
    real.parent.mkdir(parents=True)
    real.touch()
    (root / "containers").mkdir(exist_ok=True)
    (root / "containers" / f"{pod}_{ns}_{container}-{cid}.log").symlink_to(real)
    return real


def agent_cfg(tmp: Path, url: str, **source: Any) -> dict[str, Any]:
    """One container source ``k8s``; the agent serves /metrics on ``cfg["metrics"]["port"]``."""
    src: dict[str, Any] = {"type": "container", "include": [str(tmp / "containers" / "*.log")],
                           "poll_interval_secs": 0.05, "glob_interval_secs": 0.1, "rotated_idle_secs": 0.5,
                           "checkpoint_interval_secs": 0.1, "partial_timeout_secs": 1.0}
    src.update(source)
    return {"data_dir": str(tmp / "state"), "metrics": {"port": free_port()},
            "sources": {"k8s": src},
            "sinks": {"srv": {"type": "logharbor", "url": url, "compression": "none",
                              "batch": {"timeout_secs": 0.1}}}}


def cri(text: str, stream: str = "stdout", tag: str = "F", second: int = 0) -> str:
    return f"2026-11-25T04:00:{second:02d}.123456789Z {stream} {tag} {text}\n"


def append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def messages(records: list[dict[str, Any]]) -> list[str]:
    return [r.get("message", r.get("msg")) for r in records]


def read_to_end(cfg: dict[str, Any], *paths: Path) -> bool:
    """Wait until the agent has read every byte of ``paths`` (its bytes_read counter), so what is
    appended next arrives in a later read."""
    size = sum(p.stat().st_size for p in paths)
    return wait_for(lambda: agent_metric(cfg["metrics"]["port"], "logharbor_agent_bytes_read_total",
                                         source="k8s") >= size, 30)


def test_cri_partials_stack_traces_metadata_and_downward_env(tmp_path: Path, receiver_factory, agent_factory,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    real = kube_layout(tmp_path)
    monkeypatch.setenv("NODE_NAME", "node-a")
    monkeypatch.setenv("POD_NAME", "logharbor-agent-x1")
    r = receiver_factory()
    cfg = agent_cfg(tmp_path, r.url, parser="json", multiline={"preset": "java", "timeout": 0.5},
                    env_vars={"host": "NODE_NAME", "kubernetes.host": "NODE_NAME", "agent_pod": "POD_NAME"})
    agent = agent_factory(cfg)
    trace = ["java.lang.IllegalStateException: boom", "\tat shop.Checkout.pay(Checkout.java:42)",
             "\tat shop.Main.main(Main.java:7)"]
    append(real, cri('{"level":"info","msg":"started","order_id":"o-1"}', second=1)
           + cri("payment failed", "stderr", second=2)
           + cri(trace[0], "stderr", second=2)
           + cri("interleaved on stdout", second=3)
           + cri("\tat shop.Checkout.pay(", "stderr", "P", second=3))
    assert read_to_end(cfg, real), agent.log()  # the rest of a partial line arrives in a later read
    append(real, cri("Checkout.java:42)", "stderr", "F", second=3)
           + cri(trace[2], "stderr", second=3)
           + "this line is not CRI\n"
           + cri('{"level":"warn","msg":"big ' + "x" * 40, "stdout", "P", second=4)
           + cri("y" * 40, "stdout", "P", second=4)
           + cri('z"}', "stdout", "F", second=4)
           + cri("next event", "stderr", second=5))
    assert wait_for(lambda: len(r.records()) >= 6, 30), agent.log()
    assert agent.stop() == 0  # drains: a record sent twice or late is in the file now
    recs = r.records()
    by_msg = {str(m): rec for m, rec in zip(messages(recs), recs, strict=True)}
    trace.insert(0, "payment failed")  # the java preset joins an exception header to the line above
    assert set(by_msg) == {"started", "\n".join(trace), "interleaved on stdout",
                           "this line is not CRI", "big " + "x" * 40 + "y" * 40 + "z", "next event"}, recs
    started = by_msg["started"]
    assert started["level"] == "info" and started["order_id"] == "o-1" and started["stream"] == "stdout"
    assert started["timestamp"] == parse_timestamp("2026-11-25T04:00:01.123456789Z")
    assert started["kubernetes"] == {"pod_name": "checkout-7d9f", "namespace_name": "shop",
                                     "container_name": "app", "container_id": CID, "pod_uid": "0b4c-11ef",
                                     "host": "node-a"}
    assert started["host"] == "node-a" and started["agent_pod"] == "logharbor-agent-x1"
    assert started["source"] == "container" and started["service"] == "app"  # the container's name
    stack = by_msg["\n".join(trace)]
    assert stack["stream"] == "stderr" and "parse_error" in stack  # not JSON: kept whole
    assert stack["timestamp"] == parse_timestamp("2026-11-25T04:00:02.123456789Z")  # its first line's
    assert by_msg["this line is not CRI"]["parse_error"] == "neither a CRI nor a Docker json-file log line"
    assert by_msg["big " + "x" * 40 + "y" * 40 + "z"]["level"] == "warn"


def test_docker_json_file_partials_across_reads_and_restart(tmp_path: Path, receiver_factory,
                                                            agent_factory) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "docker" / DOCKER_ID / f"{DOCKER_ID}-json.log"
    log.parent.mkdir(parents=True)
    log.touch()
    r = receiver_factory()
    cfg = agent_cfg(tmp_path, r.url, include=[str(tmp_path / "docker" / "*" / "*-json.log")], format="docker",
                    env_vars={})

    def entry(text: str, stream: str = "stdout") -> str:
        return json.dumps({"log": text, "stream": stream, "time": "2026-11-25T04:00:00.5Z"}) + "\n"

    agent = agent_factory(cfg)
    append(log, entry("first\n") + entry("a long line, part 1 ") + entry("oops\n", "stderr"))
    assert read_to_end(cfg, log), agent.log()
    append(log, entry("part 2\n") + "not json at all\n")
    assert wait_for(lambda: len(r.records()) >= 4, 30), agent.log()
    assert agent.stop() == 0
    recs = r.records()
    assert sorted(messages(recs)) == sorted(["first", "a long line, part 1 part 2", "oops", "not json at all"])
    joined = next(x for x in recs if x["message"].startswith("a long"))
    assert joined["stream"] == "stdout" and joined["kubernetes"] == {"container_id": DOCKER_ID}
    assert joined["timestamp"] == parse_timestamp("2026-11-25T04:00:00.5Z")
    bad = next(x for x in recs if x["message"] == "not json at all")
    assert bad["parse_error"] == "not a Docker json-file log line"
    # after a clean restart nothing is sent again; a partial left open at the stop is joined after
    append(log, entry("after restart, ") + entry("joined\n"))
    agent2 = agent_factory(cfg, name="agent2")
    assert wait_for(lambda: len(r.records()) >= 5, 30), agent2.log()
    assert agent2.stop() == 0  # drains: a record sent twice is in the file now
    assert sorted(messages(r.records())) == sorted(
        ["first", "a long line, part 1 part 2", "oops", "not json at all", "after restart, joined"])


def test_kill9_with_a_partial_line_held_loses_nothing(tmp_path: Path, receiver_factory,
                                                      agent_factory) -> None:  # type: ignore[no-untyped-def]
    real = kube_layout(tmp_path)
    r = receiver_factory()
    cfg = agent_cfg(tmp_path, r.url, partial_timeout_secs=60)
    agent = agent_factory(cfg)
    append(real, cri("done 1") + cri("held part 1 ", tag="P"))
    assert wait_for(lambda: len(r.records()) >= 1, 30), agent.log()
    # a checkpoint written while the part is held must stay before it (at the end of "done 1")
    done1 = len(cri("done 1").encode())
    assert wait_for(lambda: list(checkpoint_offsets(tmp_path / "state", "k8s").values()) == [done1], 30)
    agent.kill9()
    append(real, cri("and its end") + cri("done 2"))
    agent2 = agent_factory(cfg, name="agent2")
    assert wait_for(lambda: len(r.records()) >= 3, 30), agent2.log()
    assert agent2.stop() == 0  # drains: a record sent twice is in the file now
    got = messages(r.records())
    assert got.count("held part 1 and its end") == 1 and got.count("done 2") == 1
    assert got.count("done 1") in (1, 2)  # at least once: it may be sent again after kill -9


def test_kubelet_rotation_rename_then_gzip_and_new_files(tmp_path: Path, receiver_factory,
                                                         agent_factory) -> None:  # type: ignore[no-untyped-def]
    real = kube_layout(tmp_path)
    r = receiver_factory()
    cfg = agent_cfg(tmp_path, r.url)
    agent = agent_factory(cfg)
    append(real, "".join(cri(f"before {i}") for i in range(200)))
    assert wait_for(lambda: len(r.records()) >= 100, 30), agent.log()
    # kubelet: rename 0.log to 0.log.<time>, the runtime reopens 0.log, later the old one is gzip'd
    rotated = real.with_name("0.log.20261125-040000")
    os.rename(real, rotated)
    real.touch()
    append(rotated, "".join(cri(f"late {i}") for i in range(20)))  # written before the reopen
    append(real, "".join(cri(f"after {i}") for i in range(200)))
    # the rotated file is read to its end and let go (rotated_idle_secs)
    assert wait_for(lambda: log_events(agent, "file closed"), 30), agent.log()
    with rotated.open("rb") as src, gzip.open(f"{rotated}.gz", "wb") as dst:
        shutil.copyfileobj(src, dst)
    rotated.unlink()
    # a pod started while the agent runs: discovered by the glob, read from its start
    other = kube_layout(tmp_path, ns="ops", pod="cron-1", uid="77aa", container="job", cid="ab" * 32)
    append(other, cri("new pod line"))
    # the new pod is found by a look made after the .gz existed: a second read of it would be sent
    assert wait_for(lambda: len(r.records()) >= 421, 30), agent.log()
    assert agent.stop() == 0  # drains
    got = messages(r.records())
    want = ([f"before {i}" for i in range(200)] + [f"late {i}" for i in range(20)]
            + [f"after {i}" for i in range(200)] + ["new pod line"])
    assert sorted(got) == sorted(want)  # each exactly once: the .gz copy is not read again
    job = next(x for x in r.records() if x["message"] == "new pod line")
    assert job["kubernetes"]["namespace_name"] == "ops" and job["kubernetes"]["container_id"] == "ab" * 32


def test_path_metadata_of_every_layout() -> None:
    assert path_metadata(f"/var/log/containers/web-1_default_nginx-{CID}.log") == {
        "pod_name": "web-1", "namespace_name": "default", "container_name": "nginx", "container_id": CID}
    assert path_metadata("/var/log/pods/kube-system_coredns-5d_9a1b-22/coredns/3.log.20261125-040000.gz") == {
        "namespace_name": "kube-system", "pod_name": "coredns-5d", "pod_uid": "9a1b-22", "container_name": "coredns"}
    assert path_metadata(f"/var/lib/docker/containers/{DOCKER_ID}/{DOCKER_ID}-json.log.1") == {
        "container_id": DOCKER_ID}
    assert path_metadata("/var/log/app.log") == {}


@pytest.mark.parametrize(("source", "key", "reason"), [
    ({"format": "json"}, "sources.c.format", "'auto', 'cri' or 'docker'"),
    ({"parser": "nginxx"}, "sources.c", "unknown parser 'nginxx'"),
    ({"multiline": {"cri": True}}, "sources.c", "decodes CRI and Docker framing itself"),
    ({"multiline": {"preset": "cobol"}}, "sources.c", "preset"),
])
def test_bad_options_are_named(source: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"sources": {"c": {"type": "container", **source}}, "sinks": {"s": {"type": "stdout"}}})
    assert key in str(err.value) and reason in str(err.value)


def test_rotation_while_the_agent_is_down_is_found_in_the_pods_directory(
        tmp_path: Path, receiver_factory, agent_factory) -> None:  # type: ignore[no-untyped-def]
    """The checkpoint keeps the real path (under pods/), so a file the kubelet renamed while the agent
    was stopped is found beside it — the symlink under containers/ only ever shows the new one."""
    real = kube_layout(tmp_path)
    r = receiver_factory()
    cfg = agent_cfg(tmp_path, r.url)
    agent = agent_factory(cfg)
    append(real, "".join(cri(f"one {i}") for i in range(50)))
    assert wait_for(lambda: len(r.records()) >= 50, 30), agent.log()
    assert agent.stop() == 0
    append(real, "".join(cri(f"unread {i}") for i in range(30)))  # written while the agent is down
    os.rename(real, real.with_name("0.log.20261125-041500"))
    real.touch()
    append(real, "".join(cri(f"two {i}") for i in range(40)))
    agent2 = agent_factory(cfg, name="agent2")
    assert wait_for(lambda: len(r.records()) >= 120, 30), agent2.log()
    assert agent2.stop() == 0  # drains: a record sent twice is in the file now
    want = [f"one {i}" for i in range(50)] + [f"unread {i}" for i in range(30)] + [f"two {i}" for i in range(40)]
    assert sorted(messages(r.records())) == sorted(want)


def test_the_daemonset_config_runs_as_shipped(tmp_path: Path, receiver_factory, agent_factory,
                                              monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """The agent.yaml of deploy/kubernetes, with only its paths and URL pointed at this test, ships
    container lines with their metadata and serves the /metrics the liveness probe reads."""
    docs = yaml.safe_load_all((ROOT / "deploy" / "kubernetes" / "agent-daemonset.yaml").read_text())
    cfg = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["agent.yaml"])
    r = receiver_factory()
    port = free_port()
    cfg["data_dir"] = str(tmp_path / "state")
    cfg["metrics"] = {"address": "127.0.0.1", "port": port}
    (src,) = cfg["sources"].values()
    src["include"] = [str(tmp_path / "containers" / "*.log")]
    cfg["sinks"]["server"]["url"] = r.url
    monkeypatch.setenv("NODE_NAME", "node-b")
    monkeypatch.setenv("LOGHARBOR_API_KEY", "lh_test")
    real = kube_layout(tmp_path, ns="shop", pod="web-0", container="nginx")
    agent = agent_factory(cfg)
    append(real, cri("GET / 200") + cri("mail me at jane@example.com"))
    assert wait_for(lambda: len(r.records()) >= 2, 30), agent.log()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        assert resp.status == 200 and b"logharbor_agent_lines_read" in resp.read()
    assert agent.stop() == 0
    recs = {x["message"]: x for x in r.records()}
    assert recs["GET / 200"]["kubernetes"]["pod_name"] == "web-0"
    assert recs["GET / 200"]["host"] == "node-b" and recs["GET / 200"]["service"] == "nginx"
    assert any("jane@example.com" not in m and "mail me at" in m for m in recs)  # the redact step ran


def test_docker_json_file_service_from_the_containers_config(tmp_path: Path, receiver_factory,
                                                             agent_factory) -> None:  # type: ignore[no-untyped-def]
    """Docker's json-file path holds only the container's id: its name and Compose service come from
    ``config.v2.json`` beside the log (as Docker writes it, abridged), so records are not 'unknown'."""
    other = "d00d" + "1" * 60
    composed = {"ID": DOCKER_ID, "Name": "/shop-web-1", "Path": "nginx",
                "Config": {"Image": "nginx:1.27", "Labels": {"com.docker.compose.project": "shop",
                                                              "com.docker.compose.service": "web"}}}
    plain = {"ID": other, "Name": "/billing", "Config": {"Image": "billing:2", "Labels": {}}}
    for cid, config in ((DOCKER_ID, composed), (other, plain), ("e" * 64, None)):
        folder = tmp_path / "docker" / cid
        folder.mkdir(parents=True)
        if config is not None:
            (folder / "config.v2.json").write_text(json.dumps(config))
        line = {"log": f"hello from {cid[:4]}\n", "stream": "stdout", "time": "2026-11-25T04:00:00.5Z"}
        (folder / f"{cid}-json.log").write_text(json.dumps(line) + "\n")
    (tmp_path / "docker" / other / f"{other}-json.log").open("a").write(
        json.dumps({"log": '{"service": "own", "msg": "its own service wins"}\n', "stream": "stdout",
                    "time": "2026-11-25T04:00:01Z"}) + "\n")
    r = receiver_factory()
    cfg = agent_cfg(tmp_path, r.url, include=[str(tmp_path / "docker" / "*" / "*-json.log")], format="docker",
                    env_vars={}, parser="json")
    agent = agent_factory(cfg)
    assert wait_for(lambda: len(r.records()) >= 4, 30), agent.log()
    assert agent.stop() == 0
    recs = {x.get("message") or x.get("msg"): x for x in r.records()}
    web = recs[f"hello from {DOCKER_ID[:4]}"]
    assert web["service"] == "web" and web["kubernetes"] == {"container_id": DOCKER_ID,
                                                              "container_name": "shop-web-1"}
    assert recs[f"hello from {other[:4]}"]["service"] == "billing"
    assert recs["its own service wins"]["service"] == "own"
    assert "service" not in recs[f"hello from {'e' * 4}"]  # no config readable: the server says unknown
