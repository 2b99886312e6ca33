"""docs/deploy.md and deploy/ agree (issue #26 item 13): the agent.yaml shown for each shape is
the one its ConfigMap carries, every Secret a manifest reads is created by the docs in that
manifest's namespace, every role named in docs/ or deploy/ exists, and the DaemonSet has a
readiness probe."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from tests.conftest import ROOT

from logharbor.server.meta.keys import ROLES

KUBE = ROOT / "deploy" / "kubernetes"
DOC = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    return [(path, doc) for path in sorted(KUBE.glob("*.yaml")) if "example" not in path.name
            for doc in yaml.safe_load_all(path.read_text()) if doc]


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] == "Pod":
        return doc["spec"]  # type: ignore[no-any-return]
    template = doc.get("spec", {}).get("template")
    return template["spec"] if template else None


def test_the_agent_yaml_shown_is_the_configmaps() -> None:
    shown = [block for block in re.findall(r"```yaml\n(.*?)```", DOC, re.S) if "sinks:" in block]
    configmaps = [doc["data"]["agent.yaml"] for _, doc in manifests() if doc["kind"] == "ConfigMap"]
    assert len(configmaps) == 2
    for config in configmaps:
        assert config in shown, config


def test_every_secret_read_is_created_where_it_is_read() -> None:
    created = set(re.findall(r"kubectl -n (\S+) create secret generic (\S+)", DOC))
    read: set[tuple[str, str]] = set()
    for _, doc in manifests():
        spec = _pod_spec(doc)
        if spec is None:
            continue
        namespace = doc["metadata"].get("namespace", "default")
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    read.add((namespace, ref["name"]))
    assert read and read <= created, (read, created)


def test_every_role_named_exists() -> None:
    texts = [*(ROOT / "docs").glob("*.md"), *(ROOT / "deploy").rglob("*.yaml"), ROOT / "README.md"]
    named = {(path.name, role) for path in texts
             for role in re.findall(r"--role[ =]([a-z]+)", path.read_text(encoding="utf-8"))}
    assert named, "no --role found"
    wrong = {(name, role) for name, role in named if role not in ROLES}
    assert not wrong, wrong


def test_the_daemonset_has_readiness_and_liveness() -> None:
    (daemonset,) = [doc for _, doc in manifests() if doc["kind"] == "DaemonSet"]
    (agent,) = daemonset["spec"]["template"]["spec"]["containers"]
    ports = {port["name"] for port in agent["ports"]}
    for probe in ("readinessProbe", "livenessProbe"):
        assert agent[probe]["httpGet"]["port"] in ports, probe


# --- the server tier (#26 item 12): deploy/kubernetes/server.yaml and deploy/docker-compose.yaml


def _server_options() -> set[str]:
    import typer

    from logharbor.cli.main import app

    command = typer.main.get_command(app).commands["server"]  # type: ignore[attr-defined]
    return {opt for p in command.params if p.param_type_name == "option" for opt in (*p.opts, *p.secondary_opts)}


def test_the_server_statefulset_keeps_its_wal_and_reads_its_urls_from_the_secret() -> None:
    docs = {(doc["kind"], doc["metadata"]["name"]): doc for path, doc in manifests() if path.name == "server.yaml"}
    sts = docs[("StatefulSet", "logharbor")]
    spec = sts["spec"]["template"]["spec"]
    (server,) = spec["containers"]
    args = server["args"]
    assert args[0] == "server"
    flags = [a for a in args if a.startswith("--")]
    assert set(flags) <= _server_options(), set(flags) - _server_options()
    data_dir = args[args.index("--data-dir") + 1]
    claims = {c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]}
    assert any(m["mountPath"] == data_dir and m["name"] in claims for m in server["volumeMounts"])
    env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in server["env"]}
    assert args[args.index("--store") + 1] == "$(LOGHARBOR_STORE)" and env["LOGHARBOR_STORE"]["key"] == "store"
    assert args[args.index("--meta") + 1] == "$(LOGHARBOR_META)" and env["LOGHARBOR_META"]["key"] == "meta"
    assert "--from-literal=store=" in DOC and "--from-literal=meta=" in DOC
    assert server["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert server["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert spec["terminationGracePeriodSeconds"] > float(args[args.index("--shutdown-timeout") + 1])
    labels = sts["spec"]["selector"]["matchLabels"]
    assert docs[("Service", "logharbor")]["spec"]["selector"] == labels
    assert docs[("PodDisruptionBudget", "logharbor")]["spec"]["selector"]["matchLabels"] == labels
    target = docs[("HorizontalPodAutoscaler", "logharbor")]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("StatefulSet", "logharbor")


COMPOSE = ROOT / "deploy" / "docker-compose.yaml"


def test_docker_compose_config_is_valid_and_wired() -> None:
    import shutil
    import subprocess

    import pytest

    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("Debian's docker-compose is not installed")
    done = subprocess.run([tool, "-f", str(COMPOSE), "config"], capture_output=True, text=True, timeout=120,
                          cwd=COMPOSE.parent, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    services = config["services"]
    assert set(services) == {"clickhouse", "postgres", "logharbor", "prometheus", "grafana"}
    command = services["logharbor"]["command"]
    flags = {c.split("=", 1)[0] for c in command if c.startswith("--")}
    assert flags <= _server_options(), flags - _server_options()
    args = dict(c.split("=", 1) for c in command if "=" in c)
    ch, pg = services["clickhouse"]["environment"], services["postgres"]["environment"]
    assert args["--store"] == (f"clickhouse://{ch['CLICKHOUSE_USER']}:{ch['CLICKHOUSE_PASSWORD']}"
                               f"@clickhouse:8123/{ch['CLICKHOUSE_DB']}")
    assert args["--meta"] == (f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}"
                              f"@postgres:5432/{pg['POSTGRES_DB']}")
    for name in ("grafana", "prometheus"):  # bind mounts of repository files exist (the key file is made)
        for volume in services[name]["volumes"]:
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if volume.get("type") == "bind" if isinstance(volume, dict) else source.startswith(("/", ".")):
                if "/secrets/" not in source:
                    assert Path(source).exists(), source
    datasources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/logharbor.yaml").read_text())
    assert any(d["type"] == "loki" for d in datasources["datasources"])
    assert services["grafana"]["environment"]["LOGHARBOR_URL"] == "http://logharbor:8080"
