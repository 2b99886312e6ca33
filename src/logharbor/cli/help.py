"""The ``--help`` pages of every command, written as people read them.

typer renders each option's Python type next to it (``--raw <bool>``, ``--since <str>``) and
shows a required argument as ``{text}``; a flag then reads as if it took a value. The root group
(:class:`Group`, ``typer.Typer(cls=Group)``) walks the whole command tree once, when typer builds
it, and gives every parameter a metavar in click's convention: none for a flag, ``TEXT``,
``INTEGER``, ``NUMBER``, ``PATH`` for the rest unless the option names its own (``URL``, ``KEY``,
``DURATION``), and ``QUERY`` (or ``[QUERY]`` when optional) for an argument in the usage line.
Help texts are plain text: square brackets in them (``db[?cluster=NAME]``) are escaped, not read
as rich markup that would swallow them.
``-h`` is a second name for ``--help`` everywhere (``context_settings`` of the root).

Why at build time and not per command: the command modules stay plain typer, and a command
added later is covered without anyone remembering to (``tests/cli/test_help.py`` walks the
same tree and fails on any ``<type>`` or raw markup left in a page).
"""

from __future__ import annotations

import inspect
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperArgument, TyperGroup, TyperOption

__all__ = ["HELP_NAMES", "Group", "polish"]

#: ``-h`` and ``--help`` on every command (the root's context settings reach every subcommand)
HELP_NAMES = ["-h", "--help"]

#: typer's type label → the metavar click itself would show
_METAVARS = {"str": "TEXT", "int": "INTEGER", "int range": "INTEGER", "float": "NUMBER",
             "float range": "NUMBER", "path": "PATH", "file": "FILE", "directory": "DIR",
             "bool": "BOOLEAN", "datetime": "DATETIME"}


class _Argument(TyperArgument):
    """An argument shown in the usage line as ``QUERY`` / ``[QUERY]``, as click shows it."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if not self.required:
            name = f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the metavar in the name column says it already


def _metavar(param: TyperOption | TyperArgument, ctx: typer.Context) -> str:
    label = param.display_type(ctx).strip("<>")
    if "|" in label:  # a choice: its values are the clearest metavar
        return f"[{label}]"
    return _METAVARS.get(label, label.upper().replace(" ", "_"))


def _reflow(text: str) -> str:
    """A docstring's paragraphs, each on one line: typer joins the first paragraph's lines but
    prints the others' line breaks as they are, so at 60 columns a page broke mid-sentence
    ("3 only a torn tail or" / "damage set aside…"); rich wraps a one-line paragraph to the
    terminal instead. A paragraph marked preformatted (click's ``\\b``) stays as written."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split("\n")) for p in paragraphs)


def _polish_params(command: Any, ctx: typer.Context) -> None:
    if command.help:
        command.help = escape(_reflow(command.help))
    if command.short_help:
        command.short_help = escape(command.short_help)
    for param in command.params:
        if getattr(param, "help", None):
            param.help = escape(param.help)  # help is text: `db[?cluster=NAME]` is no markup tag
        if isinstance(param, TyperOption):
            if param.is_flag or param.count:
                param.metavar = ""  # a flag takes no value: show none
            elif param.metavar is None:
                param.metavar = _metavar(param, ctx)
        elif isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = (param.name or "value").upper()
            param.__class__ = _Argument  # same object, click's usage form (no other state)


def polish(command: Any, *, help_names: list[str] | None = None) -> None:
    """Give every parameter of ``command`` and of its subcommands a metavar, and make their help
    options (``-h``/``--help``) now, shown without a type."""
    names = help_names or HELP_NAMES
    ctx = typer.Context(command, help_option_names=names, info_name=command.name)
    _polish_params(command, ctx)
    help_option = command.get_help_option(ctx)  # made once and cached on the command
    if help_option is not None:
        help_option.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        polish(sub, help_names=names)


class Group(TyperGroup):
    """The root command: polishes the whole tree once it is built (see the module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        polish(self)
