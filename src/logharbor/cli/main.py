"""The ``logharbor`` command: one typer app; each command group lives in its own module and
registers itself here (one entry in ``COMMANDS``).

Each extra brings its commands' packages (``logharbor[cli]``, ``[agent]``, ``[server]``): a command
whose module cannot be imported here, or that meets a missing package when it runs, answers with
the extra to install (:func:`logharbor.cli.errors.missing_extra`), never a traceback."""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import typer

import logharbor
from logharbor.cli.errors import COMMAND_EXTRAS, CliError, missing_extra
from logharbor.cli.help import HELP_NAMES, Group

#: the command modules under logharbor.cli, in the order ``--help`` lists them
COMMANDS = ("server", "agent", "query", "explain", "keys", "tail", "trace", "demo", "alerts", "retention",
            "migrate", "wal", "store")


class Root(Group):
    """The root group: a :class:`CliError` from any command is printed as its one message and
    becomes the exit code; a package missing when a command runs becomes the extra to install."""

    def invoke(self, ctx: Any) -> Any:
        try:
            try:
                return super().invoke(ctx)
            except ModuleNotFoundError as exc:
                if not exc.name or exc.name.split(".")[0] == "logharbor":
                    raise
                raise missing_extra(ctx.invoked_subcommand or "logharbor", exc) from None
        except CliError as exc:
            exc.show(" ".join(filter(None, ["logharbor", ctx.invoked_subcommand])))
            raise typer.Exit(exc.code) from None


app = typer.Typer(
    name="logharbor",
    help="Centralized log collection: server, agent, query, tail, trace, demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=Root,
    context_settings={"help_option_names": HELP_NAMES},
)


def package_version() -> str:
    """The installed distribution's version (the source tree's when it is not installed)."""
    try:
        return version("logharbor")
    except PackageNotFoundError:
        return logharbor.__version__


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"logharbor {package_version()}")
        raise typer.Exit(0)


@app.callback()
def main(
    _version: bool = typer.Option(False, "--version", "-V", is_eager=True, callback=_print_version,
                                  help="Print the version and exit."),
) -> None:
    """Centralized log collection: server, agent, query, tail, trace, demo."""


def _unavailable(name: str, exc: ModuleNotFoundError) -> None:
    """Stand in for a command whose module needs a package this install lacks."""
    extra = COMMAND_EXTRAS.get(name, "cli")

    @app.command(name, help=f"(not installed: needs logharbor[{extra}])", add_help_option=False,
                 context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def command(ctx: typer.Context) -> None:
        raise missing_extra(name, exc)


def _register_all() -> None:
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"logharbor.cli.{name}")
        except ModuleNotFoundError as exc:
            if not exc.name or exc.name.split(".")[0] == "logharbor":
                raise
            _unavailable(name, exc)
        else:
            module.register(app)


_register_all()


if __name__ == "__main__":
    app()
