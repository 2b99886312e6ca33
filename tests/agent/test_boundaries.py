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


def _module_imports() -> dict[str, set[str]]:
    """Each agent module's imports of other agent modules at module level (``TYPE_CHECKING``
    blocks included: a cycle there is still two files that cannot be read apart)."""
    src = AGENT.parent.parent
    mods = {".".join(p.relative_to(src).with_suffix("").parts).removesuffix(".__init__"): p
            for p in AGENT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        for node in ast.parse(path.read_text()).body:
            for n in node.body if isinstance(node, ast.If) else [node]:
                if isinstance(n, ast.Import):
                    deps.update(a.name for a in n.names)
                elif isinstance(n, ast.ImportFrom) and n.module:
                    deps.add(n.module)
                    deps.update(f"{n.module}.{a.name}" for a in n.names)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_new_import_cycle_in_the_agent() -> None:
    """types.py ↔ buffer.py was one (issue #23): the Buffer protocol lives in types.py now. The
    one left is listed (the file source and its watcher, typed against each other); it may only go."""
    known = [{"logharbor.agent.sources.file", "logharbor.agent.sources.file_watch"}]
    cycles = _cycles(_module_imports())
    assert all(c in known for c in cycles), cycles
    graph = _module_imports()
    assert graph["logharbor.agent.types"] == set()  # the vocabulary depends on nothing of the agent
