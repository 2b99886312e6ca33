"""NGINX access and error logs: presets, any ``log_format`` compiled to a parser, and a formatter.

``format`` is a preset name (``combined``, ``main``, ``json``, ``error``) or the ``log_format``
string of your nginx.conf (also pasted as a whole ``log_format name '…' '…';`` directive). A text
format compiles to one anchored regex whose groups are the variables; a format that is a JSON
object (``escape=json``) is decoded with orjson and its keys mapped back to the variables they
hold. Variables then go where they mean something (see :mod:`logharbor.formats.nginx_vars`) and the
level comes from the status (5xx ERROR, 4xx WARN, else INFO).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from pydantic import field_validator

from logharbor.formats.base import Options, ParserConfigError, guard, register, ufloat, uint, unparsed
from logharbor.formats.nginx_error import NginxErrorParser
from logharbor.formats.nginx_json import generate_json
from logharbor.formats.nginx_vars import (
    TIME_VARIABLES,
    Handler,
    handler_for,
    seconds_to_ms,
    uint_or_text,
    unescape_default,
    unescape_json,
)
from logharbor.types import HttpFields, RawRecord

__all__ = ["LOG_FORMATS", "NginxOptions", "NginxParser", "compile_log_format", "format_nginx_line"]

#: Presets. ``combined`` is NGINX's built-in; ``main`` is the stock nginx.conf ``main`` plus the
#: timing and correlation fields a log system wants; ``json`` is an ``escape=json`` object.
LOG_FORMATS: dict[str, str] = {
    "combined": '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
                '"$http_referer" "$http_user_agent"',
    "main": '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
            '"$http_referer" "$http_user_agent" "$http_x_forwarded_for" rt=$request_time '
            'urt="$upstream_response_time" rid=$request_id trace="$http_x_amzn_trace_id"',
    "json": '{"time":"$time_iso8601","remote_addr":"$remote_addr","remote_user":"$remote_user",'
            '"request":"$request","status":$status,"body_bytes_sent":$body_bytes_sent,'
            '"request_time":$request_time,"upstream_response_time":"$upstream_response_time",'
            '"http_referer":"$http_referer","http_user_agent":"$http_user_agent",'
            '"http_x_forwarded_for":"$http_x_forwarded_for","request_id":"$request_id",'
            '"http_x_amzn_trace_id":"$http_x_amzn_trace_id"}',
}
_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_DIRECTIVE = re.compile(r"^\s*log_format\s+\w+\s+(?:escape=(\w+)\s+)?(.*?);?\s*$", re.S)
_QUOTED_PART = re.compile(r"'([^']*)'|\"((?:[^\"\\]|\\.)*)\"")
_QUOTED_VALUE = r'[^"\\]*(?:\\.[^"\\]*)*'
_QUOTED_VALUE_FAST = r'[^"\\]*+(?:\\.[^"\\]*+)*+'
Escape = Literal["default", "json", "none"]


def _split_directive(text: str) -> tuple[str, str | None]:
    """``log_format main escape=json '…' '…';`` → (the joined format, the escape or None)."""
    m = _DIRECTIVE.match(text)
    if m is None:
        return text, None
    parts = [a if a else b for a, b in _QUOTED_PART.findall(m[2])]
    if not parts:
        raise ParserConfigError("option 'format': the log_format directive has no quoted format")
    return "".join(parts), m[1]


def _tokens(fmt: str) -> list[tuple[str, str]]:
    """Split a format into ("lit", text) and ("var", name) tokens."""
    out: list[tuple[str, str]] = []
    pos = 0
    for m in _VAR.finditer(fmt):
        if m.start() > pos:
            out.append(("lit", fmt[pos:m.start()]))
        out.append(("var", m[1] or m[2]))
        pos = m.end()
    if pos < len(fmt):
        out.append(("lit", fmt[pos:]))
    return out


class _Compiled:
    """A compiled text format: one regex, and per group the handler of its variable."""

    __slots__ = ("fields", "match", "reference_match", "tokens")

    def __init__(self, fmt: str) -> None:
        tokens = _tokens(fmt)
        #: ("lit", text) and ("var", name), in order (formats/nginx_chunk.py compiles them)
        self.tokens = tokens
        names = [v for k, v in tokens if k == "var"]
        if not names:
            raise ParserConfigError(f"option 'format': no $variable in {fmt!r}")
        present = frozenset(names)
        pattern: list[str] = []
        fast_pattern: list[str] = []
        fields: list[Handler | None] = []
        seen: set[str] = set()
        for i, (kind, text) in enumerate(tokens):
            if kind == "lit":
                pattern.append(re.escape(text))
                fast_pattern.append(re.escape(text))
                continue
            prev = tokens[i - 1][1] if i and tokens[i - 1][0] == "lit" else ""
            nxt_kind, nxt = tokens[i + 1] if i + 1 < len(tokens) else ("end", "")
            quoted = prev.endswith('"') and nxt.startswith('"')
            # ``fast``: the same group made possessive where the character after it is one the
            # group cannot hold, so only one end can match and giving back can never succeed:
            # the same groups, with no backtracking bookkeeping
            if quoted:
                group, fast = _QUOTED_VALUE, _QUOTED_VALUE_FAST
            elif nxt_kind == "end":
                group = fast = ".*"
            elif nxt_kind == "var":
                group = fast = ".*?"
            elif nxt[0] in " :":
                # up to a space; before ":" the greedy match backtracks to the *last* colon, so
                # "$remote_addr:$remote_port" splits an IPv6 address right
                group = r"[^ ]*"
                fast = r"[^ ]*+" if nxt[0] == " " else group
            else:
                group = "[^" + re.escape(nxt[0]) + "]*"
                fast = group + "+"
            pattern.append("(" + group + ")")
            fast_pattern.append("(" + fast + ")")
            handler = None if text in seen else handler_for(text, present)
            seen.add(text)
            fields.append(handler)
        self.match = re.compile("".join(fast_pattern) + r"\Z").match
        #: the regex as it was before the possessive groups (formats/nginx_reference.py uses it)
        self.reference_match = re.compile("".join(pattern) + r"\Z").match
        self.fields = tuple(fields)


def compile_log_format(fmt: str) -> tuple[_Compiled | dict[str, Handler], Escape]:
    """Compile a ``log_format`` string (or directive); raises :class:`ParserConfigError`."""
    text, escape = _split_directive(fmt) if "log_format" in fmt else (fmt, None)
    if text.lstrip().startswith("{"):
        probe = _VAR.sub("0", text)
        try:
            template = orjson.loads(probe)
        except orjson.JSONDecodeError as exc:
            raise ParserConfigError(f"option 'format': JSON log_format is not JSON: {exc}") from None
        if not isinstance(template, dict):
            raise ParserConfigError("option 'format': JSON log_format must be an object")
        keys: dict[str, str] = {}
        for m in re.finditer(r'"([^"]+)"\s*:\s*"?\$\{?(\w+)\}?"?\s*[,}]', text):
            keys[m[1]] = m[2]
        if not keys:
            raise ParserConfigError("option 'format': JSON log_format maps no key to a $variable")
        present = frozenset(keys.values())
        return {k: handler_for(v, present) for k, v in keys.items()}, "json"
    return _Compiled(text), (escape or "default")  # type: ignore[return-value]


def _finish(rec: RawRecord, http: HttpFields, line: str) -> RawRecord:
    if http:
        rec["http"] = http
        status = http.get("status")
        if status is not None:
            rec["level"] = "ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO"
        if "message" not in rec and "method" in http and "path" in http:
            rec["message"] = http["method"] + " " + http["path"]
    if "message" not in rec:
        rec["message"] = line
    return rec


def factory_source(compiled: _Compiled, unescape: Any) -> tuple[str, dict[str, Any]]:
    """The parse function of one text format as Python source, and the values its names take.

    Each variable becomes a local (``v3``) and its handler's statements (its ``inline`` or
    ``code``, else a call), so a line costs one regex match, one ``groups()`` and straight-line
    code: no loop, no call per field, and ``_finish`` inlined at the end. The backslash test runs
    once on the line; only lines that have one look for escapes field by field. Held
    byte-identical to :func:`logharbor.formats.nginx_reference.generate_reference` by
    ``tests/formats/test_formats_nginx_differential.py``. Only names built here and ``\\w+``
    variable names go into the source.

    The source is a factory ``make(<names>)`` returning ``parse``: the values are passed in, not
    read from globals, so the very same text can be compiled by Cython ahead of time
    (:mod:`logharbor.formats.nginx_native`) and looked up by its digest.
    """
    ns: dict[str, Any] = {"match": compiled.match, "unparsed": unparsed,
                          "uint": uint, "ufloat": ufloat, "uint_or_text": uint_or_text,
                          "seconds_to_ms": seconds_to_ms,
                          "unescape": unescape}
    names = [f"v{i}" for i in range(len(compiled.fields))]
    src = [
        "def parse(line):",
        "    m = match(line)",
        "    if m is None:",
        "        return unparsed(line, 'line does not match the nginx log_format')",
        f"    {', '.join(names)}, = m.groups()",
    ]
    if unescape is not None:
        src.append("    bs = '\\\\' in line")
    src += [
        "    rec = {'source': 'nginx'}",
        "    http = {}",
        "    try:",
    ]
    for i, handler in enumerate(compiled.fields):
        if handler is None:
            continue
        v = names[i]
        src.append(f"        if {v} and {v} != '-':")
        if unescape is not None:
            src.append(f"            if bs and '\\\\' in {v}:")
            src.append(f"                {v} = unescape({v})")
        code = getattr(handler, "inline", None) or getattr(handler, "code", None)
        if code is None:
            code = "{h}(rec, http, {v})"
        ns[f"h{i}"] = handler
        for stmt in code.format(v=v, h=f"h{i}").split("\n"):
            src.append("            " + stmt)
    src += [
        "    except ValueError as exc:",
        "        return unparsed(line, 'nginx field: ' + str(exc))",
        "    if http:",
        "        rec['http'] = http",
        "        status = http.get('status')",
        "        if status is not None:",
        "            rec['level'] = 'ERROR' if status >= 500 else 'WARN' if status >= 400 else 'INFO'",
        "        if 'message' not in rec and 'method' in http and 'path' in http:",
        "            rec['message'] = http['method'] + ' ' + http['path']",
        "    if 'message' not in rec:",
        "        rec['message'] = line",
        "    return rec",
    ]
    params = sorted(ns)
    body = "\n".join("    " + line for line in src)
    return f"def make({', '.join(params)}):\n{body}\n    return parse\n", ns


def source_key(source: str) -> str:
    """The name a factory's source is compiled under: its digest, so a compiled copy is used
    only for exactly the source it was compiled from."""
    return hashlib.sha256(source.encode()).hexdigest()[:32]


def _compiled_factories() -> dict[str, Any]:
    """``source_key`` → compiled ``make`` of the presets (``logharbor._native.nginx_parsers``, built
    by scripts/build_native.py), or {} when not built or ``LOGHARBOR_PURE_PYTHON`` is set."""
    if os.environ.get("LOGHARBOR_PURE_PYTHON", "") not in ("", "0"):
        return {}
    try:
        module = importlib.import_module("logharbor._native.nginx_parsers")
    except ImportError:
        return {}
    if not str(getattr(module, "__file__", "") or "").endswith((".so", ".pyd")):
        return {}
    return dict(module.FACTORIES)


def generate(compiled: _Compiled, unescape: Any, *, allow_native: bool = True) -> tuple[Any, bool]:
    """The parse function of one text format, and whether it is the compiled copy (the tests
    pass ``allow_native=False`` to hold the Python path to the reference as well)."""
    source, ns = factory_source(compiled, unescape)
    make = _compiled_factories().get(source_key(source)) if allow_native else None
    native = make is not None
    if make is None:
        scope: dict[str, Any] = {}
        exec(compile(source, "<nginx log_format>", "exec"), scope)  # noqa: S102 - source built above
        make = scope["make"]
    return make(**ns), native


class NginxParser:
    """Parses NGINX access log lines of one format into raw records with ``source: nginx``."""

    def __init__(self, fmt: str = "combined", escape: Escape | None = None) -> None:
        self.format = LOG_FORMATS.get(fmt, fmt)
        compiled, found_escape = compile_log_format(self.format)
        esc = escape or found_escape
        #: whether ``parse`` is the Cython-compiled copy of the generated function
        self.native = False
        #: the compiled text format (None for a JSON format): the agent's chunk path reads it
        self.compiled: _Compiled | None = None
        self._unescape = {"default": unescape_default, "json": unescape_json, "none": None}[esc]
        if isinstance(compiled, dict):
            self._json: dict[str, Handler] | None = compiled
            self.parse = generate_json(compiled, self._parse_object)  # type: ignore[method-assign]
        else:
            self._json = None
            self.compiled = compiled
            self.parse, self.native = generate(compiled, self._unescape)  # type: ignore[method-assign]

    def parse(self, line: str) -> RawRecord:
        """Return the raw record of one access log line (every format replaces this method with
        the function generated for it: formats/nginx_json.py for a JSON format)."""
        return self._parse_json(line)

    def _parse_json(self, line: str) -> RawRecord:
        """The general path of a JSON format (the reference the generated function is held to)."""
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return unparsed(line, f"invalid JSON: {exc}")
        if type(obj) is not dict:
            return unparsed(line, "JSON line is not an object")
        return self._parse_object(line, obj)

    def _parse_object(self, line: str, obj: dict[str, Any]) -> RawRecord:
        """Each key of a decoded line through its handler, in the line's order."""
        rec: RawRecord = {"source": "nginx"}
        http: HttpFields = {}
        handlers = self._json
        assert handlers is not None
        try:
            for key, value in obj.items():
                handler = handlers.get(key)
                if handler is None:
                    rec.setdefault(key, value)
                elif value is not None and value != "" and value != "-":
                    handler(rec, http, value)
        except ValueError as exc:
            return unparsed(line, f"nginx field {key!r}: {exc}")
        except (TypeError, AttributeError):  # a JSON value of a type the variable never has
            return unparsed(line, f"nginx field {key!r}: unexpected {type(value).__name__} value")
        return guard(_finish(rec, http, line), line)


class NginxOptions(Options):
    """``format``: preset name or a ``log_format`` string; ``escape``: override the escaping;
    ``timezone``: zone of the error log's local times (``format: error`` only)."""

    format: str = "combined"
    escape: Escape | None = None
    timezone: str = "UTC"

    @field_validator("format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        if value in ("error", *LOG_FORMATS):
            return value
        try:
            compile_log_format(value)
        except ParserConfigError as exc:
            raise ValueError(str(exc).removeprefix("option 'format': ")) from None
        except re.error as exc:
            raise ValueError(f"log_format does not compile: {exc}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


@register("nginx", NginxOptions, "NGINX access logs (combined, main, JSON, any log_format) and error log")
def build(options: NginxOptions) -> NginxParser | NginxErrorParser:
    """Build the access-log parser of ``options.format``, or the error-log parser."""
    if options.format == "error":
        return NginxErrorParser(options.timezone)
    return NginxParser(options.format, options.escape)


# ---------------------------------------------------------------------------------------------
# formatter: the inverse, for the demo and the round-trip tests


def _escape_default(text: str) -> str:
    out = []
    for byte in text.encode("utf-8"):
        if byte < 32 or byte > 126 or byte in (0x22, 0x5C):
            out.append(f"\\x{byte:02X}")
        else:
            out.append(chr(byte))
    return "".join(out)


def _escape_json(text: str) -> str:
    return orjson.dumps(text).decode()[1:-1]


def _render_time(var: str, value: Any) -> str:
    if not isinstance(value, int):
        return str(value)
    dt = datetime.fromtimestamp(value // 1_000_000_000, UTC)
    if var == "time_local":
        return dt.strftime("%d/%b/%Y:%H:%M:%S +0000")
    if var == "time_iso8601":
        return dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return f"{value // 1_000_000_000}.{(value // 1_000_000) % 1000:03d}"


def format_nginx_line(values: Mapping[str, Any], log_format: str = "combined",
                      escape: Escape | None = None) -> str:
    """Write one access log line the way NGINX would, from variable values keyed by name.

    ``time_local``/``time_iso8601``/``msec`` may be integer ns; ``request_time`` and the upstream
    times are seconds; a missing or None variable is written as NGINX writes it (``-``, or
    empty with ``escape=json``).
    """
    fmt = LOG_FORMATS.get(log_format, log_format)
    if "log_format" in fmt:
        fmt, found = _split_directive(fmt)
        escape = escape or found  # type: ignore[assignment]
    is_json = fmt.lstrip().startswith("{")
    esc = escape or ("json" if is_json else "default")
    encoders: dict[str, Callable[[str], str]] = {"default": _escape_default, "json": _escape_json,
                                                 "none": str}
    encode = encoders[esc]

    def sub(m: re.Match[str]) -> str:
        var = m[1] or m[2]
        value = values.get(var)
        if value is None or value == "":
            return "" if esc == "json" else "-"
        if var in TIME_VARIABLES:
            return _render_time(var, value)
        if isinstance(value, float):
            return f"{value:.3f}"
        return encode(str(value))

    return _VAR.sub(sub, fmt)
