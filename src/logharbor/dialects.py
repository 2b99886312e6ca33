"""JSON logger dialects: the keys each common logger writes, recognised by the shape of the record.

Why: users keep their loggers. Serilog writes ``@t @mt @l @x``, python-json-logger ``asctime``
and ``levelname``, syslog-ng's ``format-json`` ``MESSAGE PRIORITY PROGRAM HOST``, Logback's
LogstashEncoder ``stack_trace`` and ``level_value``, Google Cloud's structured logging
``logging.googleapis.com/trace`` and ``httpRequest``. None of these keys is an alias everywhere
(``HOST`` or ``name`` mean other things in other records), so a dialect is recognised by keys only
that logger writes together, and only then are its keys read as canonical fields.

A dialect's rewrite returns a new dict in which the keys it recognises carry their canonical name
(``@t`` → ``timestamp``); :func:`logharbor.record.normalize` then folds that dict as any other.
A key is renamed only when its value is neither null nor empty and the canonical name is not in
the record already; otherwise it stays an attribute as it was sent. The shape of a record (its
keys in order) decides the dialect once per shape (``dialect_of``), so a stream of one logger's
records pays one dict lookup for it.

Exceptions go where the sdk puts them: ``error.type``, ``error.message``, ``error.stack`` (an
``error`` object when the record has no ``error`` key; flat dotted keys beside it when it has one,
as zap, logrus and zerolog write the error's text under ``error``).

This module imports nothing of logharbor: :mod:`logharbor.record` imports it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from logharbor.types import HttpFields, JsonObject, RawRecord

__all__ = ["DIALECTS", "Rewrite", "dialect_of", "render_template"]

Rewrite = Callable[[RawRecord], RawRecord]

_TIMESTAMP_KEYS = ("timestamp", "@timestamp", "time", "ts", "timeMillis", "datetime", "date")
#: syslog severity numbers 0..7 by the names syslog itself gives them (RFC 5424 §6.2.1)
_SYSLOG_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


def _rename(obj: RawRecord, pairs: tuple[tuple[str, str], ...]) -> RawRecord:
    """``obj`` with each ``(key, name)`` renamed, in the order of ``pairs`` (the first key found
    for a name wins), when the key's value is neither null nor "" and ``name`` is not taken."""
    taken: dict[str, str] = {}
    names = set(obj)
    for key, name in pairs:
        if key in obj and key not in taken and name not in names:
            value = obj[key]
            if value is not None and value != "":
                taken[key] = name
                names.add(name)
    if not taken:
        return obj
    return {taken.get(key, key): value for key, value in obj.items()}


def _has_time(obj: RawRecord) -> bool:
    return any(obj.get(key) not in (None, "") for key in _TIMESTAMP_KEYS)


def _error(obj: RawRecord, stack_key: str, type_key: str | None = None,
           message_key: str | None = None) -> RawRecord:
    """Move a logger's exception keys to ``error.stack`` / ``error.type`` / ``error.message``."""
    parts = {}
    for part, key in (("type", type_key), ("message", message_key), ("stack", stack_key)):
        if key is not None and key in obj and isinstance(obj[key], str) and obj[key]:
            parts[part] = key
    if "stack" not in parts:
        return obj
    if "error" not in obj:
        out = {k: v for k, v in obj.items() if k not in parts.values()}
        out["error"] = {part: obj[key] for part, key in parts.items()}
        return out
    flat = {key: f"error.{part}" for part, key in parts.items() if f"error.{part}" not in obj}
    return {flat.get(k, k): v for k, v in obj.items()}


# -- Serilog CLEF --------------------------------------------------------------------------------

_CLEF = (("@t", "timestamp"), ("@m", "message"), ("@l", "level"), ("@tr", "trace_id"),
         ("TraceId", "trace_id"), ("@sp", "span_id"), ("SpanId", "span_id"),
         ("RequestId", "request_id"), ("Application", "service"), ("MachineName", "host"))
_HOLE = re.compile(r"\{\{|\}\}|\{([@$]?)([A-Za-z0-9_.]+)(?:,(-?\d+))?(?::([^{}]*))?\}")


def render_template(template: str, props: JsonObject, renderings: list[Any] | None = None) -> str:
    """A Serilog message template with the event's properties, as Serilog renders it: strings in
    double quotes (``:l`` without), ``@r``'s pre-rendered values for holes with a format, other
    values as JSON text; a hole whose property is absent stays as written."""
    import orjson

    formatted = iter(renderings or ())

    def hole(m: re.Match[str]) -> str:
        text = m.group(0)
        if text in ("{{", "}}"):
            return text[0]
        name, align, fmt = m[2], m[3], m[4]
        if name not in props:
            return text
        value = props[name]
        rendered = next(formatted, None) if fmt is not None else None  # @r: one per hole with a format
        if rendered is not None:
            out = str(rendered)
        elif isinstance(value, str):
            out = value if fmt == "l" else f'"{value}"'
        elif isinstance(value, bool) or value is None:
            out = "null" if value is None else str(value)
        elif isinstance(value, int | float):
            out = str(value)
        else:
            out = orjson.dumps(value).decode()
        if align:
            width = int(align)
            out = out.ljust(-width) if width < 0 else out.rjust(width)
        return out

    return _HOLE.sub(hole, template)


def clef(obj: RawRecord) -> RawRecord:
    """Serilog's compact JSON (``CompactJsonFormatter``, ``RenderedCompactJsonFormatter``)."""
    out = _rename(obj, _CLEF)
    if "message" not in out and isinstance(out.get("@mt"), str):
        renderings = out.get("@r")
        out["message"] = render_template(out["@mt"], out,
                                         renderings if isinstance(renderings, list) else None)
    if any(type(k) is str and k.startswith("@@") for k in out):
        out = _rename(out, tuple((k, k[1:]) for k in out if type(k) is str and k.startswith("@@")))
    return _error(out, "@x")


# -- Google Cloud structured logging ----------------------------------------------------------

_GCP_TRACE = "logging.googleapis.com/trace"
_GCP = (("logging.googleapis.com/spanId", "span_id"),)
_GCP_HTTP = (("requestMethod", "method"), ("status", "status"), ("remoteIp", "client_ip"),
             ("userAgent", "user_agent"), ("referer", "referer"), ("responseSize", "bytes_sent"))
_LATENCY = re.compile(r"(\d+(?:\.\d+)?)s")
_TRACE_PATH = re.compile(r"projects/[^/]+/traces/([0-9a-fA-F]{32})")


def _gcp_http(request: JsonObject) -> tuple[HttpFields, JsonObject]:
    """``httpRequest`` → the canonical ``http`` fields, and what is left of it."""
    http: HttpFields = {}
    rest = dict(request)
    for key, name in _GCP_HTTP:
        value = rest.get(key)
        if value is None or value == "":
            continue
        if name in ("status", "bytes_sent") and not _count(value, 65535 if name == "status" else 2**64 - 1):
            continue  # not a number the column holds: it stays in httpRequest, as sent
        http[name] = rest.pop(key)
    url = rest.get("requestUrl")
    if isinstance(url, str) and url:
        parts = urlsplit(url)
        query = f"?{parts.query}" if parts.query else ""
        http["path"] = (parts.path or "/") + query if parts.scheme else url
        if not parts.scheme:
            del rest["requestUrl"]
    latency = rest.get("latency")
    if isinstance(latency, str) and (m := _LATENCY.fullmatch(latency)):
        http["duration_ms"] = float(m[1]) * 1000
        del rest["latency"]
    return http, rest


def _count(value: Any, top: int) -> bool:
    """An integer in 0..top, or its ASCII digits (protobuf JSON writes int64 as a string)."""
    if type(value) is str and value.isascii() and value.isdigit() and len(value) < 21:
        value = int(value)
    return type(value) is int and 0 <= value <= top


def gcp(obj: RawRecord) -> RawRecord:
    """Google Cloud Logging's structured JSON (what its agents and Cloud Run read from stdout)."""
    out = _rename(obj, _GCP)
    trace = out.get(_GCP_TRACE)
    if "trace_id" not in out and isinstance(trace, str) and (m := _TRACE_PATH.fullmatch(trace)):
        out["trace_id"] = m[1]  # the project stays in the key, as it was sent
    seconds = out.get("timestampSeconds")
    if not _has_time(out) and isinstance(seconds, int) and not isinstance(seconds, bool) and seconds >= 0:
        nanos = out.get("timestampNanos", 0)
        if isinstance(nanos, int) and not isinstance(nanos, bool) and 0 <= nanos < 10**9:
            out = {k: v for k, v in out.items() if k not in ("timestampSeconds", "timestampNanos")}
            out["timestamp"] = {"seconds": seconds, "nanos": nanos}
    request = out.get("httpRequest")
    if isinstance(request, dict) and "http" not in out:
        http, rest = _gcp_http(request)
        if http:
            out["http"] = http
            if rest:
                out["httpRequest"] = rest
            else:
                del out["httpRequest"]
    context = out.get("serviceContext")
    if isinstance(context, dict):
        rest = dict(context)
        for key in ("service", "version"):
            value = rest.get(key)
            if key not in out and isinstance(value, str) and value:
                out[key] = rest.pop(key)
        if rest != context:
            if rest:
                out["serviceContext"] = rest
            else:
                del out["serviceContext"]
    return _error(out, "stack_trace")


# -- Python logging (python-json-logger and friends) --------------------------------------------

_PYTHON = (("otelTraceID", "trace_id"), ("otelSpanID", "span_id"), ("otelServiceName", "service"))
_ASCTIME = re.compile(r"(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}),(\d{3})")


def python_logging(obj: RawRecord) -> RawRecord:
    """A stdlib ``logging`` record as JSON: ``levelname``, ``asctime`` (``2026-11-25 10:00:00,123``,
    the process's local time, read as UTC) or ``created`` (epoch seconds), ``exc_info``."""
    out = _rename(obj, _PYTHON)
    if not _has_time(out):
        created = out.get("created")
        asctime = out.get("asctime")
        stamp: Any = None
        key = ""
        if isinstance(created, int | float) and not isinstance(created, bool) and created >= 0:
            stamp, key = created, "created"
        elif isinstance(asctime, str) and (m := _ASCTIME.fullmatch(asctime)):
            stamp, key = f"{m[1]}T{m[2]}.{m[3]}Z", "asctime"
        if key:
            out = {("timestamp" if k == key else k): (stamp if k == key else v) for k, v in out.items()}
    return _error(out, "exc_info")


# -- syslog-ng format-json ---------------------------------------------------------------------

_SYSLOG_NG = (("MESSAGE", "message"), ("PROGRAM", "service"), ("SYSLOG_IDENTIFIER", "service"),
              ("HOST", "host"), ("_HOSTNAME", "host"), ("ISODATE", "timestamp"), ("PRIORITY", "level"),
              ("LEVEL", "level"))
#: with a time of its own (the stock template's @timestamp), ISODATE stays an attribute
_SYSLOG_NG_TIMED = tuple(pair for pair in _SYSLOG_NG if pair[0] != "ISODATE")


def syslog_ng(obj: RawRecord) -> RawRecord:
    """syslog-ng's ``$(format-json --scope rfc5424 …)`` (the stock ``elasticsearch-http()`` and
    ``http()`` templates): upper-case macro names; ``PRIORITY`` is a severity name or 0..7.
    journald's JSON export (``journalctl -o json``) has the same field names plus its own:
    ``SYSLOG_IDENTIFIER`` the service, ``_HOSTNAME`` the host, ``__REALTIME_TIMESTAMP`` (µs since
    the epoch, as digits) the time — it was stored with the receive time."""
    out = _rename(obj, _SYSLOG_NG if not _has_time(obj) else _SYSLOG_NG_TIMED)
    realtime = out.get("__REALTIME_TIMESTAMP")
    if isinstance(realtime, str) and realtime.isascii() and realtime.isdigit() and not _has_time(out):
        out = {("timestamp" if k == "__REALTIME_TIMESTAMP" else k): v for k, v in out.items()}
    level = out.get("level")
    if "level" not in obj and isinstance(level, str) and level.isdigit() and int(level) < 8:
        out["level"] = _SYSLOG_NAMES[int(level)]
    elif "level" not in obj and isinstance(level, int) and not isinstance(level, bool) and 0 <= level < 8:
        out["level"] = _SYSLOG_NAMES[level]
    return out


# -- Logback (logstash-logback-encoder) -----------------------------------------------------------

_LOGBACK = (("HOSTNAME", "host"), ("app_name", "service"), ("appName", "service"),
            ("application", "service"), ("springAppName", "service"), ("spring.application.name", "service"),
            ("X-B3-TraceId", "trace_id"), ("X-B3-SpanId", "span_id"))


def logback(obj: RawRecord) -> RawRecord:
    """logstash-logback-encoder's ``LogstashEncoder``: ``level_value``, ``logger_name``,
    ``stack_trace``, MDC keys at the top (``requestId``, ``traceId`` are aliases already)."""
    return _error(_rename(obj, _LOGBACK), "stack_trace")


# -- ECS (Log4j2 EcsLayout, ecs-logging) ---------------------------------------------------------


def ecs(obj: RawRecord) -> RawRecord:
    """Elastic Common Schema documents: ``error.stack_trace`` is the stack (dotted or nested)."""
    nested = obj.get("error")
    if isinstance(nested, dict) and isinstance(nested.get("stack_trace"), str) and "stack" not in nested:
        out = dict(obj)
        out["error"] = {("stack" if k == "stack_trace" else k): v for k, v in nested.items()}
        return out
    if isinstance(obj.get("error.stack_trace"), str) and "error.stack" not in obj:
        return {("error.stack" if k == "error.stack_trace" else k): v for k, v in obj.items()}
    return obj


# -- pino, bunyan --------------------------------------------------------------------------------

_NODE = (("name", "service"), ("reqId", "request_id"))


def node(obj: RawRecord) -> RawRecord:
    """pino and bunyan: ``name`` is the app's name, ``err`` the serialized error."""
    out = _rename(obj, _NODE)
    err = out.get("err")
    if isinstance(err, dict) and err and "error" not in out:
        out = {("error" if k == "err" else k): v for k, v in out.items()}
    return out


# -- zap, slog -------------------------------------------------------------------------------------


def zap(obj: RawRecord) -> RawRecord:
    """zap's production JSON: ``stacktrace`` (its ``error`` key is the error's text, kept)."""
    return _error(obj, "stacktrace")


def slog(obj: RawRecord) -> RawRecord:
    """Go's ``log/slog`` JSONHandler with ``AddSource``: ``source`` is the code location, an object,
    never a source name; it becomes ``source_location``."""
    if isinstance(obj.get("source"), dict) and "source_location" not in obj:
        return {("source_location" if k == "source" else k): v for k, v in obj.items()}
    return obj


# -- loguru (serialize=True) ---------------------------------------------------------------------


def loguru(obj: RawRecord) -> RawRecord:
    """loguru's ``serialize=True``: ``{"text": <the formatted line>, "record": {...}}``, with the
    message, level, time and exception inside ``record``; none was read (no message, INFO, the
    receive time). They are copied out where the record has none; ``text`` and ``record`` stay
    as sent (``record`` also holds the file, function, line, process, thread and ``extra``)."""
    record = obj.get("record")
    if type(record) is not dict:
        return obj
    out = dict(obj)
    message = record.get("message")
    if "message" not in out and isinstance(message, str) and message:
        out["message"] = message
    level = record.get("level")
    name = level.get("name") if type(level) is dict else None
    if "level" not in out and isinstance(name, str) and name:
        out["level"] = name
    when = record.get("time")
    stamp = when.get("timestamp") if type(when) is dict else None
    if type(stamp) in (int, float) and stamp >= 0 and not _has_time(out):
        out["timestamp"] = stamp
    exc = record.get("exception")
    if type(exc) is dict and "error" not in out:
        error = {part: exc[key] for part, key in (("type", "type"), ("message", "value"))
                 if isinstance(exc.get(key), str) and exc[key]}
        if error:
            out["error"] = error
    return out


# -- GELF (Graylog Extended Log Format) ------------------------------------------------------------


def gelf(obj: RawRecord) -> RawRecord:
    """GELF 1.1 (``version``, ``host``, ``short_message``): ``level`` is a syslog severity 0..7
    (3 is an error), where a bare number elsewhere is on pino's scale, so it was not a level at
    all (kept as ``level_raw``, INFO)."""
    level = obj.get("level")
    if type(level) is int and 0 <= level < 8:
        out = dict(obj)
        out["level"] = _SYSLOG_NAMES[level]
        return out
    return obj


# -- Log4j2 JsonLayout -----------------------------------------------------------------------------


def _whole(value: Any, top: int) -> bool:
    return type(value) is int and 0 <= value <= top


def log4j2(obj: RawRecord) -> RawRecord:
    """Log4j2's ``JsonLayout``: the time as ``instant: {epochSecond, nanoOfSecond}`` (read as the
    receive time before) or ``timeMillis`` (an alias already), the exception as ``thrown`` (``name``,
    ``message``, ``extendedStackTrace``), which becomes ``error`` (``type``, ``message``, ``stack``)
    with its other members kept beside them; with ``locationInfo`` a ``source`` object (class,
    method, file, line), the code location, which becomes ``source_location`` (as slog's)."""
    out = dict(obj)
    if type(out.get("source")) is dict and "source_location" not in out:
        out = {("source_location" if k == "source" else k): v for k, v in out.items()}
    instant = out.get("instant")
    if type(instant) is dict and not _has_time(out):
        seconds, nanos = instant.get("epochSecond"), instant.get("nanoOfSecond", 0)
        if _whole(seconds, 9_223_372_035) and _whole(nanos, 999_999_999) and set(instant) <= {
                "epochSecond", "nanoOfSecond"}:
            out = {("timestamp" if k == "instant" else k): v for k, v in out.items()}
            out["timestamp"] = {"seconds": seconds, "nanos": nanos}
    thrown = out.get("thrown")
    if type(thrown) is dict and thrown and "error" not in out:
        names = {"name": "type", "extendedStackTrace": "stack"}
        error = {names.get(k, k) if not (k == "extendedStackTrace" and type(v) is not str) else k: v
                 for k, v in thrown.items()}
        if len(error) == len(thrown):  # no name taken twice (a "type" member beside "name")
            out = {("error" if k == "thrown" else k): (error if k == "thrown" else v) for k, v in out.items()}
    return out


# -- .NET Microsoft.Extensions.Logging JSON console --------------------------------------------------

_DOTNET = (("Message", "message"), ("LogLevel", "level"), ("Timestamp", "time"))


def dotnet(obj: RawRecord) -> RawRecord:
    """ASP.NET Core's ``JsonConsoleFormatter``: ``LogLevel``, ``Category``, ``EventId``, ``Message``,
    ``State``, ``Exception`` (the exception's text with its stack), and ``Timestamp`` when a
    ``TimestampFormat`` is set (in that format, so read as a lenient time: a format without a zone
    or date leaves the receive time, never a refused record). None of them was read (no message,
    INFO, the receive time)."""
    return _error(_rename(obj, _DOTNET), "Exception")


# -- Rust tracing-subscriber JSON -------------------------------------------------------------------


def rust_tracing(obj: RawRecord) -> RawRecord:
    """``tracing_subscriber::fmt().json()``: the event's message is ``fields.message`` (with the
    event's other fields beside it in ``fields``), ``target`` the module path; the message was
    never read. It is moved out to ``message``; the other fields stay where they were sent."""
    fields = obj.get("fields")
    if type(fields) is not dict or "message" in obj:
        return obj
    message = fields.get("message")
    if not isinstance(message, str) or message == "":
        return obj
    rest = {k: v for k, v in fields.items() if k != "message"}
    out: RawRecord = {}
    for key, value in obj.items():
        if key == "fields":
            out["message"] = message
            if rest:
                out["fields"] = rest
        else:
            out[key] = value
    return out


# -- access logs of reverse proxies (Caddy, Traefik) ----------------------------------------------


def _ms(seconds: Any, scale: int) -> float | None:
    """A duration in seconds (scale 3) or nanoseconds (scale -6) in milliseconds, scaled in decimal
    (0.0012 s is 1.2 ms, not 1.2000000000000002)."""
    if type(seconds) not in (int, float) or seconds < 0 or seconds != seconds or seconds == float("inf"):
        return None
    return float(Decimal(repr(seconds)).scaleb(scale))


def _with_http(obj: RawRecord, http: HttpFields, moved: tuple[str, ...]) -> RawRecord:
    """``obj`` with ``http`` added (where it has none) and the top-level keys read into it removed."""
    if "http" in obj or not http:
        return obj
    out = {k: v for k, v in obj.items() if k not in moved}
    out["http"] = http
    return out


def caddy(obj: RawRecord) -> RawRecord:
    """Caddy's access log (``log`` directive, JSON encoder): the request is an object (``method``,
    ``uri``, ``client_ip``/``remote_ip``, ``headers``), ``status``, ``size`` and ``duration``
    (seconds) are top-level. The request object stays as sent; the three numbers move into ``http``."""
    request = obj.get("request")
    if type(request) is not dict:
        return obj
    http: HttpFields = {}
    for name, value in (("method", request.get("method")), ("path", request.get("uri")),
                        ("client_ip", request.get("client_ip") or request.get("remote_ip"))):
        if isinstance(value, str) and value:
            http[name] = value
    agent = request.get("headers", {}).get("User-Agent") if type(request.get("headers")) is dict else None
    if type(agent) is list and agent and isinstance(agent[0], str):
        http["user_agent"] = agent[0]
    moved = []
    if _count(obj.get("status"), 65535):
        http["status"] = obj["status"]
        moved.append("status")
    if _count(obj.get("size"), 2**64 - 1):
        http["bytes_sent"] = obj["size"]
        moved.append("size")
    if (ms := _ms(obj.get("duration"), 3)) is not None:
        http["duration_ms"] = ms
        moved.append("duration")
    return _with_http(obj, http, tuple(moved))


_TRAEFIK = (("RequestMethod", "method"), ("RequestPath", "path"), ("DownstreamStatus", "status"),
            ("ClientHost", "client_ip"), ("DownstreamContentSize", "bytes_sent"),
            ("request_User-Agent", "user_agent"), ("request_Referer", "referer"))


def traefik(obj: RawRecord) -> RawRecord:
    """Traefik's JSON access log: ``DownstreamStatus``, ``RequestMethod``, ``RequestPath``,
    ``ClientHost``, ``DownstreamContentSize``, ``Duration`` (nanoseconds), ``msg`` empty. They
    move into ``http``; the message, when there is none, is the method and path (as for NGINX)."""
    http: HttpFields = {}
    moved = []
    for key, name in _TRAEFIK:
        value = obj.get(key)
        if name == "status":
            fits = _count(value, 65535)
        elif name == "bytes_sent":
            fits = _count(value, 2**64 - 1)
        else:
            fits = isinstance(value, str) and value != ""
        if fits:
            http[name] = value
            moved.append(key)
    if (ms := _ms(obj.get("Duration"), -6)) is not None and type(obj.get("Duration")) is int:
        http["duration_ms"] = ms
        moved.append("Duration")
    out = _with_http(obj, http, tuple(moved))
    named = "method" in http and "path" in http
    if out is not obj and named and not out.get("message") and not out.get("msg"):
        out = {k: v for k, v in out.items() if k != "msg"}
        out["message"] = f"{http['method']} {http['path']}"
    return out


#: name → rewrite, for the docs and tests
DIALECTS: dict[str, Rewrite] = {
    "clef": clef, "gcp": gcp, "python": python_logging, "syslog-ng": syslog_ng, "logback": logback,
    "ecs": ecs, "pino/bunyan": node, "zap": zap, "slog": slog, "loguru": loguru, "gelf": gelf,
    "log4j2": log4j2, "dotnet": dotnet, "rust-tracing": rust_tracing, "caddy": caddy, "traefik": traefik,
}


# -- nested objects under a canonical name (ECS, OTel-shaped JSON) -----------------------------------

#: keys whose object value is read as its dotted children: ``{"service": {"name": "x"}}`` is
#: ``{"service.name": "x"}`` (ecs-logging writes the one, Log4j2's EcsLayout the other; the store
#: and the query language treat the two spellings as one path already)
NESTED_KEYS = ("service", "host", "trace", "span", "log", "deployment")


def unnest(obj: RawRecord, keys: tuple[str, ...]) -> RawRecord:
    """``obj`` with each of ``keys`` that holds an object replaced, in place in the key order, by
    its members as dotted keys; ``obj`` itself when none does, or when a dotted key it would make
    is already there (then nothing is changed)."""
    nested = [k for k in keys if type(obj[k]) is dict and obj[k]]  # {} stays as it is
    if not nested:
        return obj
    made = [f"{k}.{sub}" for k in nested for sub in obj[k]]
    if any(key in obj for key in made) or len(set(made)) != len(made):
        return obj
    out: RawRecord = {}
    for key, value in obj.items():
        if key in nested:
            for sub, item in value.items():
                out[f"{key}.{sub}"] = item
        else:
            out[key] = value
    return out


def _then(nested: tuple[str, ...], rewrite: Rewrite | None) -> Rewrite:
    """Unnest, then the logger dialect. The result is ``obj`` itself exactly when nothing changed
    (a record whose ``service`` is a string, as most are), so the caller can skip re-planning;
    a dialect's answer is always a new dict, even one that edited ``obj`` in place."""
    def both(obj: RawRecord) -> RawRecord:
        out = unnest(obj, nested) if nested else obj
        if rewrite is None:
            return out
        out = rewrite(out)
        return dict(out) if out is obj else out
    return both


def dialect_of(keys: tuple[Any, ...]) -> Rewrite | None:
    """The rewrite a record with these keys needs before it is folded (a logger dialect, and
    objects under a canonical name read as dotted keys), or None (most records)."""
    rewrite = _dialect_of(keys)
    nested = tuple(k for k in NESTED_KEYS if k in keys)
    return _then(nested, rewrite) if nested or rewrite is not None else None


def _dialect_of(keys: tuple[Any, ...]) -> Rewrite | None:
    """The logger dialect a record with these keys is written in, or None (most records)."""
    present = set(keys)
    if "@t" in present and ("@mt" in present or "@m" in present or "@l" in present):
        return clef
    if "httpRequest" in present or "serviceContext" in present or "timestampSeconds" in present or any(
            type(k) is str and k.startswith("logging.googleapis.com/") for k in keys):
        return gcp
    if "levelname" in present:
        return python_logging
    if "MESSAGE" in present and ("PROGRAM" in present or "PRIORITY" in present or "FACILITY" in present):
        return syslog_ng
    if "level_value" in present and ("logger_name" in present or "@version" in present):
        return logback
    if "ecs.version" in present or "ecs" in present:
        return ecs
    if "pid" in present and "hostname" in present and "msg" in present and "level" in present:
        return node
    if "stacktrace" in present and ("ts" in present or "caller" in present):
        return zap
    if "source" in present and "msg" in present and "time" in present and "level" in present:
        return slog
    if "text" in present and "record" in present:
        return loguru
    if "short_message" in present and "version" in present:
        return gelf
    if "loggerFqcn" in present or ("loggerName" in present and ("instant" in present or "thrown" in present)):
        return log4j2
    if "LogLevel" in present and ("Category" in present or "EventId" in present):
        return dotnet
    if "fields" in present and "target" in present:
        return rust_tracing
    if "resp_headers" in present or ("request" in present and "duration" in present and "logger" in present):
        return caddy
    if "DownstreamStatus" in present:
        return traefik
    return None
