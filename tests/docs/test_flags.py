"""Every ``logharbor`` command written in README.md and docs/ names only subcommands and flags
that its real ``--help`` has, and the retention settings table names real flags and real
``ServerConfig`` fields (issue #26 item 13: docs/retention.md said the server had no flags for
settings its ``--help`` listed)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from tests.conftest import ROOT

from logharbor.cli.main import app
from logharbor.server.config import ServerConfig

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ROOT_COMMAND = typer.main.get_command(app)
_CODE_BLOCK = re.compile(r"```(console|bash|sh|shell)\n(.*?)```", re.S)
_INLINE = re.compile(r"`((?:\.venv/bin/)?logharbor [^`]+)`")


def _commands(text: str) -> Iterator[str]:
    """Command lines of shell blocks (in a console block, those after ``$``; continuations
    joined), and inline `logharbor …` spans; output and diagrams are not commands."""
    for lang, block in _CODE_BLOCK.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip()
            if lang == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            for part in re.split(r"\s(?:&&|\|\|?|;)\s", line):
                part = part.strip()
                if re.match(r"(?:\S*/)?logharbor ", part):
                    yield part
    for span in _INLINE.findall(text):
        if not span.split()[1].endswith(":"):  # `logharbor server: …` is a message it prints
            yield span


def cases() -> Iterator[tuple[str, str]]:
    for path in DOCS:
        seen: set[str] = set()
        for command in _commands(path.read_text(encoding="utf-8")):
            if command not in seen:
                seen.add(command)
                yield path.name, command


def _options(command: Any) -> set[str]:
    names = {"--help", "-h"}
    for param in command.params:
        if param.param_type_name == "option":  # typer carries its own copy of click
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


@pytest.mark.parametrize(("doc", "line"), list(cases()), ids=lambda v: v[:70])
def test_documented_command_exists(doc: str, line: str) -> None:
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # an unbalanced quote inside prose: take the words before it
        words = line.split()
    words = [w for w in words[1:] if w not in ("&",)]
    command: Any = ROOT_COMMAND
    path = ["logharbor"]
    while hasattr(command, "commands") and words and not words[0].startswith("-"):
        if "…" in words[0] or words[0] in ("...", "|"):
            return  # an elided command (`logharbor …`)
        assert words[0] in command.commands, f"{doc}: `{line}`: no command {' '.join([*path, words[0]])}"
        path.append(words[0])
        command = command.commands[words[0]]
        words = words[1:]
    known = _options(command)
    if command is ROOT_COMMAND:
        known |= {"--version", "-V"}
    for word in words:
        if not word.startswith("-") or word in ("-", "--") or "…" in word:
            continue
        flag = word.split("=", 1)[0]
        if re.fullmatch(r"-[a-zA-Z]{2,}", flag):  # -qn: short flags together
            assert all(f"-{c}" in known for c in flag[1:]), f"{doc}: `{line}`: {flag}"
            continue
        assert flag in known, f"{doc}: `{line}`: {' '.join(path)} has no {flag}"


def test_retention_settings_table_matches_the_server() -> None:
    text = (ROOT / "docs" / "retention.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(--[a-z-]+)` \| `([a-z_]+)` \|", text, re.M)
    assert len(rows) == 5, rows
    server_flags = _options(ROOT_COMMAND.commands["server"])  # type: ignore[attr-defined]
    for flag, field in rows:
        assert flag in server_flags, flag
        assert field in ServerConfig.model_fields, field
    assert "does not have command-line flags" not in text


def test_the_scan_finds_commands() -> None:
    found = list(cases())
    assert len(found) >= 30 and any("logharbor query" in line for _, line in found)
    assert Path(ROOT / "docs" / "retention.md").name in {doc for doc, _ in found}
