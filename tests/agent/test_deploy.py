"""deploy/ stays deployable: every Kubernetes manifest validates against the Kubernetes schemas
(``kubernetes_validate``, strict: an unknown field is an error), every agent.yaml it carries — and
every one in deploy/systemd and docs/deploy.md — passes ``logharbor agent --check``, and the
systemd units pass ``systemd-analyze verify`` and run a real CLI form."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils
from tests.cli.terminal import Run, in_process

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
SYSTEMD = ROOT / "deploy" / "systemd"
DOC = ROOT / "docs" / "deploy.md"
CLI = [str(Path(sys.executable).with_name("logharbor"))]  # the installed entry point
#: the newest Kubernetes version whose schemas the pinned kubernetes_validate bundles
K8S_VERSION = kv_utils.latest_version()


def documents() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in sorted(KUBE.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                out.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return out


def kind(name: str) -> list[dict[str, Any]]:
    return [doc for _, doc in documents() if doc["kind"] == name]


def check(path: Path) -> Run:
    """``logharbor agent -c PATH --check`` in this process (the installed command's own process is
    shown by ``test_cli_entry_point_is_what_the_units_and_images_run`` and the systemd units)."""
    return in_process("agent", "-c", str(path), "--check")


def test_cli_entry_point_is_what_the_units_and_images_run() -> None:
    result = subprocess.run([*CLI, "agent", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--config" in result.stdout and "--check" in result.stdout


@pytest.mark.parametrize(("name", "doc"), documents(), ids=[n for n, _ in documents()])
def test_every_manifest_is_valid_kubernetes(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_strict_validation_catches_a_typo() -> None:
    """The check above can fail: a misspelt field is refused."""
    ds = kind("DaemonSet")[0]
    bad = yaml.safe_load(yaml.safe_dump(ds))
    bad["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def agent_configs() -> list[tuple[str, str]]:
    """Every agent.yaml shipped: in ConfigMaps, in deploy/systemd, in docs/deploy.md."""
    out = [(f"configmap {cm['metadata']['name']}", cm["data"]["agent.yaml"]) for cm in kind("ConfigMap")
           if "agent.yaml" in cm.get("data", {})]
    out += [(str(p.relative_to(ROOT)), p.read_text()) for p in sorted(SYSTEMD.glob("*.yaml"))]
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    out += [(f"docs/deploy.md block {i}", b) for i, b in enumerate(blocks) if "sinks:" in b]
    return out


@pytest.mark.parametrize(("name", "text"), agent_configs(), ids=[n for n, _ in agent_configs()])
def test_every_shipped_agent_yaml_passes_check(name: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    result = check(path)
    assert result.code == 0, f"{name}:\n{result.err}"


def test_daemonset_mounts_env_and_limits_agree_with_its_config() -> None:
    (ds,) = kind("DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert volumes[mounts["/var/log"]["name"]]["hostPath"]["path"] == "/var/log"
    assert mounts["/var/log"]["readOnly"] is True
    # the command reads the ConfigMap's agent.yaml where it is mounted
    assert c["command"][:3] == ["logharbor", "agent", "-c"]
    conf_dir, conf_file = c["command"][3].rsplit("/", 1)
    cm_name = volumes[mounts[conf_dir]["name"]]["configMap"]["name"]
    (cm,) = [x for x in kind("ConfigMap") if x["metadata"]["name"] == cm_name]
    cfg = yaml.safe_load(cm["data"][conf_file])
    assert {s["type"] for s in cfg["sources"].values()} == {"container"}
    # checkpoints and the disk buffer live on the node, not in the container
    state = mounts[cfg["data_dir"]]
    assert "hostPath" in volumes[state["name"]] and not state.get("readOnly")
    env = {e["name"]: e.get("valueFrom", {}) for e in c["env"]}
    assert env["NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    key_env = cfg["sinks"]["server"]["api_key_env"]
    secret_ref = env[key_env]["secretKeyRef"]
    (secret,) = kind("Secret")
    assert secret["metadata"]["name"] == secret_ref["name"] and secret_ref["key"] in secret["stringData"]
    assert {"cpu", "memory"} <= set(c["resources"]["limits"]) and set(c["resources"]["requests"])
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    # the metrics port probed is the one the agent serves, on an address the kubelet can reach
    assert cfg["metrics"]["port"] == c["ports"][0]["containerPort"] and cfg["metrics"]["address"] == "0.0.0.0"
    assert pod["terminationGracePeriodSeconds"] > cfg["shutdown_timeout_secs"]
    (sa,) = kind("ServiceAccount")
    assert pod["serviceAccountName"] == sa["metadata"]["name"] and sa["automountServiceAccountToken"] is False


def test_sidecar_shares_the_log_volume_with_the_app() -> None:
    (pod,) = kind("Pod")
    spec = pod["spec"]
    (agent,) = spec["initContainers"]
    assert agent["restartPolicy"] == "Always"  # a native sidecar: up before the app, down after it
    (app,) = spec["containers"]
    shared = {m["name"] for m in agent["volumeMounts"]} & {m["name"] for m in app["volumeMounts"]}
    (logs,) = [v for v in spec["volumes"] if v["name"] in shared]
    assert "emptyDir" in logs
    conf_dir, conf_file = agent["command"][3].rsplit("/", 1)
    cm_vol = next(m["name"] for m in agent["volumeMounts"] if m["mountPath"] == conf_dir)
    cm_name = next(v["configMap"]["name"] for v in spec["volumes"] if v["name"] == cm_vol)
    (cm,) = [x for x in kind("ConfigMap") if x["metadata"]["name"] == cm_name]
    cfg = yaml.safe_load(cm["data"][conf_file])
    log_dir = next(m["mountPath"] for m in app["volumeMounts"] if m["name"] in shared)
    (src,) = cfg["sources"].values()
    assert src["type"] == "file" and all(p.startswith(log_dir + "/") for p in src["include"])
    assert cfg["data_dir"].startswith(log_dir + "/")  # checkpoints survive a restart of the sidecar


def exec_lines(unit: str, key: str) -> list[list[str]]:
    return [shlex.split(line.split("=", 1)[1]) for line in unit.splitlines() if line.startswith(f"{key}=")]


@pytest.mark.parametrize("name", ["logharbor-agent.service", "logharbor-server.service"])
def test_systemd_units(name: str, tmp_path: Path) -> None:
    text = (SYSTEMD / name).read_text()
    (start,) = exec_lines(text, "ExecStart")
    binary, args = start[0], start[1:]
    assert binary.endswith("/bin/logharbor")
    # the command line is a real CLI form: every option it passes is one the command knows
    help_text = subprocess.run([*CLI, args[0], "--help"], capture_output=True, text=True, timeout=120).stdout
    for arg in args[1:]:
        if arg.startswith("-"):
            assert arg in help_text, f"{name}: {args[0]} has no option {arg}"
    if args[0] == "agent":
        example = SYSTEMD / "agent.yaml"
        for cmd in (start, *exec_lines(text, "ExecStartPre")):
            real = [*CLI, *cmd[1:]]
            real[real.index("-c") + 1] = str(example)
            if "--check" not in real:
                real.append("--check")  # the same command line, validating only
            result = subprocess.run(real, capture_output=True, text=True, timeout=120, cwd=ROOT)
            assert result.returncode == 0, result.stderr
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        for key in ("User", "NoNewPrivileges", "ProtectSystem", "StateDirectory"):
            assert re.search(rf"^{key}=\S", text, re.M), f"{name}: no {key}="
        return
    local = tmp_path / name  # verify checks that ExecStart exists: point it at this checkout
    local.write_text(text.replace(binary, str(ROOT / ".venv" / "bin" / "logharbor")))
    result = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True, timeout=120)
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if name in line]
    assert result.returncode == 0 and not complaints, complaints
    sec = subprocess.run([analyze, "security", "--offline=true", str(local)], capture_output=True, text=True,
                         timeout=120)
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", sec.stdout + sec.stderr)
    if m is not None:  # systemd >= 250
        assert float(m[1]) <= 3.0, sec.stdout


def test_dockerfile_copies_what_exists_and_names_the_image_the_manifests_use() -> None:
    """No Docker daemon runs here, so the image is not built in tests; this keeps the Dockerfile
    from drifting: every path it copies from the repository exists, the UI stage copies from
    where vite writes, and the image name it documents is the one the manifests run."""
    text = (ROOT / "deploy" / "docker" / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            for src in line.split()[1:-1]:
                assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
    vite = (ROOT / "ui" / "vite.config.ts").read_text()
    out = re.search(r'outDir: fileURLToPath\(new URL\("\.\./([^"]+)"', vite)
    assert out is not None and f"COPY --from=ui /src/{out[1]} ./{out[1]}" in text
    images = {c["image"] for doc in kind("DaemonSet") + kind("Pod")
              for c in doc["spec"].get("template", doc)["spec"].get("containers", [])
              + doc["spec"].get("template", doc)["spec"].get("initContainers", [])
              if "logharbor" in c["image"]}
    assert images and all(f"-t {image} ." in text for image in images), images
