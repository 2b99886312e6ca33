"""A delete-by-query scrubs the refused-rows files of the WAL's quarantine when they are sealed
(encryption at rest): read as ciphertext, an erased record stayed in them, and a later
``logharbor wal refused --requeue`` brought it back into the store."""

from __future__ import annotations

from pathlib import Path

from logharbor.record import normalize
from logharbor.sealing import Sealer, generate_key_file
from logharbor.server.engine.refused import RefusedRows, read_refused
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.features.retention.local import scrub_quarantine
from logharbor.server.features.retention.redact import Redactor


def test_a_sealed_refused_file_is_scrubbed_and_stays_sealed(tmp_path: Path) -> None:
    generate_key_file(tmp_path / "key")
    sealer = Sealer.from_file(tmp_path / "key")
    quarantine = tmp_path / "wal" / "quarantine"
    rows = [encode_row(normalize({"service": "s", "user_id": value, "message": message}))
            for value, message in (("erase-me-7", "refused with the value"), ("u-2", "unrelated refused row"))]
    path = RefusedRows(quarantine / "refused", sealer).keep(
        "wal-3-4", 3, 4, [(3, rows[0], "Code: 41."), (4, rows[1], "Code: 41.")])
    store = EmbeddedStore(tmp_path / "store")
    store.open()
    try:
        figures = scrub_quarantine(quarantine, store, [("user_id", "String")], "0", {},
                                   Redactor(["erase-me-7"]), sealer)
    finally:
        store.close()
    assert figures["lines_removed"] == 1, figures
    assert not path.read_bytes().startswith(b"{")  # still sealed
    left = read_refused(path, sealer)
    assert left == [rows[1]]
