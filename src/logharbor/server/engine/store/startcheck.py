"""The embedded store's table definitions, checked before the engine opens them, and mended.

The engine keeps each table's definition in a metadata file (``store/metadata/<db>/<table>.sql``,
a link into ``store/store/…``). A definition written while the disk was full was left empty and
the engine answered OK (issue #20); the next start then failed with "Error initializing
EmbeddedServer" and named nothing. So before opening, every metadata file is read:

* one that is empty, cut short or not a definition is **named**, with its table;
* if that table holds no data (the tiers' read view ``<table>_all``, the patterns view
  ``…_mv``, the move set ``<table>_moving``, a delete's ``…_erase_…`` helpers, the pattern backfill's
  ``<table>_pattern_backfill``, an upgrade's copies ``…__attrtext`` and ``…__coldtext``), the file is
  set aside by itself (moved to ``DATA_DIR/store-damaged/<time>/``, logged): logharbor creates
  those at every start, and nothing is lost;
* for a table with data the start stops with a message naming the file, the table and the
  command that mends it: ``logharbor store repair DATA_DIR``. The data is untouched (it lives
  in the table's own folder, found through ``store/data/<db>/<table>``); the repair writes the
  definition back from logharbor's own schema (which owns these tables), with the table's
  UUID, after checking that every column of every data part is in that definition. It does not
  run by itself at start: it writes the engine's files, so an operator asks for it (and can
  keep a copy first); it refuses when a part has a column the schema does not know (a table
  from a newer release) or the store is encrypted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from logharbor.durable import write_atomic

__all__ = ["Damaged", "check_before_open", "find_damaged", "holds_no_data", "repair"]

log = logging.getLogger("logharbor.server.engine.store")

#: tables logharbor re-creates at every start, holding nothing that is not elsewhere
#: (and the upgrade's copies, store/attrmigrate.py: ``…__attrtext`` is a partial copy before its
#: swap and the old rows already copied after it, ``…__coldtext`` a copy of an intact cold file)
_NO_DATA = re.compile(r"(_all|_mv|_moving|_erase_[a-z0-9]+_(rows|patterns|samples)|_pattern_backfill"
                      r"|__attrtext|__coldtext)$")


def holds_no_data(name: str) -> bool:
    """Whether ``name`` is a view or a helper table logharbor re-creates and that holds no data."""
    return _NO_DATA.search(name) is not None


@dataclass(frozen=True)
class Damaged:
    """A metadata file the engine could not open: where, which table, what is wrong with it."""

    path: Path
    database: str
    table: str
    problem: str

    @property
    def holds_data(self) -> bool:
        return not holds_no_data(self.table)


def _problem(text: bytes) -> str | None:
    if not text.strip():
        return "it is empty (it was written while the disk was full)"
    if b"\0" in text:
        return "it holds zero bytes where text should be (a write was cut short)"
    if not text.lstrip().startswith((b"ATTACH", b"CREATE")):
        return "it is not a table definition"
    if text.count(b"(") != text.count(b")"):
        return "it is cut short"
    return None


def find_damaged(store_dir: Path) -> list[Damaged]:
    """Every metadata file under ``store_dir`` that the engine could not read."""
    found: list[Damaged] = []
    meta = store_dir / "metadata"
    if not meta.is_dir():
        return found
    for entry in sorted(meta.iterdir()):
        if entry.suffix == ".sql" and entry.is_file():
            problem = _problem(entry.read_bytes())
            if problem:
                found.append(Damaged(entry, entry.stem, "", problem))
        elif entry.is_dir():
            for sql in sorted(entry.glob("*.sql")):
                problem = _problem(sql.read_bytes())
                if problem:
                    found.append(Damaged(sql, entry.name, sql.stem, problem))
    return found


def _aside_dir(store_dir: Path) -> Path:
    aside = store_dir.parent / "store-damaged" / time.strftime("%Y%m%dT%H%M%S")
    aside.mkdir(parents=True, exist_ok=True)
    return aside


def _set_aside(store_dir: Path, damaged: Damaged, aside: Path) -> None:
    """Move the definition (and the table's data link and folder: a view has none, a helper's is
    re-made) out of the engine's way."""
    shutil.move(str(damaged.path), aside / f"{damaged.database}.{damaged.path.name}")
    link = store_dir / "data" / damaged.database / damaged.table
    if link.is_symlink():
        target = link.resolve()
        link.unlink()
        if target.is_dir():
            shutil.move(str(target), aside / f"{damaged.database}.{damaged.table}.data")


def check_before_open(store_dir: Path, data_dir: Path | None = None) -> None:
    """Set aside damaged definitions of tables that hold no data; raise ``ValueError`` naming
    the damaged ones that do, with the repair command."""
    damaged = find_damaged(store_dir)
    if not damaged:
        return
    aside: Path | None = None
    for d in damaged:
        if d.table and not d.holds_data:
            aside = aside or _aside_dir(store_dir)
            _set_aside(store_dir, d, aside)
            log.error("the store's metadata file %s (%s.%s) was damaged: %s. That %s holds no data and "
                      "is created again at start; the file was moved to %s", d.path, d.database, d.table,
                      d.problem, "view" if d.table.endswith(("_all", "_mv")) else "helper table", aside)
    rest = [d for d in damaged if not d.table or d.holds_data]
    if rest:
        where = data_dir if data_dir is not None else store_dir.parent
        lines = [f"  {d.path}: table {d.database}.{d.table or '(the database itself)'}: {d.problem}"
                 for d in rest]
        raise ValueError(
            "the store cannot open: a table's definition file is damaged (its data is not):\n"
            + "\n".join(lines)
            + f"\nRepair: stop the server, then run `logharbor store repair {where}` (it writes the "
              "definition back from logharbor's schema after checking the table's data against it; "
              "`logharbor store check` shows what it would do). Or restore the file from a backup.")


# -- repair --------------------------------------------------------------------------------

_SCRATCH = r"""
import json, sys
from pathlib import Path
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.tiers import Tiers
from logharbor.server.engine.store.sql.services import create_recording
store = EmbeddedStore(Path(sys.argv[1]), table=sys.argv[2])
store.open()
Tiers(store, None).open()
create_recording(store)
columns = {}
for row in store.query("SELECT table, name FROM system.columns WHERE database = currentDatabase()", {}):
    columns.setdefault(row["table"], []).append(row["name"])
store.close()
print(json.dumps(columns))
"""


def _scratch_definitions(table: str) -> tuple[dict[str, str], dict[str, list[str]]]:
    """Every table's definition file as this release writes it, from a fresh store made in a
    separate process (the engine takes one data path per process), and each table's columns."""
    with tempfile.TemporaryDirectory(prefix="logharbor-schema-") as tmp:
        out = subprocess.run([sys.executable, "-c", _SCRATCH, str(Path(tmp) / "store"), table],
                             capture_output=True, check=False, timeout=600,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        if out.returncode != 0:
            raise ValueError(f"could not build the reference schema: {out.stderr.decode()[-2000:]}")
        columns = json.loads(out.stdout.decode().strip().splitlines()[-1])
        texts = {p.stem: p.read_text() for d in (Path(tmp) / "store" / "metadata").iterdir() if d.is_dir()
                 for p in d.glob("*.sql")}
    return texts, columns


def _part_columns(table_dir: Path) -> set[str]:
    """Column names found in the ``columns.txt`` of every data part of a table's folder."""
    names: set[str] = set()
    for columns in table_dir.glob("*/columns.txt"):
        for line in columns.read_text(errors="replace").splitlines()[2:]:
            match = re.match(r"`((?:[^`\\]|\\.)*)`", line)
            if match:
                names.add(match.group(1).replace("\\`", "`").replace("\\\\", "\\"))
    return names


def repair(data_dir: Path, *, table: str = "logs", dry_run: bool = False) -> list[str]:
    """Mend every damaged definition under ``DATA_DIR/store``; lines saying what was (or, with
    ``dry_run``, would be) done. Raises ``ValueError`` when one cannot be mended safely."""
    store_dir = data_dir / "store"
    damaged = find_damaged(store_dir)
    if not damaged:
        return ["no damaged table definition under " + str(store_dir)]
    if (store_dir / "ENCRYPTED").exists():
        raise ValueError("the store is encrypted: its definitions name the encrypted disk; restore the "
                         "damaged files from a backup")
    done: list[str] = []
    texts, columns = _scratch_definitions(table) if any(d.table and d.holds_data for d in damaged) \
        else ({}, {})
    aside = None if dry_run else _aside_dir(store_dir)
    for d in damaged:
        if not d.table:
            raise ValueError(f"{d.path}: the database's own definition is damaged ({d.problem}); restore it "
                             "from a backup")
        if not d.holds_data:
            done.append(f"{d.path}: {d.table} holds no data: set aside, made again at start")
            if aside is not None:
                _set_aside(store_dir, d, aside)
            continue
        if d.table not in texts:
            raise ValueError(f"{d.path}: table {d.table} is not one logharbor makes; restore the file from "
                             "a backup")
        link = store_dir / "data" / d.database / d.table
        if not link.exists():
            raise ValueError(f"{d.path}: the data folder of {d.table} ({link}) is missing; cannot tell its "
                             "UUID")
        uuid = link.resolve().name
        unknown = _part_columns(link.resolve()) - set(columns.get(d.table, []))
        if unknown:
            raise ValueError(f"{d.path}: the data of {d.table} has columns this release does not define "
                             f"({', '.join(sorted(unknown))}); restore the file from a backup")
        text = re.sub(r"UUID '[0-9a-f-]+'", f"UUID '{uuid}'", texts[d.table], count=1)
        done.append(f"{d.path}: {d.table} (UUID {uuid}): definition written back from the schema")
        if aside is not None:
            shutil.copy2(d.path, aside / f"{d.database}.{d.path.name}")
            write_atomic(d.path, text.encode())
    return done
