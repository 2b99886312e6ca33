"""The shape of src/ as checks: no import cycle, and no import from a lower layer to a higher one.

The import graph is read with ``ast`` (nothing is imported): every ``import`` and ``from … import``
counts wherever it is written (module level, inside a function or a class), except under
``if TYPE_CHECKING:``, which never runs. ``from pkg import name`` is an edge to ``pkg.name`` when
that is a module of ours, else to ``pkg``. Python source in a string constant (a script a module
runs as ``python -c``) is read too: its imports count for the layer rules (that code is the
module's, in another process), not for cycles. A failure names the importing file, its line and
the imported module, so the fix starts from the message.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


@dataclass(frozen=True)
class Import:
    """One import statement's edge: ``importer`` (a module) imports ``target`` at ``path:line``."""

    importer: str
    target: str
    path: Path
    line: int
    script: bool = False  # written in a string the module runs as a separate process

    def __str__(self) -> str:
        where = " (in a script it runs)" if self.script else ""
        return f"{self.path.relative_to(SRC.parent)}:{self.line}: {self.importer} imports {self.target}{where}"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_modules() -> dict[str, Path]:
    return {module_name(p): p for p in SRC.rglob("*.py") if "dist" not in p.relative_to(SRC).parts}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(nodes: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement below ``nodes`` except the bodies of ``if TYPE_CHECKING:``."""
    for node in nodes:
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _statements(node.orelse)
            continue
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                yield from _statements([child])
            elif isinstance(child, ast.excepthandler | ast.match_case):
                yield from _statements(child.body)


def _scripts(tree: ast.Module) -> Iterator[tuple[int, ast.Module]]:
    """(line, parsed code) of each string constant that is Python importing logharbor."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "logharbor" in node.value:
            if re.search(r"^\s*(from|import)\s+logharbor", node.value, re.MULTILINE):
                try:
                    yield node.lineno, ast.parse(node.value)
                except SyntaxError:
                    continue


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    """The edges from module ``name`` to other modules under src/ (outside ones are dropped)."""
    tree = ast.parse(path.read_text(), str(path))
    yield from _edges(name, path, tree, modules)
    for line, script in _scripts(tree):
        for edge in _edges(name, path, script, modules):
            yield Import(name, edge.target, path, line + edge.line - 1, script=True)


def _edges(name: str, path: Path, tree: ast.Module, modules: dict[str, Path]) -> Iterator[Import]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in _statements(tree.body):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                for alias in node.names
            ]
        for target in dict.fromkeys(targets):
            while target and target not in modules:  # `import a.b.c` where c is a name: a.b
                target = target.rpartition(".")[0]
            if target and target != name:
                yield Import(name, target, path, node.lineno)


def import_graph() -> dict[str, list[Import]]:
    modules = our_modules()
    return {name: list(imports_of(name, path, modules)) for name, path in modules.items()}


def cycles(graph: dict[str, list[Import]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    graph = {m: [e for e in edges if not e.script] for m, edges in graph.items()}  # one process only
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(graph[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            for edge in edges:
                nxt = edge.target
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph[nxt])))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


GRAPH = import_graph()


def test_the_graph_sees_imports_everywhere_but_type_checking(tmp_path: Path) -> None:
    """The reader itself: function-level and relative imports count, TYPE_CHECKING ones do not."""
    code = (
        "from typing import TYPE_CHECKING\n"
        "from . import b\n"
        "if TYPE_CHECKING:\n    from .c import X\n"
        "def f():\n    try:\n        import pkg.d.name\n    except ImportError:\n        from .e import y\n"
    )
    modules = {name: tmp_path for name in ("pkg", "pkg.a", "pkg.b", "pkg.c", "pkg.d", "pkg.e")}
    path = tmp_path / "a.py"
    path.write_text(code)
    assert [i.target for i in imports_of("pkg.a", path, modules)] == ["pkg.b", "pkg.d", "pkg.e"]
    graph = {"x": [Import("x", "y", path, 1)], "y": [Import("y", "x", path, 1)], "z": []}
    assert cycles(graph) == [["x", "y"]]


def test_no_import_cycle_in_src() -> None:
    found = cycles(GRAPH)
    detail = []
    for component in found:
        members = set(component)
        detail.append(f"cycle of {len(component)}: " + ", ".join(component))
        detail += [f"  {e}" for m in component for e in GRAPH[m] if e.target in members and not e.script]
    assert not found, "import cycles in src/ (fix by concept, not by hiding the import):\n" + "\n".join(
        detail
    )


def _inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


SERVER = "logharbor.server"
ENGINE = "logharbor.server.engine"
HIGHER_THAN_ENGINE = ("logharbor.server.features", "logharbor.server.ingest", "logharbor.server.app")


def _violations(rule: Callable[[str, str], bool]) -> list[str]:
    return [str(edge) for edges in GRAPH.values() for edge in edges if rule(edge.importer, edge.target)]


LAYER_RULES = {
    "engine/ imports nothing from features/, ingest/ or app": lambda src, dst: _inside(src, ENGINE)
    and any(_inside(dst, higher) for higher in HIGHER_THAN_ENGINE),
    "nothing under server/ imports logharbor.cli": lambda src, dst: _inside(src, SERVER)
    and _inside(dst, "logharbor.cli"),
    "only cli and demo import logharbor.server from outside it": lambda src, dst: _inside(dst, SERVER)
    and not any(_inside(src, p) for p in (SERVER, "logharbor.cli", "logharbor.demo")),
    "sdk imports nothing from agent, server or cli": lambda src, dst: _inside(src, "logharbor.sdk")
    and any(_inside(dst, p) for p in ("logharbor.agent", SERVER, "logharbor.cli")),
    "agent imports nothing from server or cli": lambda src, dst: _inside(src, "logharbor.agent")
    and any(_inside(dst, p) for p in (SERVER, "logharbor.cli")),
    "the vocabulary (logharbor.types) imports nothing of logharbor": lambda src, dst: src == "logharbor.types",
}


@pytest.mark.parametrize("rule", list(LAYER_RULES))
def test_layer_rule(rule: str) -> None:
    found = _violations(LAYER_RULES[rule])
    assert not found, f"layer rule broken: {rule}\n" + "\n".join(found)


def test_layer_rules_can_fail() -> None:
    """Each rule catches the import it forbids (so a rule that matches nothing is noticed)."""
    forbidden = {
        "engine/ imports nothing from features/, ingest/ or app": (f"{ENGINE}.batcher", f"{SERVER}.app"),
        "nothing under server/ imports logharbor.cli": (f"{SERVER}.app", "logharbor.cli.main"),
        "only cli and demo import logharbor.server from outside it": ("logharbor.agent", SERVER),
        "sdk imports nothing from agent, server or cli": ("logharbor.sdk.testing", "logharbor.agent"),
        "agent imports nothing from server or cli": ("logharbor.agent.__main__", "logharbor.cli.agent"),
        "the vocabulary (logharbor.types) imports nothing of logharbor": ("logharbor.types", "logharbor.record"),
    }
    assert forbidden.keys() == LAYER_RULES.keys()
    for rule, (src, dst) in forbidden.items():
        assert LAYER_RULES[rule](src, dst), rule


UI = SRC.parent / "ui" / "src"
_UI_IMPORT = re.compile(r"""^\s*(?:import|export)\b[^;]*?\bfrom\s+["']([^"']+)["']""", re.MULTILINE)


def test_ui_components_import_no_page() -> None:
    """A component is used by pages; a page is never what a component is built from."""
    found = [f"{path.relative_to(SRC.parent)}: imports {target}"
             for path in sorted((UI / "components").glob("*.ts"))
             for target in _UI_IMPORT.findall(path.read_text())
             if (path.parent / target).resolve().is_relative_to(UI / "pages")]
    assert not found, "UI layer rule broken: components import no page\n" + "\n".join(found)
