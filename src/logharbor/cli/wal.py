"""``logharbor wal verify|repair|refused DATA_DIR``: check and mend a server's write-ahead log on disk,
and list or requeue the rows the store refused."""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

import orjson
import typer

from logharbor.cli.client import die
from logharbor.types import JsonObject

__all__ = ["register"]

wal_app = typer.Typer(
    help="Check (verify) and mend (repair) a server's write-ahead log, on its data directory.",
    no_args_is_help=True)

_DATA_DIR = typer.Argument(..., metavar="DATA_DIR",
                           help="the server's data directory (the one holding wal/), or wal/ itself")
_JSON = typer.Option(False, "--json", help="print the report as JSON")


def _quiet() -> None:
    """The WAL's own log lines would repeat what these commands print."""
    logging.getLogger("logharbor.server.engine.wal").addHandler(logging.NullHandler())
    logging.getLogger("logharbor.server.engine.wal").propagate = False


def _wal_dir(data_dir: Path) -> Path:
    if (data_dir / "wal").is_dir():
        return data_dir / "wal"
    if data_dir.is_dir() and any(data_dir.glob("*.wal")):
        return data_dir
    die(f"{data_dir}: no write-ahead log here (expected {data_dir / 'wal'} with *.wal segments)")


def _seqs(first: int | None, last: int | None) -> str:
    if first is None:
        return "-"
    return str(first) if first == last else f"{first}-{'?' if last is None else last}"


def _print_report(report: JsonObject) -> None:
    echo = typer.echo
    echo(f"WAL {report['wal_dir']}")
    if report["in_use"]:
        echo("  in use by a running server: the live segment may be growing while this reads it")
    if report["interrupted_repair"]:
        echo("  a repair was cut short: run `logharbor wal repair` again to finish it")
    echo(f"  {'segment':<26} {'format':<9} {'bytes':>11} {'entries':>8}  seqs")
    for seg in report["segments"]:
        echo(f"  {seg['segment']:<26} {seg['format']:<9} {seg['bytes']:>11} {seg['entries']:>8}  "
             f"{_seqs(seg['seq_first'], seg['seq_last'])}")
        for d in seg["damage"]:
            echo(f"    DAMAGED at offset {d['offset']}: {d['size']} bytes, sequence numbers "
                 f"{_seqs(d['seq_first'], d['seq_last'])}: {d['reason']}")
        if seg["torn_tail"]:
            t = seg["torn_tail"]
            echo(f"    torn tail at offset {t['offset']}: {t['size']} bytes "
                 f"({t['reason']}; never acknowledged)")
    echo(f"  {report['entries']} valid entries, {report['damaged_spans']} damaged spans "
         f"({report['damaged_bytes']} bytes), torn tail {report['torn_tail_bytes']} bytes")
    quarantine = report["quarantine"]
    echo(f"quarantine: {len(quarantine)} damaged spans set aside" + (":" if quarantine else ""))
    for q in quarantine:
        state = "" if q["complete"] else " (copy incomplete)"
        seqs = _seqs(q.get("seq_first"), q.get("seq_last"))
        echo(f"  {q['file']}{state}: {q.get('size', q['file_bytes'])} bytes from {q.get('segment', '?')} "
             f"offset {q.get('offset', '?')}, sequence numbers {seqs}: {q.get('reason')} "
             f"(found {q.get('found_at', '?')} by {q.get('found_by', '?')})")
    verdict = {0: "clean", 1: "DAMAGED: run `logharbor wal repair DATA_DIR` with the server stopped "
                              "(or start the server: it sets damage aside and reads on)",
               3: "readable: only a torn tail and/or entries set aside earlier (see quarantine)"}
    echo(f"result: {verdict[report['exit_code']]}")


def verify(data_dir: Path = _DATA_DIR, as_json: bool = _JSON) -> None:
    """Check every WAL segment, read-only: entries, damaged spans, torn tail, quarantine.

    Safe while the server runs; needs no encryption key (the checks cover the sealed bytes).

    Exit status: 0 clean, 1 damage in a segment (or a repair cut short), 3 only a torn tail or
    damage set aside earlier in quarantine.
    """
    from logharbor.formatversion import NewerFormat
    from logharbor.server.engine.wal.tools import verify_report

    _quiet()
    try:
        report = verify_report(_wal_dir(data_dir))
    except NewerFormat as exc:
        die(f"wal verify: {exc}")
    if as_json:
        typer.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        _print_report(report)
    raise typer.Exit(report["exit_code"])


def repair(data_dir: Path = _DATA_DIR,
           yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
           as_json: bool = _JSON) -> None:
    """Copy damaged entries to wal/quarantine/, rewrite their segments without them, cut a torn tail.

    Refuses while a server owns the directory: stop it first. Asks before changing anything
    unless --yes. Only the damaged entries are lost (their bytes stay in quarantine).
    """
    from logharbor.formatversion import NewerFormat
    from logharbor.server.engine.batcher_progress import DamagedProgress, stored_seq
    from logharbor.server.engine.wal.segments import WalLocked, check_versions, lock_directory
    from logharbor.server.engine.wal.tools import RepairError, finish_interrupted, plan_repair
    from logharbor.server.engine.wal.tools import repair as run_repair

    _quiet()
    wal_dir = _wal_dir(data_dir)
    try:
        check_versions(wal_dir)  # before the lock: a refusal writes nothing
        with contextlib.suppress(DamagedProgress):  # the repair rewrites its positions
            stored_seq(wal_dir.parent / "batcher.json")
        lock = lock_directory(wal_dir)
    except (WalLocked, NewerFormat) as exc:
        die(f"wal repair: {exc}")
    try:
        done: list[str] = []
        if finish_interrupted(wal_dir):
            done.append("finished a repair that was cut short")
        plan = plan_repair(wal_dir)
        if plan.empty:
            done.append("nothing to repair")
        else:
            if not as_json:
                typer.echo("logharbor wal repair will (YOU LOSE THE DAMAGED ENTRIES, which are kept in "
                           "quarantine):")
                for line in plan.describe():
                    typer.echo(f"  {line}")
            if not yes and not typer.confirm("go ahead?"):
                raise typer.Exit(1)
            try:
                done += run_repair(wal_dir, wal_dir.parent / "batcher.json", plan)
            except (RepairError, OSError) as exc:
                die(f"wal repair: {exc}")
    finally:
        os.close(lock)
    if as_json:
        typer.echo(orjson.dumps({"wal_dir": str(wal_dir), "done": done}, option=orjson.OPT_INDENT_2).decode())
    else:
        for line in done:
            typer.echo(line)


def refused(data_dir: Path = _DATA_DIR,
            requeue: str = typer.Option("", "--requeue", metavar="FILE",
                                        help="put this file's rows back into the WAL (server stopped)"),
            key_file: Path | None = typer.Option(None, "--key-file",
                                                 help="the server's encryption key file (sealed WALs)"),
            as_json: bool = _JSON) -> None:
    """List the rows the store refused for their data (set aside so ingest went on), or requeue them.

    Each refused-F-L.ndjson in wal/quarantine/refused/ holds the refused rows of WAL batch F-L,
    exactly as sent to the store; its .json says why. After fixing the cause (an engine upgrade,
    a schema change), --requeue FILE appends its rows to the WAL as a new entry, with the server
    stopped; the next start inserts them (refused again, they are set aside again). The file is
    renamed requeued-F-L.* first, so it is never requeued twice.
    """
    from logharbor.server.engine.refused import read_refused, refused_files

    wal_dir = _wal_dir(data_dir)
    directory = wal_dir / "quarantine" / "refused"
    if not requeue:
        files = refused_files(directory)
        if as_json:
            typer.echo(orjson.dumps({"directory": str(directory), "files": files},
                                    option=orjson.OPT_INDENT_2).decode())
            return
        typer.echo(f"refused rows in {directory}: {sum(int(f.get('rows', 0)) for f in files)} "
                   f"in {len(files)} files" + (":" if files else ""))
        for f in files:
            error = ((f.get("errors") or ["?"])[0].splitlines() or ["?"])[0][:160]
            seqs = _seqs(f.get("seq_first"), f.get("seq_last"))
            typer.echo(f"  {f['file']}: {f.get('rows', '?')} rows of WAL sequence numbers {seqs} "
                       f"(found {f.get('found_at', '?')}): {error if f['complete'] else 'sidecar missing'}")
        return
    _requeue(wal_dir, directory / Path(requeue).name, key_file, read_refused)


def _requeue(wal_dir: Path, path: Path, key_file: Path | None, read_refused) -> None:  # type: ignore[no-untyped-def]
    from logharbor.formatversion import NewerFormat
    from logharbor.sealing import Sealer
    from logharbor.server.engine.batcher_progress import stored_seq
    from logharbor.server.engine.wal import WriteAheadLog
    from logharbor.server.engine.wal.segments import WalLocked

    if not path.name.startswith("refused-") or not path.is_file():
        die(f"wal refused: no file {path} (see `logharbor wal refused {wal_dir.parent}`)")
    sealer = Sealer.from_file(key_file) if key_file else None
    try:
        rows = read_refused(path, sealer)
    except Exception as exc:  # a sealed file without its key, a damaged seal
        die(f"wal refused: cannot read {path}: {exc} (sealed files need --key-file)")
    wal = WriteAheadLog(wal_dir, sealer=sealer)
    try:
        wal.open(min_next_seq=stored_seq(wal_dir.parent / "batcher.json") + 1)
    except WalLocked as exc:
        die(f"wal refused: {exc}: stop the server first")
    except NewerFormat as exc:
        die(f"wal refused: {exc}")
    moved = path.with_name("requeued-" + path.name.removeprefix("refused-"))
    sidecar = path.with_suffix(".json")
    try:
        path.rename(moved)
        try:
            seq = wal.submit(b"\n".join(rows)).result()
        except Exception:
            moved.rename(path)
            raise
        if sidecar.exists():
            sidecar.rename(moved.with_suffix(".json"))
    finally:
        wal.close()
    typer.echo(f"requeued {len(rows)} rows of {path.name} as WAL entry {seq}; the server inserts them "
               f"at its next start ({moved.name} keeps the copy)")


wal_app.command("verify")(verify)
wal_app.command("repair")(repair)
wal_app.command("refused")(refused)


def register(app: typer.Typer) -> None:
    app.add_typer(wal_app, name="wal")
