"""Loki push: ``POST /loki/api/v1/push`` in JSON or protobuf+snappy, as Promtail/Alloy/Vector send.

The protobuf form is Loki's ``logproto.PushRequest`` (``pkg/push/push.proto``)::

    message PushRequest      { repeated StreamAdapter streams = 1; }
    message StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
    message EntryAdapter     { google.protobuf.Timestamp timestamp = 1; string line = 2;
                               repeated LabelPairAdapter structuredMetadata = 3; }
    message LabelPairAdapter { string name = 1; string value = 2; }

Loki does not publish a Python package, so the message classes are built at import time from a
``FileDescriptorProto`` written here field by field (the ``protobuf`` runtime then parses in C;
no generated code is vendored). The body is snappy *block* format, decompressed with ``cramjam``
after checking the length it declares against the body limit.

Mapping: each stream label becomes a field of every entry of the stream (``service_name``, else
the first of ``service``, ``app``, ``application``, ``name``, ``container``, ``component``,
``job`` — Loki's own service discovery order — gives ``service``; ``level``/``host``/``env`` labels
fold into their canonical fields); structured metadata is kept the same way (``trace_id`` becomes
the canonical trace id); the line is the message; timestamps are nanosecond strings (JSON) or
``Timestamp`` messages. A line that is a JSON object or wholly ``key=value`` pairs also gives its
keys as attributes and, when the stream has no level, its level (:mod:`logharbor.server.features.loki.lines`);
the line stays the message as sent. The stream wins a name: a line key named as a label, structured
metadata or a field the entry sets (``app`` beside an ``app`` label, ``level`` beside a ``level``
label, ``timestamp``) with another value is kept as ``<name>_extracted`` — the name Loki's own
``| json`` and ``| logfmt`` give such a key — so no value replaces another (a line's ``message`` key
is not copied: the whole line is the message). Success is ``204``; entries that cannot be stored
are reported in a ``400`` after every good entry beside them has been stored (Loki's
partial-failure behaviour).
"""

from __future__ import annotations

import re
import time
from typing import Any

import cramjam
import orjson
from fastapi import APIRouter
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.message import DecodeError
from starlette.requests import Request
from starlette.responses import Response

from logharbor import exactjson
from logharbor.record import RecordError
from logharbor.server.auth import principal_of
from logharbor.server.engine.store.rows import encode_record
from logharbor.server.errors import ApiError
from logharbor.server.features.loki.lines import line_fields
from logharbor.server.ingest.attrnames import attribute_key, same_value
from logharbor.server.ingest.base import Ingestor, ItemError, RecordLimits, read_body
from logharbor.server.ingest.retries import REPLAYED
from logharbor.server.ingest.writescope import item_numbers, write_scope
from logharbor.types import RawRecord

__all__ = ["LokiIngest", "PushRequest", "decode_push", "parse_labels"]

_INLINE_BYTES = 64 * 1024
_SERVICE_LABELS = ("service_name", "service", "app", "application", "name", "container",
                   "component", "job")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(,|\})')
_UNESCAPE = re.compile(r"\\(.)")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"'}
#: fields every entry sets itself (its line, its time, the server's receive time, the line's own
#: fields): a label or metadata of that name is kept as ``<name>_label`` / ``<name>_metadata``
_SET_BY_ENTRY = ("message", "timestamp", "observed_timestamp", "attributes")


def _push_request_class() -> Any:
    """``logproto.PushRequest`` built from a descriptor defined here (see the module docstring)."""
    T = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="logharbor/loki_push.proto", package="logproto", syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"])

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        msg = file.message_type.add(name=name)
        for fname, number, ftype, label, type_name in fields:
            field = msg.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                field.type_name = type_name

    one, many = T.LABEL_OPTIONAL, T.LABEL_REPEATED
    message("PushRequest", ("streams", 1, T.TYPE_MESSAGE, many, ".logproto.StreamAdapter"))
    message("StreamAdapter", ("labels", 1, T.TYPE_STRING, one, ""),
            ("entries", 2, T.TYPE_MESSAGE, many, ".logproto.EntryAdapter"),
            ("hash", 3, T.TYPE_UINT64, one, ""))
    message("EntryAdapter", ("timestamp", 1, T.TYPE_MESSAGE, one, ".google.protobuf.Timestamp"),
            ("line", 2, T.TYPE_STRING, one, ""),
            ("structuredMetadata", 3, T.TYPE_MESSAGE, many, ".logproto.LabelPairAdapter"))
    message("LabelPairAdapter", ("name", 1, T.TYPE_STRING, one, ""), ("value", 2, T.TYPE_STRING, one, ""))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(timestamp_pb2.DESCRIPTOR.serialized_pb))
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("logproto.PushRequest"))


PushRequest = _push_request_class()


def parse_labels(text: str) -> dict[str, str]:
    """Prometheus label text ``{job="x", app="a\\"b"}`` as a dict; ValueError when malformed."""
    text = text.strip()
    if not text.startswith("{"):
        raise ValueError(f"labels {text[:80]!r} do not start with '{{'")
    out: dict[str, str] = {}
    pos = 1
    if text[1:].strip() == "}":
        return out
    while pos < len(text):
        m = _LABEL.match(text, pos)
        if m is None:
            raise ValueError(f"labels {text[:80]!r} are malformed at position {pos}")
        value = m[2]
        out[m[1]] = _UNESCAPE.sub(lambda e: _ESCAPES.get(e[1], e[1]), value) if "\\" in value else value
        pos = m.end()
        if m[3] == "}":
            if text[pos:].strip():
                raise ValueError(f"labels {text[:80]!r} have text after '}}'")
            return out
    raise ValueError(f"labels {text[:80]!r} are not closed")


#: labels meant to become canonical fields (metadata of those names is the entry's own value)
_FOLDED = frozenset(("level", "host", "env", "service", "trace_id", "span_id", "instance", "version"))


def _stream_fields(labels: dict[str, str]) -> RawRecord:
    """The fields every entry of a stream starts from."""
    raw: RawRecord = {attribute_key(k): v for k, v in labels.items()}
    for name in _SERVICE_LABELS:
        value = labels.get(name)
        if value:
            raw["service"] = value
            break
    if "detected_level" in labels and "level" not in labels:
        raw["level"] = labels["detected_level"]
    return raw


class _Entries:
    """Rows and item errors of one push; items are numbered across streams, from 1."""

    def __init__(self, received_ns: int, limits: RecordLimits, tenant: str | None) -> None:
        self.received_ns = received_ns
        self.limits = limits
        self.tenant = tenant
        self.rows: list[bytes] = []
        self.errors: list[ItemError] = []
        self.n = 0
        self.renamed = 0  # labels and metadata kept under another name (they named a set field)
        self.extracted = 0  # line keys kept as ``<name>_extracted`` (the stream had that name)

    def _keep(self, raw: RawRecord, name: str, value: Any, suffix: str) -> None:
        kept, n = f"{name}_{suffix}", 2
        while kept in raw and raw[kept] != value:  # a label already of that name keeps its value
            kept, n = f"{name}_{suffix}{n}", n + 1
        raw[kept] = value
        self.renamed += 1

    def add(self, base: RawRecord, stamp: Any, line: str, metadata: dict[str, str] | None) -> None:
        self.n += 1
        raw = dict(base)
        own = {"message": line, "timestamp": str(stamp) if stamp is not None else None}
        for name in _SET_BY_ENTRY:
            if name in raw:
                value = raw.pop(name)
                if own.get(name) != value:
                    self._keep(raw, name, value, "label")
        if metadata:
            for key, value in metadata.items():
                name = attribute_key(key)
                # a name the stream already gave another value (a label, or a label kept under
                # this name above) is kept beside it; metadata of a folded label is the entry's own
                if name in _SET_BY_ENTRY or (name in raw and raw[name] != value
                                             and (name not in base or name not in _FOLDED)):
                    if own.get(name) != value:
                        self._keep(raw, name, value, "metadata")
                    continue
                raw[name] = value
        fields, level = line_fields(line)  # a JSON/logfmt line: its keys as attributes, the line kept
        if fields is not None:
            # merged under the labels, never folded into canonical fields; a key the stream or
            # the entry already set is kept beside it (before the line's level is taken)
            raw["attributes"] = self._line_keys(raw, fields, stamp)
            # the line's level; a `level` key of the line is folded by the record itself (setting
            # it here too would make two values of one name: docs/record.md)
            if level is not None and "level" not in raw and "level" not in fields:
                raw["level"] = level
        raw["message"] = line
        raw["timestamp"] = stamp
        problem = self.limits.check(raw, len(line) + 1024)
        try:
            if problem is not None:
                raise RecordError(problem)
            self.rows.append(encode_record(raw, received_ns=self.received_ns, tenant=self.tenant))
        except (RecordError, TypeError, orjson.JSONEncodeError) as exc:
            self.errors.append(ItemError(self.n, str(exc)))

    def _line_keys(self, raw: RawRecord, fields: dict[str, Any], stamp: Any) -> dict[str, Any]:
        """The line's keys, a key the entry already has with another value (a label, metadata,
        a folded field such as ``level`` or ``service``, the entry's own ``timestamp``) renamed
        ``<name>_extracted`` (``…_extracted2`` when that name is taken by another value).

        Why: the line's keys are merged beneath the entry's fields, so a colliding key vanished
        from the stored attributes without a word (``app`` label ``web``, line ``"app": "api"``:
        ``app:api`` found nothing). The stream keeps the name, as in Loki, where the stream label
        stays ``app`` and ``| json`` calls the line's key ``app_extracted``.
        """
        own = {"timestamp": stamp, "observed_timestamp": None, "attributes": None}
        out: dict[str, Any] = {}
        moved: list[tuple[str, Any]] = []
        for key, value in fields.items():
            if key == "message":  # the line itself is the message, byte for byte: its key is in it
                continue
            if key in own or (key in raw and not same_value(raw[key], value)):
                if key in own and same_value(own[key], value):
                    continue
                moved.append((key, value))
            else:
                out[key] = value
        for key, value in moved:
            kept, n = f"{key}_extracted", 2
            while (kept in out and out[kept] != value) or (kept in raw and raw[kept] != value):
                kept, n = f"{key}_extracted{n}", n + 1
            out[kept] = value
            self.extracted += 1
        return out

    def fail(self, count: int, reason: str) -> None:
        for _ in range(count):
            self.n += 1
            self.errors.append(ItemError(self.n, reason))


def label_value(value: Any) -> str:
    """A JSON label or structured-metadata value as Loki reads it: a string's content, anything
    else its JSON text (``true``, ``1e+300``, ``{"a":1}``, ``null``), as Loki's push decoder
    takes the raw value. ``str()`` made Python's spelling of it (``True``, ``None``,
    ``{'a': 1}``) and stored that."""
    return value if isinstance(value, str) else exactjson.dumps(value).decode()


def _from_json(body: bytes, out: _Entries) -> None:
    request = exactjson.loads(body)  # a label or metadata integer beyond 64 bits stays its digits
    if not isinstance(request, dict) or not isinstance(request.get("streams"), list):
        raise ValueError('the body must be {"streams": [...]}')
    for stream in request["streams"]:
        values = stream.get("values") if isinstance(stream, dict) else None
        if not isinstance(values, list):
            raise ValueError('each stream needs "values": [[ts, line], ...]')
        labels = stream.get("stream") or {}
        if not isinstance(labels, dict):
            out.fail(len(values), "stream labels must be an object")
            continue
        base = _stream_fields({k: label_value(v) for k, v in labels.items()})
        for value in values:
            if not isinstance(value, list) or len(value) not in (2, 3) or not isinstance(value[1], str):
                out.fail(1, "an entry must be [timestamp, line] or [timestamp, line, metadata]")
                continue
            stamp = value[0]
            if not (isinstance(stamp, str) and stamp.isdigit()):
                out.fail(1, f"timestamp {stamp!r} is not a string of nanoseconds")
                continue
            meta = value[2] if len(value) == 3 else None
            if meta is not None and not isinstance(meta, dict):
                out.fail(1, "structured metadata must be an object")
                continue
            out.add(base, int(stamp), value[1], {k: label_value(v) for k, v in (meta or {}).items()})


def _from_protobuf(body: bytes, out: _Entries) -> None:
    request = PushRequest.FromString(body)
    for stream in request.streams:
        try:
            base = _stream_fields(parse_labels(stream.labels))
        except ValueError as exc:
            out.fail(len(stream.entries), str(exc))
            continue
        for entry in stream.entries:
            stamp = entry.timestamp.seconds * 1_000_000_000 + entry.timestamp.nanos
            meta = {kv.name: kv.value for kv in entry.structuredMetadata}
            out.add(base, stamp if stamp > 0 else None, entry.line, meta)


def decode_push(body: bytes, is_protobuf: bool, received_ns: int, limits: RecordLimits,
                tenant: str | None) -> tuple[bytes, int, list[tuple[int, str]], int, int]:
    """Store rows (joined), how many, ``(entry number, reason)`` per rejected entry, how many
    labels or metadata were kept under another name (``<name>_label``: they named a field the
    entry sets itself, or metadata a label of the stream with another value), and how many keys
    of JSON/logfmt lines were kept as ``<name>_extracted`` (the entry had that name already).

    ``body`` is already decompressed. Raises ValueError when it is not a push request at all.
    """
    out = _Entries(received_ns, limits, tenant)
    try:
        (_from_protobuf if is_protobuf else _from_json)(body, out)
    except (DecodeError, ValueError) as exc:  # JSONDecodeError, ExactJSONError
        raise ValueError(f"not a Loki push request: {exc}") from None
    return (b"\n".join(out.rows), len(out.rows), [(e.line, e.error) for e in out.errors], out.renamed,
            out.extracted)


def snappy_block(body: bytes, limit: int) -> bytes:
    """Decompress snappy block format, refusing (413) a declared length over ``limit``."""
    size = shift = 0
    for i, byte in enumerate(body[:10]):
        size |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
        if i == 9:
            raise ApiError(400, "bad_encoding", "snappy length prefix is malformed")
    if size > limit:
        raise ApiError(413, "body_too_large", f"decompressed body is over {limit} bytes")
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise ApiError(400, "bad_encoding", f"body is not valid snappy: {exc}") from None


class LokiIngest:
    """``POST /loki/api/v1/push``: what Promtail, Alloy, Vector and Fluent Bit's loki output send."""

    name = "loki"

    def __init__(self, *, max_body_bytes: int, limits: RecordLimits) -> None:
        self.max_body_bytes = max_body_bytes
        self.limits = limits

    def router(self) -> APIRouter:
        router = APIRouter(tags=["ingest: loki"])
        router.add_api_route("/loki/api/v1/push", self.push, methods=["POST"], summary="Loki push")
        return router

    async def push(self, request: Request) -> Response:
        """Store the entries of a push; 204, or 400 naming the entries that were not stored."""
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        is_protobuf = ctype in ("application/x-protobuf", "application/protobuf")
        body = await read_body(request, limit=self.max_body_bytes,
                               content_types=("application/json", "application/x-protobuf",
                                              "application/protobuf"))
        if is_protobuf:
            body = snappy_block(body, self.max_body_bytes)
        received = time.time_ns()
        principal = principal_of(request)
        tenant = principal.tenant if principal is not None else None
        ingestor: Ingestor = request.app.state.runtime.ingestor
        ticket = await ingestor.open_ticket(request, body)
        try:
            try:
                if len(body) > _INLINE_BYTES:
                    payload, accepted, errors, renamed, extracted = await ingestor.offload(
                        decode_push, body, is_protobuf, received, self.limits, tenant)
                else:
                    payload, accepted, errors, renamed, extracted = decode_push(
                        body, is_protobuf, received, self.limits, tenant)
            except ValueError as exc:
                raise ApiError(400, "bad_request", str(exc)) from None
            scope = write_scope(principal)
            if scope is not None:  # an entry of a service outside the key's scope is that entry's error
                numbers = item_numbers(accepted + len(errors), (n for n, _ in errors))
                payload, accepted, refused = scope.sift_payload(payload, accepted)
                errors = sorted([*errors, *((numbers[i], why) for i, why in refused)])
            ingestor.admit(principal, accepted)
            await ingestor.write_payload(payload, ticket=ticket)
        finally:
            ingestor.close_ticket(ticket)
        headers = REPLAYED if ticket.replay else None
        if not ticket.replay:
            ingestor.count(self.name, accepted, len(errors))
            if renamed:
                request.app.state.runtime.metrics.count_ignored(self.name, "label", renamed)
            if extracted:
                request.app.state.runtime.metrics.count_ignored(self.name, "line_key", extracted)
        if errors:
            raise ApiError(400, "entries_rejected",
                           f"{len(errors)} entries were rejected, {accepted} stored (entry {errors[0][0]}: "
                           f"{errors[0][1]})",
                           detail=[{"entry": n, "error": e} for n, e in errors[:100]], headers=headers)
        return Response(status_code=204, headers=headers)
