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
