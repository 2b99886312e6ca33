"""Which NDJSON decoder ingest runs: the C normaliser, the compiled copy or the Python one.

``scripts/build_native.py`` (run by ``scripts/install.sh``) compiles the record path's modules
with Cython, and the C normaliser ``_native/rowc.c``, and writes ``logharbor/_native/BUILD.json``:
the SHA-256 of every source it compiled. The build is used only when each of those sources still
hashes the same (a ``record.py`` edited after the build would otherwise run stale code, or a C
normaliser that no longer matches it, in the server), and not when ``LOGHARBOR_PURE_PYTHON=1``.
Otherwise the Python modules run, which are the reference: the differential test
(tests/record/test_differential.py) holds every path to the same bytes and errors.

With the build, a body goes first through the C normaliser (``rowc``), which writes the rows of
the lines it is sure of with the GIL released and hands back the others, which the compiled copy
of ``ndjson.decode_ndjson_payload`` decodes one by one, in place (:mod:`.rowc_path`).

:data:`PATH` says which one runs (``rowc``, ``compiled`` or ``python``) and :data:`REASON` why;
the server logs both at start and exports ``logharbor_ingest_decoder_info{path,reason}`` in
``/metrics``. :data:`RELEASES_GIL` says whether decoding a body lets other threads run.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from logharbor.server.engine.store import rows as python_rows
from logharbor.server.ingest import ndjson as python_ndjson
from logharbor.server.ingest.base import RecordLimits
from logharbor.types import RawRecord

__all__ = ["COMPILED", "PATH", "REASON", "RELEASES_GIL", "SOURCES", "compiled_modules",
           "decode_ndjson_payload", "set_patterns"]

_PACKAGE = Path(__file__).resolve().parents[2]  # src/logharbor
#: compiled module name (under ``logharbor._native``) → its source, relative to the package
SOURCES = {
    "dialects": "dialects.py",
    "record": "record.py",
    "attributes": "server/engine/store/attributes.py",
    "rows": "server/engine/store/rows.py",
    "ndjson": "server/ingest/ndjson.py",
    "rowc": "_native/rowc.c",  # the C normaliser: C, not a copy (build_native.py compiles it as is)
}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compiled_modules(package: Path = _PACKAGE) -> tuple[dict[str, ModuleType] | None, str]:
    """The compiled modules by name, or None, and the reason in words (for the log and /metrics).

    ``package`` is where the sources and ``_native/BUILD.json`` are (the installed package)."""
    if os.environ.get("LOGHARBOR_PURE_PYTHON", "") not in ("", "0"):
        return None, "LOGHARBOR_PURE_PYTHON is set"
    build = package / "_native" / "BUILD.json"
    try:
        built = json.loads(build.read_text())["sources"]
    except FileNotFoundError:
        return None, "not built (scripts/install.sh builds it with gcc and Cython)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return None, f"{build} is unreadable: {exc}"
    if not isinstance(built, dict):  # anything else is no record of a build: never a crash at start
        return None, f"{build} is unreadable: its sources are not an object of digests"
    for name, rel in SOURCES.items():
        try:
            same = built.get(name) == _digest(package / rel)
        except OSError as exc:
            return None, f"stale: {rel} cannot be read ({exc.strerror or exc})"
        if not same:
            return None, f"stale: {rel} changed since the build (run scripts/build_native.py)"
    modules: dict[str, ModuleType] = {}
    for name in SOURCES:
        try:
            module = importlib.import_module(f"logharbor._native.{name}")
        except ImportError as exc:
            return None, f"logharbor._native.{name} does not import: {exc}"
        where = str(getattr(module, "__file__", "") or "")
        if not where.endswith((".so", ".pyd")):
            return None, f"logharbor._native.{name} is not a compiled module"
        if Path(where).resolve().parent != (package / "_native").resolve():
            # BUILD.json vouches for the modules beside it, not for another install's
            return None, f"logharbor._native.{name} is {where}, not the one built beside {build}"
        modules[name] = module
    return modules, "built from these sources"


def mirrored_digest() -> str:
    """SHA-256 of the Python code the C normaliser mirrors (``_native/rowc.c``'s MIRRORS_SHA256):
    an edit to one of these functions or tables turns the C normaliser off until rowc.c is
    brought in line, rather than letting a rebuilt rowc write rows the Python path no longer
    writes."""
    import inspect

    from logharbor import dialects, record
    from logharbor.server.engine.store import rows

    parts = [inspect.getsource(fn) for fn in (
        dialects._dialect_of, dialects.dialect_of, dialects.unnest, record._fold, record._fast_utc,
        record._fast_utc_first, record._epoch_to_ns, record._record_time, record.normalize_level,
        record.normalize_trace_id, record.http_value, record._plan_of, record.keep_aside,
        rows.encode_record, rows._dumps, rows._ts, rows._sid)]
    parts += [repr(x) for x in (sorted(record._ALIASES.items()), dialects.NESTED_KEYS,
                                sorted(record._LEVEL_ALIASES.items()), sorted(record._SERVER_NAMES),
                                list(record.HTTP_FIELDS.items()), record.HTTP_MAX, record.STRING_FIELDS,
                                sorted(record._ABSENT_WHEN_EMPTY), rows.COLUMNS)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


_modules, REASON = compiled_modules()
if _modules is not None and getattr(_modules["rowc"], "MIRRORS", None) != mirrored_digest():
    _rowc_off = ("rowc is off: rowc.c mirrors another version of record.py/dialects.py/rows.py "
                 "(bring it in line and update MIRRORS_SHA256 in _native/rowc.c)")
else:
    _rowc_off = ""
#: the compiled modules when they run, else None
COMPILED: dict[str, ModuleType] | None = _modules
if COMPILED is not None and _rowc_off:
    PATH = "compiled"
    REASON += f"; {_rowc_off}"
    ROWC = None
    decode_ndjson_payload = COMPILED["ndjson"].decode_ndjson_payload
elif COMPILED is not None:
    from logharbor.server.ingest.rowc_path import RowcDecoder

    PATH = "rowc"
    REASON += ": the C normaliser takes the lines it knows without the GIL, the compiled copy the rest"
    #: the C normaliser with the compiled copy for the lines it leaves (:mod:`.rowc_path`)
    ROWC: RowcDecoder | None = RowcDecoder(COMPILED["rowc"], COMPILED["ndjson"].decode_ndjson_payload,
                                           COMPILED["rows"])

    def _rowc_decode(body: bytes, received_ns: int, limits: RecordLimits, defaults: RawRecord | None,
                     tenant: str | None) -> tuple[bytes, int, list[tuple[int, str]]]:
        """``ROWC.decode``, as a module-level function: the decode pool pickles it by name."""
        return ROWC.decode(body, received_ns, limits, defaults, tenant)  # type: ignore[union-attr]

    decode_ndjson_payload: Callable[..., tuple[bytes, int, list[tuple[int, str]]]] = _rowc_decode
else:
    PATH = "python"
    ROWC = None
    decode_ndjson_payload = python_ndjson.decode_ndjson_payload
#: whether :func:`decode_ndjson_payload` releases the GIL while it decodes a body (then threads
#: of one process decode in parallel; the decode pool may use threads instead of processes)
RELEASES_GIL: bool = ROWC is not None


def set_patterns(enabled: bool) -> None:
    """The server's choice of per-message pattern ids, for both copies of the row encoder (worker
    processes are started with it too)."""
    python_rows.set_patterns(enabled)
    if COMPILED is not None:
        COMPILED["rows"].set_patterns(enabled)
