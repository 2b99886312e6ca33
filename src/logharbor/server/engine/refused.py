"""Rows the store refuses for what they hold: isolated, set aside, never a reason to stop ingest.

A row the engine cannot take (a value its column cannot parse: an entry written by another
version, a decoder bug, an engine upgrade that reads a type differently) fails the whole insert of
its batch, every time. Retried as a whole, that batch would block every later record until the WAL
filled and ingest answered 507. So, as Loki and Vector do, after ``refuse_after`` failed attempts
whose error names the *data* (:func:`is_refusal`: a parse or type error code, never a lost
connection, a timeout or a full disk) the batcher splits the batch in halves until each refused
row stands alone (:func:`isolate`), stores the rest, and keeps the refused rows in
``<wal dir>/quarantine/refused/`` (:class:`RefusedRows`), before the WAL range is released.

The engine stores nothing of an insert it refuses for a value (the batch is one block, parsed
before it is written; checked with chDB on a 30 MB batch whose last row was refused), so the halves
never repeat rows of the refused whole.

Exactly once: each half is inserted under a token derived from the batch's (``wal-F-L-r01``), so
an isolation interrupted by a crash or an outage and run again stores each half once (the store
counts rows per token before inserting again). A file per batch: ``refused-F-L.ndjson`` (the rows
exactly as sent to the store, one per line; sealed like the WAL when encryption is on) and, written
after it, ``refused-F-L.json`` (token, sequence numbers, the engine's error per row, when).
``logharbor wal refused DATA_DIR`` lists them; ``--requeue FILE`` puts the rows back into the WAL
(server stopped) for another try after the cause is fixed.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson

from logharbor.durable import write_atomic
from logharbor.sealing import Sealer
from logharbor.server.engine.store.base import StoreError
from logharbor.server.engine.store.batches import ReadBackFailed
from logharbor.types import JsonObject

__all__ = ["REFUSAL_CODES", "RefusedRows", "is_refusal", "isolate", "read_refused", "refused_files"]

log = logging.getLogger("logharbor.server.engine.batcher")

#: ClickHouse error codes that name the data of an insert (a value that does not parse or fit its
#: column), never the server's state: CANNOT_PARSE_TEXT, NO_SUCH_COLUMN_IN_TABLE,
#: CANNOT_PARSE_ESCAPE_SEQUENCE, CANNOT_PARSE_QUOTED_STRING, CANNOT_PARSE_INPUT_ASSERTION_FAILED,
#: ATTEMPT_TO_READ_AFTER_EOF, CANNOT_READ_ALL_DATA, CANNOT_PARSE_DATE, CANNOT_PARSE_DATETIME,
#: TYPE_MISMATCH, ARGUMENT_OUT_OF_BOUND, CANNOT_CONVERT_TYPE, CANNOT_PARSE_NUMBER, INCORRECT_DATA,
#: TOO_LARGE_STRING_SIZE, TOO_DEEP_RECURSION, VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE,
#: CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN, CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING, DECIMAL_OVERFLOW,
#: CANNOT_PARSE_BOOL, UNKNOWN_ELEMENT_OF_ENUM, CANNOT_PARSE_UUID.
REFUSAL_CODES = frozenset({6, 16, 25, 26, 27, 32, 33, 38, 41, 53, 69, 70, 72, 117, 131, 306, 321, 349,
                           376, 377, 407, 467, 691})
_CODE = re.compile(r"\bcode: (\d+)", re.IGNORECASE)
#: the store's own refusal of a line before the engine sees it (store/batches.py mark_rows)
_OWN_REFUSALS = ("a store row is not a JSON object",)


def is_refusal(exc: BaseException) -> bool:
    """True when the store's error is about the rows sent (retrying them can never succeed)."""
    if not isinstance(exc, StoreError) or isinstance(exc, ReadBackFailed):
        return False  # a failed read-back (count, days) is the store's state, whatever its code
    text = str(exc)
    if any(own in text for own in _OWN_REFUSALS):
        return True
    code = _CODE.search(text)
    return code is not None and int(code.group(1)) in REFUSAL_CODES


Insert = Callable[[bytes, str], int]


def isolate(insert: Insert, rows: list[bytes], token: str, error: str,
            attempts: int = 3) -> tuple[int, list[tuple[int, str]]]:
    """Insert ``rows`` in halves until each refused row stands alone.

    ``insert(payload, token)`` stores and returns the rows found under ``token``; the whole batch is
    known to be refused (with ``error``), so the first step already splits. Returns the rows stored and the
    (index, error) of each refused row. An error that is not a refusal propagates: the caller
    retries everything later and the tokens make the halves already stored count, not repeat.
    A row alone is set aside only after ``attempts`` refusals in a row of its own insert (as
    many as the whole batch needed): one refusal that passes never quarantines a good row.
    """
    refused: list[tuple[int, str]] = []

    def run(lo: int, hi: int, path: str, tries: int = 1) -> int:
        try:
            stored = insert(b"\n".join(rows[lo:hi]), f"{token}-r{path}")
        except StoreError as exc:
            if not is_refusal(exc):
                raise
            if hi - lo == 1:
                if tries < attempts:
                    return run(lo, hi, path, tries + 1)
                refused.append((lo, str(exc)))
                return 0
            mid = (lo + hi) // 2
            return run(lo, mid, path + "0") + run(mid, hi, path + "1")
        if stored < hi - lo:
            raise StoreError(f"the store holds {stored} of the {hi - lo} rows of {token}-r{path} "
                             "after its insert")
        return stored

    if len(rows) == 1:
        return 0, [(0, error)]
    mid = len(rows) // 2
    stored = run(0, mid, "0") + run(mid, len(rows), "1")
    return stored, refused


class RefusedRows:
    """The ``refused/`` part of the WAL's quarantine, and what this process put there."""

    def __init__(self, directory: Path, sealer: Sealer | None = None) -> None:
        self.directory = directory
        self.sealer = sealer
        self.rows = 0  # refused rows this process set aside
        self.batches = 0
        self.last: JsonObject | None = None
        self._lock = threading.Lock()

    def keep(self, token: str, first: int, last: int, refused: list[tuple[int, bytes, str]]) -> Path:
        """Write the refused rows (seq, row, error) of batch ``token`` durably; the path of the rows.
        Raises OSError when they cannot be written (the batch then stays in the WAL)."""
        stem = f"refused-{first}-{last}"
        rows = b"\n".join(row for _, row, _ in refused) + b"\n"
        info = {"token": token, "seq_first": first, "seq_last": last, "rows": len(refused),
                "row_seqs": [seq for seq, _, _ in refused],
                "errors": [error[:1000] for _, _, error in refused],
                "sealed": self.sealer is not None,
                "found_at": datetime.now(UTC).isoformat(timespec="seconds")}
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.directory / f"{stem}.ndjson"
        write_atomic(path, self.sealer.seal(rows) if self.sealer is not None else rows, mode=0o600)
        write_atomic(self.directory / f"{stem}.json", orjson.dumps(info, option=orjson.OPT_INDENT_2),
                     mode=0o600)
        with self._lock:
            self.rows += len(refused)
            self.batches += 1
            self.last = {k: v for k, v in info.items() if k != "errors"} | {
                "error": info["errors"][0][:300] if info["errors"] else "", "file": path.name}
        log.error("the store refuses %d row(s) of batch %s (WAL sequence numbers %s) for what they "
                  "hold: they are set aside in %s and the rest of the batch is stored; inspect with "
                  "`logharbor wal refused DATA_DIR`. First error: %s", len(refused), token,
                  sorted({seq for seq, _, _ in refused}), path, refused[0][2][:300] if refused else "")
        return path

    def gauges(self) -> dict[str, float]:
        """For ``/metrics``: rows set aside since the start, files kept (from any run)."""
        return {"logharbor_store_refused_rows": float(self.rows),
                "logharbor_store_refused_files": float(len(refused_files(self.directory)))}

    def summary(self) -> JsonObject | None:
        """The ``refused_rows`` field of ``/readyz``: None while no row was ever refused."""
        files = len(refused_files(self.directory))
        if not files and not self.rows:
            return None
        return {"rows": self.rows, "batches": self.batches, "files": files,
                "directory": str(self.directory), "last": self.last,
                "what_to_do": "inspect with `logharbor wal refused DATA_DIR`; after fixing the cause, "
                              "`logharbor wal refused DATA_DIR --requeue FILE` with the server stopped"}


def refused_files(directory: Path) -> list[JsonObject]:
    """The sidecars of the refused-rows files in ``directory``, oldest batch first."""
    out: list[JsonObject] = []
    try:
        paths = sorted(directory.glob("refused-*.ndjson"),
                       key=lambda p: [int(n) for n in p.stem.split("-")[1:] if n.isdigit()])
    except OSError:
        return out
    for path in paths:
        try:
            info = orjson.loads(path.with_suffix(".json").read_bytes())
        except (OSError, orjson.JSONDecodeError):
            info = {"complete": False}
        else:
            info["complete"] = True
        info["file"] = path.name
        out.append(info)
    return out


def read_refused(path: Path, sealer: Sealer | None = None) -> list[bytes]:
    """The rows of one refused-rows file (opened with ``sealer`` when it was sealed)."""
    data = path.read_bytes()
    if data and not data.startswith(b"{"):  # rows are JSON objects: anything else is sealed
        if sealer is None:
            raise ValueError(f"{path.name} is sealed (encryption at rest): its key file is needed")
        data = sealer.open(data)
    return [line for line in data.split(b"\n") if line.strip()]
