"""Config validation: every mistake is reported with file, key and reason; the docs' examples pass."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from logharbor.agent.config import ConfigError, load_config
from logharbor.agent.registry import SINKS, SOURCES, TRANSFORMS

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "agent.md"


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "logharbor.agent", "-c", str(path), "--check"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.mark.slow
def test_every_yaml_example_in_the_docs_passes_check(tmp_path: Path) -> None:
    examples = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(examples) >= 3
    for i, text in enumerate(examples):
        path = tmp_path / f"example{i}.yaml"
        path.write_text(text)
        result = check(path)
        assert result.returncode == 0, f"example {i}:\n{text}\n{result.stderr}"
        assert "ok" in result.stdout


def test_every_registered_kind_is_documented() -> None:
    text = DOC.read_text()
    for kind in (*SOURCES, *TRANSFORMS, *SINKS):
        assert f"`{kind}`" in text, kind


def test_every_option_of_every_kind_is_named_in_the_docs() -> None:
    text = DOC.read_text()
    missing = [f"{kind}.{name}" for registry in (SOURCES, TRANSFORMS, SINKS) for kind, k in registry.items()
               for name in k.Config.model_fields if f"`{name}`" not in text and f"`{name}." not in text]
    assert not missing, f"options not in docs/agent.md: {missing}"


@pytest.mark.parametrize(("yaml_text", "key", "reason"), [
    ("sources: {a: {type: file, include: [x]}}\nsinks: {s: {type: stdout, batchh: {}}}",
     "sinks.s.batchh", "Extra inputs are not permitted"),
    ("sources: {a: {type: file, include: [x]}}\nsinks: {s: {type: logharbor, url: 'ftp://x'}}",
     "sinks.s.url", "http:// or https://"),
    ("sources: {a: {type: file, include: [x], start_at: middle}}\nsinks: {s: {type: stdout}}",
     "sources.a.start_at", "'beginning' or 'end'"),
    ("sources: {a: {type: filez}}\nsinks: {s: {type: stdout}}", "sources.a", "filez"),
    ("sources: {a: {type: file, include: [x]}}\ntransforms: [{type: grep, include: {message: '(['}}]\n"
     "sinks: {s: {type: stdout}}", "transforms.0.include", "does not compile"),
    ("sources: {a: {type: file, include: [x], parser: {type: nginx, formatt: combined}}}\n"
     "sinks: {s: {type: stdout}}", "sources.a.parser", "formatt"),
    ("sources: {a: {type: file, include: [x], parser: nginxx}}\nsinks: {s: {type: stdout}}",
     "sources.a.parser", "unknown parser 'nginxx'"),
    ("sources: {a: {type: file, include: [x]}}\ntransforms: [{type: redact, rules: [nope]}]\n"
     "sinks: {s: {type: stdout}}", "transforms.0", "unknown redaction rule"),
    ("sources: {a: {type: file, include: [x]}}\ntransforms: [{type: sample, rates: {LOUD: 0.5}}]\n"
     "sinks: {s: {type: stdout}}", "transforms.0", "unknown level"),
    ("sources: {a: {type: file, include: [x]}}\nsinks: {}", "sinks", "at least 1"),
    ("sources: {a: {type: file, include: [x]}}\nsinks: {s: {type: stdout}}\n  bad: [", "line", "invalid YAML"),
])
def test_errors_name_the_file_the_key_and_the_reason(tmp_path: Path, yaml_text: str, key: str,
                                                      reason: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert key in message and reason in message, message


def test_check_command_exits_2_with_the_message(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("sources: {a: {type: file, include: [x]}}\nsinks: {s: {type: stdout, concurrency: 0}}")
    result = check(path)
    assert result.returncode == 2
    assert f"{path}: sinks.s.concurrency:" in result.stderr


def test_a_metrics_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        path = tmp_path / "agent.yaml"
        path.write_text(f"data_dir: {tmp_path / 'data'}\nmetrics: {{port: {port}}}\n"
                        f"sources: {{a: {{type: file, include: ['{tmp_path}/*.log']}}}}\n"
                        "sinks: {s: {type: stdout}}\n")
        result = subprocess.run([sys.executable, "-m", "logharbor.agent", "-c", str(path)],
                                capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 2
    assert f"{path}: metrics: cannot listen on 127.0.0.1:{port}" in result.stderr
