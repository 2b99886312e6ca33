"""``python -m logharbor.agent -c agent.yaml [--check]``: the agent command without the full CLI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from logharbor.agent.command import run_agent


def main(argv: list[str] | None = None) -> int:
    """Parse the two options of ``logharbor agent`` and run it; the exit status."""
    parser = argparse.ArgumentParser(prog="logharbor agent", description=(
        "Tail files and other sources, and ship their records at least once to the sinks."))
    parser.add_argument("-c", "--config", type=Path, required=True, help="Path of agent.yaml.")
    parser.add_argument("--check", action="store_true", help="Validate the config and exit.")
    args = parser.parse_args(argv)
    return run_agent(args.config, check=args.check)


if __name__ == "__main__":
    sys.exit(main())
