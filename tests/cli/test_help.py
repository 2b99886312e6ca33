"""Every ``--help`` page, as people read it: ``-h`` works everywhere, flags read as flags (no
``<bool>``, no ``<str>``), no raw markup (``\\`\\`…\\`\\```), every option's help shown whole at 80
and 200 columns; and ``-h``, ``--version``, ``retention --help`` through a real terminal and a pipe."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from logharbor.cli.main import app, package_version

from .terminal import in_pipe, in_terminal

_TYPE_LABEL = re.compile(r"<(?:bool|str|int|float|path|int range|float range|datetime)>")
_BOX = re.compile(r"[│╭╮╰╯─]")


def commands() -> Iterator[tuple[list[str], object]]:
    root = typer.main.get_command(app)

    def walk(cmd: object, path: list[str]) -> Iterator[tuple[list[str], object]]:
        yield path, cmd
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            yield from walk(sub, [*path, name])

    yield from walk(root, [])


PATHS = [path for path, _ in commands()]


def squash(text: str) -> str:
    """The help text with box drawing and line breaks folded away (wrapped words rejoined)."""
    return " ".join(_BOX.sub(" ", text).split())


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "logharbor")
@pytest.mark.parametrize("width", [80, 200])
def test_every_help_page_reads_as_help(path: list[str], width: int) -> None:
    runner = CliRunner()
    long = runner.invoke(app, [*path, "--help"], env={"COLUMNS": str(width)})
    short = runner.invoke(app, [*path, "-h"], env={"COLUMNS": str(width)})
    assert long.exit_code == 0 and short.exit_code == 0, (long.output, short.output)
    assert long.output == short.output
    page = long.output
    assert all(len(line) <= width for line in page.splitlines())
    assert not _TYPE_LABEL.search(page), page
    assert "``" not in page and ":class:" not in page and ":func:" not in page, page
    assert "{" + "text}" not in page
    command = next(c for p, c in commands() if p == path)
    folded = squash(page)
    for param in command.params:  # type: ignore[attr-defined]
        help_text = getattr(param, "help", None)
        if getattr(param, "hidden", False) or not help_text:
            continue
        # each option's own words are on the page (rich markup would have eaten [..] parts)
        assert squash(help_text.replace("\\[", "[")) in folded, (param.name, help_text)
        names = param.opts if param.param_type_name == "option" else [param.metavar]  # type: ignore[attr-defined]
        for name in names:
            assert name in page


def test_flags_show_no_value_and_values_show_a_metavar() -> None:
    page = CliRunner().invoke(app, ["query", "--help"], env={"COLUMNS": "200"}).output
    flag = next(line for line in page.splitlines() if "--quiet" in line)
    assert re.search(r"--quiet\s+-q\s+no footer", flag), flag
    assert re.search(r"--since\s+DURATION\s", page) and re.search(r"--server\s+URL\s", page)
    assert "Usage: logharbor query [OPTIONS] QUERY" in page


@pytest.mark.parametrize("columns", [80, 200])
@pytest.mark.slow
def test_help_and_version_in_a_terminal_and_a_pipe(columns: int) -> None:
    version = package_version()
    for run in (in_terminal, in_pipe):
        top = run("-h", columns=columns)
        assert top.code == 0, top.out + top.err
        assert "Usage: python -m logharbor.cli.main [OPTIONS] COMMAND" in top.text
        assert "--version" in top.text and "<bool>" not in top.text
        assert all(len(line) <= columns for line in top.text.splitlines()), top.text
        shown = run("--version", columns=columns)
        assert shown.code == 0 and shown.text.strip() == f"logharbor {version}"
        short = run("-V", columns=columns)
        assert short.text.strip() == f"logharbor {version}"
        retention = run("retention", "--help", columns=columns)
        assert retention.code == 0
        assert "``" not in retention.text and "<bool>" not in retention.text
        assert "as YAML ready for 'retention apply -f'" in squash(retention.text)
        delete = run("retention", "delete", "-h", columns=columns)
        assert "retention delete [OPTIONS] QUERY" in delete.text and "{q}" not in delete.text
    terminal = in_terminal("query", "-h", columns=columns)
    assert "\x1b[" in terminal.out  # a terminal gets colour
    assert "\x1b[" not in in_pipe("query", "-h", columns=columns).out  # a pipe gets none


@pytest.mark.parametrize("path", [p for p, c in commands() if "\n\n" in (getattr(c, "help", "") or "")],
                         ids=lambda p: " ".join(p) or "logharbor")
def test_a_narrow_terminal_wraps_every_paragraph_to_its_width(path: list[str]) -> None:
    """No line of a help paragraph ends where the docstring's line ended: at 60 columns each
    paragraph fills the width rich gives it (a short line is a paragraph's last)."""
    command = next(c for p, c in commands() if p == path)
    for paragraph in (command.help or "").split("\n\n"):  # type: ignore[attr-defined]
        assert paragraph.startswith("\b") or "\n" not in paragraph, paragraph
    page = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "60"}).output
    assert all(len(line) <= 60 for line in page.splitlines())
