"""The ``logharbor`` console script. Standard library only until the CLI is imported: a plain
``pip install logharbor`` is the sdk alone, and its ``logharbor`` then says which extra to install
instead of a traceback (the per-command extras are :mod:`logharbor.cli.errors`' business)."""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    try:
        from logharbor.cli.main import app
    except ModuleNotFoundError as exc:
        if not exc.name or exc.name.split(".")[0] == "logharbor":
            raise
        sys.stderr.write(f"logharbor: the command line needs the Python package '{exc.name}', which this "
                         "install lacks: `pip install logharbor` is the sdk alone. Install "
                         "logharbor[cli] (query, tail, trace, keys, alerts), logharbor[agent] or "
                         "logharbor[server] (server, demo, everything).\n")
        raise SystemExit(1) from None
    app()
