"""Stores of the layout before text attributes (``attributes JSON`` + ``attributes_exact``), made
the way the old release made them, for the migration tests (store/attrmigrate.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.store import old_attributes

from logharbor import exactjson
from logharbor.server.engine.store.batches import mark_rows
from logharbor.server.engine.store.patterns import patterns_ddl
from logharbor.server.engine.store.rows import encode_record
from logharbor.server.engine.store.sqlsafe import quote_identifier

__all__ = ["OLD_SCHEMA", "make_old_store", "old_row"]

OLD_SCHEMA = (Path(__file__).parent / "old_schema.sql").read_text()


def old_row(obj: dict[str, Any], received_ns: int) -> bytes:
    """``obj`` as the old encoder wrote its row: the JSON column's object and the patch."""
    row = exactjson.loads(encode_record(obj, received_ns=received_ns))
    attributes = row.pop("attributes", None)
    if attributes:
        old_attributes.put(row, attributes, careful=True)
    return exactjson.dumps(row)


def _create(session: Any, name: str, *, warm: bool = False) -> None:
    body = "\n".join(line for line in OLD_SCHEMA.splitlines() if not line.lstrip().startswith("--"))
    text = body.replace("{table}", quote_identifier(name)).replace("{engine}", "MergeTree")
    session.query(text)
    if warm:
        session.query(f"ALTER TABLE {quote_identifier(name)} ADD COLUMN move_id String CODEC(ZSTD(9))")


def make_old_store(path: Path, hot: list[bytes], warm: list[bytes] = (),  # type: ignore[assignment]
                   cold: tuple[Path, list[bytes]] | None = None) -> None:
    """A data directory as the old release left it: ``logs`` (with its patterns view) holding
    ``hot`` (one insert), ``logs_warm`` holding ``warm`` (move id ``m-old``); ``cold``: a
    Parquet file written as the old release exported one (attributes as the JSON column's text
    beside ``attributes_exact``) at that path, holding those rows."""
    from chdb import session

    path.mkdir(parents=True, exist_ok=True)
    s = session.Session(old_attributes.with_settings(str(path)))
    try:
        _create(s, "logs")
        for statement in patterns_ddl("logs", "patterns"):
            s.query(statement)
        _create(s, "logs_warm", warm=True)
        if hot:
            with s.send_insert("INSERT INTO logs SETTINGS input_format_skip_unknown_fields = 0",
                               "JSONEachRow") as ins:
                ins.append(mark_rows(b"\n".join(hot), "old-1"))
                ins.finish()
        if warm:
            marked = mark_rows(b"\n".join(warm), "old-2")
            lines = [b'{"move_id":"m-old",' + line[1:] for line in marked.split(b"\n") if line]
            with s.send_insert("INSERT INTO logs_warm SETTINGS input_format_skip_unknown_fields = 0",
                               "JSONEachRow") as ins:
                ins.append(b"\n".join(lines))
                ins.finish()
        if cold is not None:
            _create(s, "cold_source")
            with s.send_insert("INSERT INTO cold_source", "JSONEachRow") as ins:
                ins.append(mark_rows(b"\n".join(cold[1]), "old-3"))
                ins.finish()
            cold[0].parent.mkdir(parents=True, exist_ok=True)
            literal = "'" + str(cold[0]).replace("\\", "\\\\").replace("'", "\\'") + "'"
            s.query(f"INSERT INTO FUNCTION file({literal}, 'Parquet') SELECT * EXCEPT (attributes), "  # noqa: S608
                    "toString(attributes) AS attributes FROM cold_source")
            s.query("DROP TABLE cold_source")
    finally:
        s.close()
