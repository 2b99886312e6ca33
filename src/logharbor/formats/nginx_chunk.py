"""The agent's compiled NGINX path: a whole chunk of lines → the NDJSON it ships, in C.

Per line the Python path costs a regex match, two dicts, ``orjson.dumps`` and the splice of the
source's shared fields (``agent/pipeline._encode_records``): ≈ 5–9 µs of a 158-byte combined line.
A text ``log_format`` is also a small program — literals, groups that stop at one character, and
per variable a handler whose ``native`` tag says what it does (``formats/nginx_vars.py``) — that
``logharbor._native.nginx_encode`` (``_native/nginx_encode.c``, built by scripts/build_native.py)
runs over every line of a chunk, writing each record's JSON straight into the payload.

The C code takes a line only when it can write exactly the bytes the Python path writes (printable
ASCII without a backslash, the format matched, integers of ≤ 18 digits, a ``$time_local`` the
Python parser converts, seconds converted by the very Python function, cached per value); any other
line goes through ``fallback`` — the Python parser and encoder — in its place.
``tests/formats/test_formats_nginx_chunk.py`` holds both byte-identical (hypothesis). Formats it
cannot express (two adjacent variables, a group before ``:``, a handler without a tag), a build
older than ``nginx_encode.c`` or ``LOGHARBOR_PURE_PYTHON=1`` keep the Python path.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from logharbor.formats.base import seconds_to_ms
from logharbor.formats.nginx import _VAR as VAR
from logharbor.formats.nginx import _split_directive as split_directive
from logharbor.formats.nginx import _tokens as tokens_of
from logharbor.formats.nginx_vars import _TimeCache, parse_time_iso8601, parse_time_local
from logharbor.record import HTTP_MAX, TIMESTAMP_KEYS

__all__ = ["ChunkEncoder", "chunk_encoder", "native_module"]

#: the program's key indices the C code knows by number (``K_*`` and ``H_*`` in nginx_encode.c)
_REC_FIXED = ("source", "message", "timestamp", "level", "http", "protocol", "trace_id", "trace_header")
_HTTP_FIXED = ("method", "path", "status")
_OPS = {"skip": 0, "http_str": 1, "http_int": 2, "rec_str": 3, "rec_int": 4, "rec_default": 5,
        "http_ms": 6, "rec_ms": 7, "request": 8, "trace": 9, "time_local": 10, "time_cached": 11,
        "time_iso8601": 12}
_HTTP_OPS = frozenset(("http_str", "http_int", "http_ms"))
_STOP_CHAR, _STOP_END = 0, 1
_BARE_INT, _BARE_DECIMAL = 1, 2  # a JSON format's unquoted value: what the C code takes as a number
_SOURCE = Path(__file__).resolve().parents[1] / "_native" / "nginx_encode.c"


def native_module() -> Any:
    """``logharbor._native.nginx_encode`` when it is built from the ``nginx_encode.c`` beside it
    (its ``SOURCE_SHA256``), else None (not built, stale, or ``LOGHARBOR_PURE_PYTHON`` set)."""
    if os.environ.get("LOGHARBOR_PURE_PYTHON", "") not in ("", "0"):
        return None
    try:
        module = importlib.import_module("logharbor._native.nginx_encode")
    except ImportError:
        return None
    if _SOURCE.exists() and getattr(module, "SOURCE_SHA256", "") != \
            hashlib.sha256(_SOURCE.read_bytes()).hexdigest():
        return None
    return module


def _ms_json(value: str) -> bytes | None:
    """The JSON of ``value`` seconds as ms, exactly as the record's float is written; None
    where the Python path keeps the line with a ``parse_error``."""
    try:
        return orjson.dumps(seconds_to_ms(value))
    except ValueError:
        return None


class _Keys:
    """The record's and the http object's key tables of one program (fixed ones first)."""

    def __init__(self) -> None:
        self.rec, self.http = list(_REC_FIXED), list(_HTTP_FIXED)

    @staticmethod
    def index(names: list[str], name: str) -> int:
        if name not in names:
            names.append(name)
        return names.index(name)

    def op(self, handler: Any) -> tuple[str, int, Any] | None:
        """(op, key index, aux) of a variable's handler, or None when only Python can run it."""
        if handler is None:
            return "skip", 0, None
        if isinstance(handler, _TimeCache):
            if handler.parse is parse_time_local:
                return "time_local", 2, parse_time_local
            if handler.parse is parse_time_iso8601:
                return "time_iso8601", 2, parse_time_iso8601
            return "time_cached", 2, handler.refresh
        tag = getattr(handler, "native", None)
        if tag is None:
            return None
        op = tag[0]
        key = 0
        if op in _HTTP_OPS:
            key = self.index(self.http, tag[1])
        elif op in ("rec_str", "rec_int", "rec_default", "rec_ms"):
            key = self.index(self.rec, tag[1])
        return op, key, _ms_json if op in ("http_ms", "rec_ms") else None

    def spec(self, tokens: list[tuple[Any, ...]], time_keys: Iterable[str],
             *extra: Any) -> tuple[tuple[Any, ...], frozenset[str]]:
        times = frozenset(time_keys)
        spec = (tuple(tokens), tuple(orjson.dumps(n) + b":" for n in self.rec),
                tuple(n in times for n in self.rec), tuple(orjson.dumps(n) + b":" for n in self.http),
                b'"nginx"', *extra)
        return spec, frozenset(self.rec)


def _program(compiled: Any, time_keys: Iterable[str]) -> tuple[tuple[Any, ...], frozenset[str]] | None:
    """The C program's spec of a compiled text format and the record keys it can write, or None
    when the format needs what only the Python path does."""
    keys = _Keys()
    tokens: list[tuple[Any, ...]] = []
    fields = iter(compiled.fields)
    toks = compiled.tokens
    for i, (kind, text) in enumerate(toks):
        if kind == "lit":
            if not text.isascii():
                return None
            tokens.append((0, text.encode()))
            continue
        handler = next(fields)
        nxt_kind, nxt = toks[i + 1] if i + 1 < len(toks) else ("end", "")
        if nxt_kind == "end":
            stop, char = _STOP_END, 0
        elif nxt_kind == "var" or nxt[0] == ":" or not nxt[0].isascii():
            return None  # a lazy group, or a greedy one that backtracks: the regex decides
        else:
            stop, char = _STOP_CHAR, ord(nxt[0])
        found = keys.op(handler)
        if found is None:
            return None
        op, key, aux = found
        tokens.append((1, stop, char, _OPS[op], key, aux))
    return keys.spec(tokens, time_keys)


#: names a JSON format's record must not have for the C code to stand in for ``guard`` (which
#: checks the times normalize would read, and ``http.status`` against its column)
_GUARDED_NAMES = frozenset((*TIMESTAMP_KEYS, "@t", "ISODATE")) - {"timestamp"}
_BARE = {"http_int": _BARE_INT, "rec_int": _BARE_INT, "http_ms": _BARE_DECIMAL, "rec_ms": _BARE_DECIMAL,
         "skip": _BARE_INT}


def _json_program(parser: Any, time_keys: Iterable[str]) -> tuple[tuple[Any, ...], frozenset[str]] | None:
    """The C program of a JSON format written as NGINX writes it (``{"key":"$var","n":$var,…}``,
    no spaces, every key's value one variable): its literals and quoted or bare values, each key's
    handler as the JSON path runs it, ``guard``'s status bound. None for any other template."""
    handlers: dict[str, Any] = parser._json
    fmt = parser.format
    text = split_directive(fmt)[0] if "log_format" in fmt else fmt
    toks = tokens_of(text)
    try:
        template = orjson.loads(VAR.sub("0", text))
    except orjson.JSONDecodeError:
        return None
    if not isinstance(template, dict) or list(template) != list(handlers):
        return None  # a key whose value is not one variable: the JSON path keeps it as is
    keys = _Keys()
    tokens: list[tuple[Any, ...]] = []
    names = iter(handlers.items())
    for i, (kind, value) in enumerate(toks):
        if kind == "lit":
            if not value.isascii():
                return None
            tokens.append((0, value.encode()))
            continue
        key, handler = next(names, (None, None))
        prev = toks[i - 1][1] if i and toks[i - 1][0] == "lit" else ""
        nxt = toks[i + 1][1] if i + 1 < len(toks) and toks[i + 1][0] == "lit" else ""
        head = orjson.dumps(key).decode() + ":"
        found = keys.op(handler)
        if key is None or found is None:
            return None
        op, index, aux = found
        if prev.endswith(head + '"') and nxt.startswith('"'):
            bare = 0
        elif prev.endswith(head) and nxt[:1] in (",", "}") and op in _BARE:
            bare = _BARE[op]
        else:
            return None
        tokens.append((1, _STOP_CHAR, ord(nxt[0]), _OPS[op], index, aux, bare))
    if next(names, None) is not None or _GUARDED_NAMES & set(keys.rec):
        return None
    return keys.spec(tokens, time_keys, HTTP_MAX["status"])


class ChunkEncoder:
    """One text format's compiled program: ``encode`` writes a chunk's NDJSON."""

    def __init__(self, module: Any, spec: tuple[Any, ...], keys: frozenset[str]) -> None:
        self._encode_lines = module.encode_lines
        self.program = module.Program(spec)
        #: every key a record of this format can have (a source field of the same name is merged
        #: by the Python path, which keeps the agent's value as ``<name>_agent``)
        self.keys = keys

    def head(self, meta: Mapping[str, Any]) -> bytes | None:
        """The shared fields written before each record, as ``pipeline._encode_records`` writes
        them (``source`` is the parser's); None when a field shares a name with a record key."""
        clash = meta.keys() & self.keys
        if clash - {"source"}:
            return None
        shared = {k: v for k, v in meta.items() if k != "source"} if clash else meta
        return orjson.dumps(shared)[:-1]

    def encode(self, lines: list[str], head: bytes, time_ns: int,
               fallback: Callable[[str], bytes]) -> bytes:
        """Every line's record, ``head`` spliced in front and ``time_ns`` as the timestamp of a
        record without one; ``fallback(line)`` writes the lines the C code does not take."""
        return self._encode_lines(self.program, lines, head, time_ns, fallback)  # type: ignore[no-any-return]


def chunk_encoder(parser: Any, time_keys: Iterable[str]) -> ChunkEncoder | None:
    """The chunk encoder of an NGINX access-log parser, or None (another parser, a format the C
    program cannot express, or the module not built)."""
    compiled = getattr(parser, "compiled", None)
    json_format = getattr(parser, "_json", None) is not None
    if compiled is None and not json_format:
        return None
    module = native_module()
    if module is None:
        return None
    found = _json_program(parser, time_keys) if json_format else _program(compiled, time_keys)
    if found is None:
        return None
    try:
        return ChunkEncoder(module, *found)
    except ValueError:  # more tokens or keys than the C program holds (256): the Python path
        return None
