"""docs/ui.md says what the UI does: pages, shortcuts, headers, files and commands are checked here."""

from __future__ import annotations

import json
import re
import subprocess

from tests.conftest import ROOT

from logharbor.server.ui import SECURITY_HEADERS

DOC = (ROOT / "docs" / "ui.md").read_text()
UI = ROOT / "ui"
SOURCES = "\n".join(p.read_text() for p in sorted((UI / "src").rglob("*.ts")))


def section(title: str) -> str:
    start = DOC.index(f"## {title}")
    end = DOC.find("\n## ", start + 3)
    return DOC[start:end if end > 0 else None]


def test_every_page_of_the_app_is_documented() -> None:
    pages = re.findall(r'path: "(/ui/[a-z]+)"', (UI / "src" / "main.ts").read_text())
    assert {"/ui/search", "/ui/tail", "/ui/trace", "/ui/services", "/ui/dashboards", "/ui/alerts"} <= set(pages)
    for page in pages:
        assert f"— `{page}" in DOC, f"{page} has no section in docs/ui.md"


def test_documented_shortcuts_are_the_ones_handled() -> None:
    keys = set()
    for row in section("Keyboard shortcuts").splitlines()[4:]:
        if row.startswith("|"):
            keys.update(re.findall(r"`([^`]+)`", row.split("|")[1]))
    assert {"/", "Enter", "Escape", "Space"} <= keys
    for key in keys:
        literal = '" "' if key == "Space" else json.dumps(key)
        assert f"ev.key === {literal}" in SOURCES, f"shortcut {key} is documented but not handled"
    handled = set(re.findall(r'ev\.key === "([^"]+)"', SOURCES))
    assert handled - {" "} <= keys, f"handled but not documented: {handled - keys - {' '}}"


def test_documented_headers_are_the_ones_sent() -> None:
    rows = re.findall(r"^\| `([A-Za-z-]+)` \| `(.+)` \|$", section("How it is served"), re.M)
    assert dict(rows) == SECURITY_HEADERS


def test_documented_files_and_commands_exist() -> None:
    for path in re.findall(r"`(ui/[\w./*-]+)`", DOC):
        matches = list(ROOT.glob(path)) if "*" in path else [ROOT / path]
        assert matches and all(m.exists() for m in matches), path
    scripts = json.loads((UI / "package.json").read_text())["scripts"]
    for name in re.findall(r"npm run (\w+)", DOC):
        assert name in scripts, f"npm run {name} is documented but package.json has no such script"
    install = (ROOT / "scripts" / "install.sh").read_text()
    assert "npm ci" in install and "npm run build" in install


def test_package_versions_are_exact() -> None:
    package = json.loads((UI / "package.json").read_text())
    for deps in (package.get("dependencies", {}), package.get("devDependencies", {})):
        for name, version in deps.items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} is not pinned: {version}"
    lock = json.loads((UI / "package-lock.json").read_text())
    assert lock["packages"][""]["dependencies"] == package["dependencies"]


def test_typescript_type_checks() -> None:
    tsc = UI / "node_modules" / ".bin" / "tsc"
    assert tsc.exists(), "run scripts/install.sh (npm ci in ui/) first"
    result = subprocess.run([str(tsc), "--noEmit", "-p", str(UI)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ui_unit_tests_pass() -> None:
    """vitest: the query-text helpers (pipes, filters, highlighting, suggestions, times) in node."""
    vitest = UI / "node_modules" / ".bin" / "vitest"
    assert vitest.exists(), "run scripts/install.sh (npm ci in ui/) first"
    result = subprocess.run([str(vitest), "run", "--root", str(UI)], capture_output=True, text=True,
                            timeout=180, cwd=UI)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
