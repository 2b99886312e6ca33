"""House rules that keep the agent deployable on its own: it never imports the server or the sdk."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

AGENT = Path(__file__).resolve().parents[2] / "src" / "logharbor" / "agent"
FORBIDDEN = ("logharbor.server", "logharbor.sdk")


def test_no_agent_module_imports_the_server_or_the_sdk() -> None:
    for path in sorted(AGENT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(FORBIDDEN), f"{path}: imports {name}"


def test_running_the_agent_loads_neither() -> None:
    code = ("import sys, logharbor.agent.pipeline, logharbor.agent.config as c; "
            "c.agent_config_model(); "
            "bad = [m for m in sys.modules if m.startswith(('logharbor.server', 'logharbor.sdk'))]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
