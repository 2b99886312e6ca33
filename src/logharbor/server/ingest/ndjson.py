"""The NDJSON decode loop of native ingest: a body in, store rows and per-line errors out.

This is the reference path. ``scripts/build_native.py`` compiles a copy of this module, together
with ``record``, ``dialects``, ``store.attributes`` and ``store.rows``, with Cython into
``logharbor._native`` (the same source, so the same bytes); :mod:`logharbor.server.ingest.decoder`
picks the compiled copy when it is built from these very sources, this one otherwise.
"""

from __future__ import annotations

import orjson

from logharbor.exactjson import ExactJSONError, loads_exact, lossy_lines
from logharbor.record import RecordError
from logharbor.server.engine.store.rows import encode_record
from logharbor.server.ingest.base import RecordLimits
from logharbor.types import RawRecord

__all__ = ["decode_ndjson_payload"]


def decode_ndjson_payload(
    body: bytes, received_ns: int, limits: RecordLimits, defaults: RawRecord | None,
    tenant: str | None,
) -> tuple[bytes, int, list[tuple[int, str]]]:
    """The store rows of the good lines joined by newlines, how many, and ``(line, error)`` for
    each bad line; plain values, so it runs in a worker process as well.

    The rows are appended to one buffer as they are made (a list of rows joined at the end costs
    about 2 µs more per record: every row stays allocated until the join).
    """
    if body[:3] == b"\xef\xbb\xbf":  # a UTF-8 byte order mark (PowerShell's Out-File, Notepad)
        body = body[3:]               # is not part of the first record: it cost that line
    out = bytearray()
    accepted = 0
    errors: list[tuple[int, str]] = []
    max_line_bytes = limits.max_line_bytes
    # RecordLimits.check has something to say only past one of these; other limits always ask it
    max_fields, max_field_bytes = (limits.max_fields, limits.max_field_bytes) \
        if type(limits) is RecordLimits else (-1, -1)
    max_depth = limits.max_depth if type(limits) is RecordLimits else -1
    deep_bytes = 2 * max_depth
    loads = orjson.loads
    # orjson reads an integer beyond 64 bits as a float: the few lines that may hold one are
    # read by the exact decoder instead (found in one pass over the body, exactjson.py)
    exact = lossy_lines(body)
    for number, line in enumerate(body.split(b"\n"), start=1):
        if len(line) > max_line_bytes:
            errors.append((number, f"line is over the limit of {max_line_bytes} bytes"))
            continue
        line = line.strip()
        if not line:
            continue
        try:
            obj = loads_exact(line) if exact and number - 1 in exact else loads(line)
        except (orjson.JSONDecodeError, ExactJSONError) as exc:
            errors.append((number, f"invalid JSON: {exc}"))
            continue
        if type(obj) is not dict:
            errors.append((number, f"a record must be a JSON object, got {type(obj).__name__}"))
            continue
        size = len(line)
        if len(obj) > max_fields or size > max_field_bytes or (
                size >= deep_bytes and line.count(b"{") + line.count(b"[") > max_depth):
            problem = limits.check(obj, size)
            if problem is not None:
                errors.append((number, problem))
                continue
        try:
            row = encode_record(obj, received_ns=received_ns, defaults=defaults, tenant=tenant)
        except RecordError as exc:
            errors.append((number, str(exc)))
            continue
        except (TypeError, orjson.JSONEncodeError, RecursionError) as exc:
            errors.append((number, f"record cannot be stored: {exc}"))
            continue
        if accepted:
            out += b"\n"
        out += row
        accepted += 1
    return bytes(out), accepted, errors
