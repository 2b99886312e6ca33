"""Write requirements/lock.txt: the exact version of every package ``logharbor[test]`` needs
(server, agent, cli and test tools, transitive ones included), read from an installed venv.

Run it with the venv whose set was tested: ``.venv/bin/python scripts/lock.py``. It walks the
declared requirements (markers evaluated for this Python, extras followed) through the installed
distributions' metadata, so nothing outside the closure (a bench-only package, pip itself) lands in
the lock; ``scripts/install.sh`` installs with ``-c requirements/lock.txt``.
"""

from __future__ import annotations

import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "lock.txt"
EXTRAS = ["test"]


def project_requirements(extras: list[str]) -> list[str]:
    """pyproject's base requirements plus those of ``extras``, ``logharbor[x]`` self-references
    expanded (read from the source tree, not from an installed copy that may be older)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    out, todo, done = list(project["dependencies"]), list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in done:
            continue
        done.add(extra)
        for text in project["optional-dependencies"][extra]:
            req = Requirement(text)
            if canonicalize_name(req.name) == "logharbor":
                todo.extend(req.extras)
            else:
                out.append(text)
    return out


def closure(roots: list[str]) -> dict[str, str]:
    """Every distribution the roots need, name → installed version."""
    pinned: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [Requirement(r) for r in roots]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = distribution(req.name)
        except PackageNotFoundError:
            sys.exit(f"lock: {req.name} is needed but not installed in {sys.prefix}")
        pinned[name] = dist.version
        for text in dist.requires or []:
            sub = Requirement(text)
            wanted = [{"extra": e} for e in req.extras] or [{"extra": ""}]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in wanted):
                todo.append(sub)
    return pinned


def main() -> None:
    pins = closure(project_requirements(EXTRAS))
    header = ("# Exact versions of everything `pip install -e '.[test]'` installs (server, agent, cli and\n"
              "# test extras, transitive packages included), used as constraints by scripts/install.sh.\n"
              "# Written by scripts/lock.py from the venv the suite passed in; do not edit by hand.\n")
    LOCK.parent.mkdir(exist_ok=True)
    LOCK.write_text(header + "".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
    print(f"lock: {len(pins)} packages → {LOCK.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
