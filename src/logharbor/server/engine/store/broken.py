"""A data part the engine committed broken is set aside, so one bad part does not stop the store.

On a full disk chDB has committed parts whose files were all empty (issue #20): the insert
reported success, the part joined the table, and every later read of it failed ("Cannot read
all marks"), the batcher's count included, for good. When a read fails naming a part, the part
is checked (``CHECK TABLE … PART``); only a part that fails its checksums is detached (moved to
the table's ``detached/`` folder, nothing deleted, an error logged naming it). Its rows were
never counted as stored, so their batch is still in the WAL and is inserted again. The engine
itself sets such parts aside the same way when it opens a table after a restart.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.types import Row

__all__ = ["set_aside_broken_part"]

log = logging.getLogger("logharbor.server.engine.store")

#: a part's directory in a file path: <partition>_<min block>_<max block>_<level>[_<mutation>]
_PART = re.compile(r"/([A-Za-z0-9-]+_\d+_\d+_\d+(?:_\d+)?)/[^/\s,:]+")
#: read errors that point at damaged part files (CANNOT_READ_ALL_DATA, ATTEMPT_TO_READ_AFTER_EOF,
#: CHECKSUM_DOESNT_MATCH, CORRUPTED_DATA, FILE_DOESNT_EXIST, INCORRECT_DATA, CANNOT_READ_FROM_FILE)
_READ_ERRORS = ("Code: 33.", "Code: 32.", "Code: 40.", "Code: 246.", "Code: 107.", "Code: 117.",
                "Code: 75.")

Query = Callable[[str, Mapping[str, Any]], list[Row]]


def set_aside_broken_part(query: Query, execute: Callable[[str], Any], error: str) -> bool:
    """Detach the part ``error`` names if it fails its check; True when one was set aside."""
    if not any(code in error for code in _READ_ERRORS):
        return False
    found = _PART.search(error)
    if found is None:
        return False
    part = found.group(1)
    tables = query("SELECT table FROM system.parts WHERE database = currentDatabase() AND active "
                   "AND name = {p:String}", {"p": part})
    detached = False
    for row in tables:
        table = quote_identifier(str(row["table"]))
        # the part name matched a strict pattern above: it may stand in the SQL text
        checks = query(f"CHECK TABLE {table} PART '{part}' SETTINGS check_query_single_value_result = 0", {})
        if checks and all(int(c.get("is_passed", 1)) for c in checks):
            continue
        execute(f"ALTER TABLE {table} DETACH PART '{part}'")
        log.error("the store's part %s of table %s was written broken (its files are empty or short: "
                  "the disk was full) and is set aside in the table's detached/ folder; its batch is "
                  "still in the WAL and is inserted again", part, row["table"])
        detached = True
    return detached
