"""OTLP/HTTP logs: ``POST /v1/logs`` in protobuf or JSON (gzip allowed), as the OTel spec says.

Protobuf bodies are read with the generated messages of ``opentelemetry-proto`` (upb, in C);
JSON bodies follow the OTLP JSON mapping (lowerCamelCase keys, hex trace/span ids, 64-bit
integers as strings, enums as numbers) and, leniently, the plain protobuf JSON mapping some
encoders emit (base64 ids). One mapping serves both:

- resource attributes: ``service.name`` → service, ``service.version`` → version,
  ``deployment.environment[.name]`` → env, ``host.name`` → host, ``service.instance.id`` →
  instance; the rest are attributes (``host.arch`` is kept as ``host_arch``, see
  :mod:`~logharbor.server.ingest.attrnames`);
- scope: ``scope.name``, ``scope.version`` and the scope's attributes;
- log record: time (observed time when the time is unset), severity number (text when no
  number), trace/span ids as hex, ``event_name``, attributes (HTTP semantic conventions fill the
  canonical ``http`` fields), and a body of any ``AnyValue`` kind: a string is the message, a map
  is kept as the attribute ``body`` (its ``message``/``msg`` becomes the message), anything else is
  the message as JSON text.

Answers: ``ExportLogsServiceResponse`` in the request's encoding, with ``partial_success`` when
records were rejected; errors as ``google.rpc.Status`` with the status codes the spec gives
(400 not retryable; 429/503 retryable with ``Retry-After``).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from typing import Any

import orjson
from fastapi import APIRouter
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from starlette.requests import Request
from starlette.responses import Response

from logharbor import exactjson
from logharbor.record import RecordError, otel_level
from logharbor.server.auth import principal_of
from logharbor.server.engine.store.rows import encode_record
from logharbor.server.errors import ApiError
from logharbor.server.ingest.attrnames import attribute_key, same_value
from logharbor.server.ingest.base import Backpressure, Ingestor, RecordLimits, http_error, read_body
from logharbor.server.ingest.retries import REPLAYED
from logharbor.server.ingest.writescope import write_scope
from logharbor.types import Attributes, JsonObject, RawRecord

__all__ = ["OtlpIngest", "decode_otlp"]

_INLINE_BYTES = 64 * 1024
_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
#: OTel resource/log attribute → key normalize() folds into a canonical field
_SEMCONV = {
    "service.name": "service", "service.version": "version", "deployment.environment": "env",
    "deployment.environment.name": "env", "host.name": "host", "service.instance.id": "instance",
    "http.request.method": "http.method", "http.method": "http.method",
    "http.response.status_code": "http.status", "http.status_code": "http.status",
    "url.path": "http.path", "http.target": "http.path", "client.address": "http.client_ip",
    "user_agent.original": "http.user_agent", "http.user_agent": "http.user_agent",
}


# ---------------------------------------------------------------------------------------------
# AnyValue → Python


def _any_pb(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "kvlist_value":
        return {kv.key: _any_pb(kv.value) for kv in value.kvlist_value.values}
    if kind == "array_value":
        return [_any_pb(v) for v in value.array_value.values]
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    return None


def _any_json(value: Any) -> Any:
    """One OTLP/JSON ``AnyValue``, each kind held to its JSON type as protobuf's JSON mapping
    holds it: a value of another type rejects its record, naming it (``bool("false")`` stored
    ``true``, ``"stringValue": 5`` a number, ``"doubleValue": true`` ``1.0``)."""
    if not isinstance(value, dict):
        return None
    for kind, inner in value.items():
        if kind == "stringValue":
            if not isinstance(inner, str):
                raise ValueError(f"stringValue {_shown(inner)} is not a string")
            return inner
        if kind == "intValue":
            return _json_int(inner, "intValue")
        if kind == "doubleValue":
            return _json_double(inner)
        if kind == "boolValue":
            if type(inner) is bool:
                return inner
            if inner in ("true", "false"):  # the text protobuf's JSON parsers also take
                return inner == "true"
            raise ValueError(f"boolValue {_shown(inner)} is not true or false")
        if kind == "kvlistValue":  # {"values": [...]}, or the bare list some writers send
            return _kv_json(inner if isinstance(inner, list) else (inner or {}).get("values") or [])
        if kind == "arrayValue":
            values = inner if isinstance(inner, list) else (inner or {}).get("values") or []
            return [_any_json(v) for v in values]
        if kind == "bytesValue":
            if not isinstance(inner, str):
                raise ValueError(f"bytesValue {_shown(inner)} is not base64 text")
            return inner
    return None


#: a double as protobuf's JSON mapping writes one in a string: a JSON number, or a special value
_DOUBLE_TEXT = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|NaN|-?Infinity")


def _json_double(value: Any) -> float:
    """A ``doubleValue``: a JSON number or its text (``"NaN"``, ``"Infinity"``: stored as null)."""
    if type(value) is float or type(value) is int:
        try:
            return float(value)
        except OverflowError:  # an integer of hundreds of digits: a 500 for the whole request
            raise ValueError(f"doubleValue {_shown(value)} is beyond a double's range") from None
    if isinstance(value, str) and _DOUBLE_TEXT.fullmatch(value):
        return float(value)
    raise ValueError(f"doubleValue {_shown(value)} is not a number")


def _shown(value: Any) -> str:
    """A value as an error message names it (JSON text, at most 40 characters)."""
    try:
        text = exactjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text[:40]


def _kv_json(pairs: list[Any]) -> Attributes:
    return {kv["key"]: _any_json(kv.get("value")) for kv in pairs if isinstance(kv, dict) and "key" in kv}


def _hex_id(value: Any, size: int) -> str | None:
    """An id as lowercase hex: bytes (protobuf), hex text (OTLP JSON) or base64 (protobuf JSON);
    ``""`` when unset (empty, or all zeros: the spec's invalid id), None when it is not an id."""
    if isinstance(value, bytes):
        if not value or not any(value):
            return ""
        return value.hex() if len(value) == size else None
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        return None
    if len(value) == size * 2:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = b""
        if raw:
            return raw.hex() if any(raw) else ""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != size:
        return None
    return raw.hex() if any(raw) else ""


#: (wire field, record field, attribute that keeps a value that is not an id, its size in bytes)
_IDS = (("trace_id", "trace_id", "trace_raw", 16), ("span_id", "span_id", "span_raw", 8))


def _ids(raw: RawRecord, values: tuple[Any, Any], batch: _Batch) -> None:
    """Trace and span ids; one that is not an id is kept as sent (hex of protobuf bytes, the JSON
    text) in ``trace_raw``/``span_raw`` and said in the answer's partial success."""
    for value, (name, target, keep, size) in zip(values, _IDS, strict=True):
        hex_id = _hex_id(value, size)
        if hex_id:
            raw[target] = hex_id
        elif hex_id is None:
            kept = value.hex() if isinstance(value, bytes) else value
            raw[keep] = kept if isinstance(kept, str) else orjson.dumps(kept).decode()
            batch.note(name, f"log record {batch.seen + 1}: {name} {raw[keep][:64]!r} is not "
                             f"{size} bytes of hex: kept as the attribute {keep}, the record stored")


def _kept(raw: RawRecord, observed: Any, severity_text: Any) -> None:
    """Fields of the log record that have no canonical place, kept as attributes as sent: the
    observed time (nanoseconds) and the severity text (the level comes from the number)."""
    if observed and str(observed).isdigit() and int(observed):
        raw["observed_time_unix_nano"] = int(observed)
    if severity_text and isinstance(severity_text, str):
        raw["severity_text"] = severity_text


# ---------------------------------------------------------------------------------------------
# one record


def _attributes(raw: RawRecord, attrs: Attributes, resource: RawRecord | None = None,
                batch: _Batch | None = None) -> Attributes:
    """Set ``attrs`` on ``raw`` under their record names; returns what was set, by record name.

    With ``batch`` (scope and log-record attributes, set over what the outer levels gave ``raw``):
    the inner level wins a name it shares with an outer one (a log record's ``service.name`` over
    its resource's), and the outer value is kept as ``<name>_resource`` (or ``_scope``) and said
    in the partial success — before, the record's attribute replaced it without a word.
    """
    out: Attributes = {}
    for key, value in attrs.items():
        if value is None and key in _SEMCONV:
            continue  # an empty value under a field's name: the field left out (as null is)
        # another empty AnyValue (no kind set: OTel's empty value) is the attribute null, as it
        # is inside a map or an array; it was dropped, its key with it
        target = _SEMCONV.get(key)
        if target is None or out.get(target, value) != value:
            # a second semantic-convention name of one field (http.status_code beside
            # http.response.status_code) with another value stays under its own name
            target = attribute_key(key)
        out[target] = value
    if batch is not None:
        for target, value in out.items():
            old = raw.get(target, value)
            if same_value(old, value):
                continue
            origin = "resource" if resource is None or resource.get(target, value) == old else "scope"
            kept, n = f"{target}_{origin}", 2
            while kept in raw and raw[kept] != old:
                kept, n = f"{target}_{origin}{n}", n + 1
            raw[kept] = old
            batch.note(origin, f"log record {batch.seen + 1}: the {origin} attribute {target!r} is "
                               f"set again by the {'scope' if resource is None else 'log record'}; "
                               f"the {origin}'s value kept as the attribute {kept}, the record stored")
    raw.update(out)
    return out


def _keep_shadowed(raw: RawRecord, attributes: Attributes, batch: _Batch) -> None:
    """A log record's attribute named as a field the record itself sets (``message`` beside a
    body, ``level`` beside a severity, ``timestamp``, ``trace_id`` …) was overwritten without a
    word; it is kept as ``<name>_attribute`` and said in the answer's partial success."""
    for key, value in attributes.items():
        now = raw.get(key, value)
        if same_value(now, value):
            continue
        kept, n = f"{key}_attribute", 2
        while kept in raw and raw[kept] != value:  # that name as sent keeps its value
            kept, n = f"{key}_attribute{n}", n + 1
        raw[kept] = value
        batch.note("attribute", f"log record {batch.seen + 1}: the attribute {key!r} names a field the "
                                f"record sets; kept as the attribute {kept}, the record stored")


def _body(raw: RawRecord, body: Any) -> None:
    if isinstance(body, str):
        raw["message"] = body
    elif isinstance(body, dict):
        raw["body"] = body
        text = body.get("message", body.get("msg"))
        raw["message"] = text if isinstance(text, str) else orjson.dumps(body).decode()
    elif body is not None:
        raw["message"] = body if isinstance(body, int | float) else orjson.dumps(body).decode()


class _Batch:
    """Rows and rejections of one request."""

    def __init__(self, received_ns: int, limits: RecordLimits, tenant: str | None, size: int) -> None:
        self.received_ns = received_ns
        self.limits = limits
        self.tenant = tenant
        self.size = size
        self.rows: list[bytes] = []
        self.rejected = 0
        self.first_error = ""
        #: records seen so far (numbering for messages)
        self.seen = 0
        #: values kept but not used as sent, by field (``trace_id``: not an id), and the first one
        self.notes: dict[str, int] = {}
        self.first_note = ""

    def note(self, what: str, message: str) -> None:
        self.notes[what] = self.notes.get(what, 0) + 1
        if not self.first_note:
            self.first_note = message

    def reject(self, reason: str) -> None:
        """A record that could not even be read: counted, and named if it is the first."""
        self.seen += 1
        self.rejected += 1
        if not self.first_error:
            self.first_error = f"log record rejected: {reason}"

    def add(self, raw: RawRecord) -> None:
        self.seen += 1
        problem = self.limits.check(raw, self.size)
        try:
            if problem is not None:
                raise RecordError(problem)
            self.rows.append(encode_record(raw, received_ns=self.received_ns, tenant=self.tenant))
        except (RecordError, TypeError, orjson.JSONEncodeError) as exc:
            self.rejected += 1
            if not self.first_error:
                self.first_error = f"log record rejected: {exc}"


def _from_protobuf(body: bytes, batch: _Batch) -> None:
    request = ExportLogsServiceRequest.FromString(body)
    for resource_logs in request.resource_logs:
        resource: RawRecord = {}
        _attributes(resource, {kv.key: _any_pb(kv.value) for kv in resource_logs.resource.attributes})
        for scope_logs in resource_logs.scope_logs:
            scope = dict(resource)
            if scope_logs.scope.name:
                scope["scope.name"] = scope_logs.scope.name
            if scope_logs.scope.version:
                scope["scope.version"] = scope_logs.scope.version
            _attributes(scope, {kv.key: _any_pb(kv.value) for kv in scope_logs.scope.attributes},
                        batch=batch)
            for log in scope_logs.log_records:
                raw = dict(scope)
                own = _attributes(raw, {kv.key: _any_pb(kv.value) for kv in log.attributes}, resource, batch)
                _kept(raw, log.observed_time_unix_nano, log.severity_text)
                stamp = log.time_unix_nano or log.observed_time_unix_nano
                if stamp:
                    raw["timestamp"] = stamp
                if log.severity_number:
                    _severity(raw, int(log.severity_number))
                elif log.severity_text:
                    raw["level"] = log.severity_text
                if log.HasField("body"):
                    _body(raw, _any_pb(log.body))
                _ids(raw, (log.trace_id, log.span_id), batch)
                if log.event_name:
                    raw["event.name"] = log.event_name
                _keep_shadowed(raw, own, batch)
                batch.add(raw)


def _severity(raw: RawRecord, number: int) -> None:
    """An OTel severity number becomes the level's name here: a bare number in ``level`` is read on
    pino's scale (20 is DEBUG there, ERROR in OTel)."""
    level = otel_level(number)
    if level is not None:
        raw["level"] = level
    else:
        raw["severity_number"] = number  # out of 1..24: no level (INFO), as normalize reads it


def _from_json(body: bytes, batch: _Batch) -> None:
    request = exactjson.loads(body)  # an intValue beyond 64 bits as a JSON number stays exact
    if not isinstance(request, dict):
        raise ValueError("the body must be an ExportLogsServiceRequest object")
    for resource_logs in request.get("resourceLogs") or request.get("resource_logs") or []:
        resource: RawRecord = {}
        all_scopes = resource_logs.get("scopeLogs") or resource_logs.get("scope_logs") or []
        try:
            _attributes(resource, _kv_json((resource_logs.get("resource") or {}).get("attributes") or []))
        except _UNREADABLE as exc:  # this resource's records only, not the other resources' beside it
            _reject_all(batch, all_scopes, f"its resource: {_reason(exc)}")
            continue
        for scope_logs in all_scopes:
            scope = dict(resource)
            try:
                meta = scope_logs.get("scope") or {}
                if meta.get("name"):
                    scope["scope.name"] = meta["name"]
                if meta.get("version"):
                    scope["scope.version"] = meta["version"]
                _attributes(scope, _kv_json(meta.get("attributes") or []), batch=batch)
            except _UNREADABLE as exc:
                _reject_all(batch, [scope_logs], f"its scope: {_reason(exc)}")
                continue
            for log in scope_logs.get("logRecords") or scope_logs.get("log_records") or []:
                try:
                    raw = _json_record(log, scope, batch, resource)
                except _UNREADABLE as exc:  # this record only
                    batch.reject(_reason(exc))
                    continue
                batch.add(raw)


#: what an unreadable value in one part of an OTLP/JSON request raises (that part is rejected)
_UNREADABLE = (ValueError, TypeError, AttributeError, KeyError)


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"


def _reject_all(batch: _Batch, all_scopes: Any, reason: str) -> None:
    """Reject every log record of ``all_scopes`` (a resource's or one scope's) for ``reason``."""
    for scope_logs in all_scopes if isinstance(all_scopes, list) else []:
        if not isinstance(scope_logs, dict):
            continue
        logs = scope_logs.get("logRecords") or scope_logs.get("log_records")
        for _ in logs if isinstance(logs, list) else []:
            batch.reject(reason)


def _json_int(value: Any, what: str) -> int:
    """An int64/uint64 as protobuf's JSON mapping writes it (a number, or its decimal digits)."""
    if value is None or value == "":
        return 0
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer():  # proto3 JSON: an integral number is allowed
        return int(value)
    text = value.strip() if isinstance(value, str) else ""
    if text.lstrip("-").isascii() and text.lstrip("-").isdigit():
        return int(text)
    raise ValueError(f"{what} {str(value)[:40]!r} is not an integer")


def _json_record(log: JsonObject, scope: RawRecord, batch: _Batch, resource: RawRecord) -> RawRecord:
    """One OTLP/JSON log record as the raw dict normalize() takes; raises on a value that is not
    what the spec says (``"timeUnixNano": "abc"``), which rejects this record, not the request."""
    raw = dict(scope)
    own = _attributes(raw, _kv_json(log.get("attributes") or []), resource, batch)
    _kept(raw, log.get("observedTimeUnixNano"), log.get("severityText"))
    stamp = _json_int(log.get("timeUnixNano"), "timeUnixNano") or \
        _json_int(log.get("observedTimeUnixNano"), "observedTimeUnixNano")
    if stamp:
        raw["timestamp"] = stamp
    severity = log.get("severityNumber")
    if isinstance(severity, str) and not severity.isdigit():
        severity = severity.removeprefix("SEVERITY_NUMBER_")  # protobuf JSON enum names
    if severity and severity != "UNSPECIFIED":
        if str(severity).isdigit():
            _severity(raw, int(severity))
        else:
            raw["level"] = severity
    elif log.get("severityText"):
        raw["level"] = log["severityText"]
    if "body" in log:
        _body(raw, _any_json(log["body"]))
    _ids(raw, (log.get("traceId"), log.get("spanId")), batch)
    if log.get("eventName"):
        raw["event.name"] = log["eventName"]
    _keep_shadowed(raw, own, batch)
    return raw


def decode_otlp(body: bytes, is_json: bool, received_ns: int, limits: RecordLimits,
                tenant: str | None) -> tuple[bytes, int, int, str, dict[str, int]]:
    """Store rows (joined), accepted and rejected counts, the partial-success message (the first
    rejection's reason, else the first value kept but not used, else ""), and those counts.

    Raises ValueError when the body is not an ``ExportLogsServiceRequest`` at all.
    """
    batch = _Batch(received_ns, limits, tenant, len(body))
    try:
        if is_json:
            _from_json(body, batch)
        else:
            _from_protobuf(body, batch)
    except (DecodeError, orjson.JSONDecodeError, AttributeError, TypeError, KeyError) as exc:
        raise ValueError(f"not an OTLP ExportLogsServiceRequest: {exc}") from None
    message = batch.first_error or batch.first_note
    if batch.first_error and batch.first_note:
        message = f"{batch.first_error}; {batch.first_note}"
    return b"\n".join(batch.rows), len(batch.rows), batch.rejected, message, batch.notes


# ---------------------------------------------------------------------------------------------
# HTTP


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _status(http_status: int, message: str, is_json: bool, headers: dict[str, str]) -> Response:
    """An OTLP error answer: ``google.rpc.Status`` (code, message) in the request's encoding."""
    if http_status == 507:  # a full disk: OTLP clients retry only 429, 502, 503 and 504
        http_status = 503
    code = {400: 3, 413: 3, 415: 3, 422: 3, 401: 16, 403: 7, 429: 8, 503: 14}.get(http_status, 13)
    if is_json:
        return Response(orjson.dumps({"code": code, "message": message}), status_code=http_status,
                        media_type=_JSON, headers=headers)
    text = message.encode()
    body = b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text
    return Response(body, status_code=http_status, media_type=_PROTOBUF, headers=headers)


class OtlpIngest:
    """``POST /v1/logs``: OTLP/HTTP logs in protobuf or JSON."""

    name = "otlp"

    def __init__(self, *, max_body_bytes: int, limits: RecordLimits) -> None:
        self.max_body_bytes = max_body_bytes
        self.limits = limits

    def router(self) -> APIRouter:
        router = APIRouter(tags=["ingest: otlp"])
        router.add_api_route("/v1/logs", self.export, methods=["POST"], summary="OTLP/HTTP logs")
        return router

    async def export(self, request: Request) -> Response:
        """Decode an ExportLogsServiceRequest, store its good records, answer in its encoding."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        is_json = ctype == _JSON
        try:
            return await self._export(request, is_json)
        except (ApiError, Backpressure) as exc:
            error = http_error(exc) if isinstance(exc, Backpressure) else exc
            # OTLP/HTTP clients retry only 429, 502, 503 and 504: a full disk (507) is told as 503
            status = 503 if error.status == 507 else error.status
            return _status(status, error.message, is_json, error.headers)

    async def _export(self, request: Request, is_json: bool) -> Response:
        body = await read_body(request, limit=self.max_body_bytes, content_types=(_PROTOBUF, _JSON))
        received = time.time_ns()
        principal = principal_of(request)
        tenant = principal.tenant if principal is not None else None
        ingestor: Ingestor = request.app.state.runtime.ingestor
        ticket = await ingestor.open_ticket(request, body)
        try:
            try:
                if len(body) > _INLINE_BYTES:
                    payload, accepted, rejected, reason, notes = await ingestor.offload(
                        decode_otlp, body, is_json, received, self.limits, tenant)
                else:
                    payload, accepted, rejected, reason, notes = decode_otlp(
                        body, is_json, received, self.limits, tenant)
            except ValueError as exc:
                raise ApiError(400, "bad_request", str(exc)) from None
            scope = write_scope(principal)
            if scope is not None:  # a record outside the key's scope is rejected in partial_success
                payload, accepted, refused = scope.sift_payload(payload, accepted)
                if refused:
                    rejected += len(refused)
                    outside = f"{len(refused)} log records rejected: {refused[0][1]}"
                    reason = f"{outside}; {reason}" if reason else outside
            ingestor.admit(principal, accepted)
            await ingestor.write_payload(payload, ticket=ticket)
        finally:
            ingestor.close_ticket(ticket)
        headers = REPLAYED if ticket.replay else None
        if not ticket.replay:
            ingestor.count(self.name, accepted, rejected)
            for what, n in notes.items():
                request.app.state.runtime.metrics.count_ignored(self.name, what, n)
        # a message with 0 rejected is the spec's warning form of partial success
        if is_json:
            answer: JsonObject = {}
            if reason:
                answer["partialSuccess"] = {"rejectedLogRecords": str(rejected), "errorMessage": reason}
            return Response(orjson.dumps(answer), media_type=_JSON, headers=headers)
        response = ExportLogsServiceResponse()
        if reason:
            response.partial_success.rejected_log_records = rejected
            response.partial_success.error_message = reason
        return Response(response.SerializeToString(), media_type=_PROTOBUF, headers=headers)
