"""Elasticsearch ``_bulk`` bodies to store rows: action/source pairs, ECS fields → canonical record.

Kept apart from the HTTP routes (:mod:`logharbor.server.ingest.elasticsearch`) because it is pure
CPU work that runs in the ingest worker processes for large bodies: it must be importable and
picklable on its own, with plain tuples in and out.

Shippers send ECS documents (Filebeat, Elastic Agent, Logstash) either nested
(``{"log": {"level": "error"}}``) or dotted (``{"log.level": "error"}``); both are read. Known ECS
paths become canonical fields; everything else stays an attribute with its JSON type. ECS objects
whose top-level name is also a canonical field (``host``, ``service``, ``source``, ``log``,
``event``, ``trace``) are flattened to dotted keys so that ``host.ip`` does not turn the whole
``host`` object into the host name.
"""

from __future__ import annotations

import os
import re
from base64 import urlsafe_b64encode
from typing import Any

import orjson

from logharbor import exactjson
from logharbor.record import HTTP_FIELDS, RecordError
from logharbor.server.engine.store.rows import encode_record
from logharbor.server.ingest.attrnames import attribute_key, same_value, set_beside
from logharbor.server.ingest.base import RecordLimits
from logharbor.server.ingest.es_params import BulkOptions, BulkSyntaxError, Meta, parse_action
from logharbor.server.ingest.idempotency import content_digest
from logharbor.types import JsonObject, RawRecord

__all__ = ["BulkDoc", "BulkItem", "BulkNotes", "BulkSyntaxError", "decode_bulk", "ecs_to_raw"]

#: (ECS path, key that :func:`logharbor.record.normalize` understands); the first path found wins
_ECS_PATHS: tuple[tuple[str, str], ...] = (
    ("log.level", "level"),
    ("service.name", "service"),
    # custom fields under ``fields`` (Filebeat's ``fields:``, winston-elasticsearch's meta with
    # winston's ``defaultMeta: {service}``), when no ECS service is named
    ("fields.service", "service"),
    ("service.version", "version"),
    ("service.environment", "env"),
    ("service.node.name", "instance"),
    ("host.name", "host"),
    ("host.hostname", "host"),
    ("trace.id", "trace_id"),
    ("span.id", "span_id"),
    ("event.module", "source"),
    ("http.request.method", "http.method"),
    ("url.path", "http.path"),
    ("url.original", "http.path"),
    ("http.response.status_code", "http.status"),
    ("http.response.body.bytes", "http.bytes_sent"),
    ("client.ip", "http.client_ip"),
    ("source.ip", "http.client_ip"),
    ("user_agent.original", "http.user_agent"),
    ("http.request.referrer", "http.referer"),
)
_ECS_PATHS_BY_HEAD = tuple((path.partition(".")[0], path, tuple(path.split(".")), target)
                           for path, target in _ECS_PATHS)
#: canonical fields: what is left of an ECS object of that name (``host.ip``) is stored beside
#: the field as ``host_ip`` (a dotted key would be re-nested by the store under ``host``, which
#: the canonical field already is)
_CANONICAL = frozenset((
    "timestamp", "level", "message", "service", "source", "host", "instance", "env", "version",
    "tenant", "http",
))
#: other names normalize() reads as one scalar (aliases): an object there is flattened to dotted
#: keys so that it stays an attribute (``log.logger``) instead of becoming the message
_ALIASES = frozenset((
    "time", "ts", "datetime", "date", "msg", "log", "event", "severity", "lvl", "hostname",
    "environment", "trace", "span", "request", "short_message",
))
_INDEX_NAME = re.compile(r"[^\\/*?\"<>| ,#:]{1,255}")
#: actions that carry a source line after them
_WITH_SOURCE = frozenset(("index", "create", "update"))
#: what a request's decoding ignored: ``{parameter: items}`` (``trailing`` for keys after an
#: action object); counted by the server and named in the answer's Warning header
BulkNotes = dict[str, int]

#: one answered item: (action, index, id, status, error type or "", reason or "")
BulkItem = tuple[str, str, str, int, str, str]
#: a document to store: its item's number, its store row, a digest of its source (b"" without _id)
BulkDoc = tuple[int, bytes, bytes]
#: Elasticsearch refuses longer ``_id``s
_MAX_ID_BYTES = 512


def _take(doc: RawRecord, path: str, parts: tuple[str, ...]) -> Any:
    """Remove and return the value at ``path`` (dotted or nested form); prune emptied objects."""
    if path in doc:
        return doc.pop(path)
    node = doc
    chain: list[tuple[JsonObject, str]] = []
    for part in parts[:-1]:
        child = node.get(part)
        if type(child) is not dict:
            return None
        chain.append((node, part))
        node = child
    value = node.pop(parts[-1], None)
    if value is not None:
        for parent, key in reversed(chain):
            if parent[key]:
                break
            del parent[key]
    return value


def _flatten(prefix: str, value: JsonObject, out: RawRecord) -> None:
    for key, inner in value.items():
        name = f"{prefix}.{key}"
        if isinstance(inner, dict) and inner:
            _flatten(name, inner, out)
        else:
            _set_nested(out, name, inner)


def _set_nested(doc: RawRecord, name: str, value: Any) -> None:
    """Set a value taken out of a nested object under its flat ``name``; when the document also
    has that flat name with another value (``{"http": {"method": "GET"}, "http.method": "POST"}``),
    the flat one keeps the name and the nested one is kept as ``<name>_nested`` (with ``_`` for
    the dots, as attribute names under canonical fields are): ``setdefault`` dropped it."""
    if name not in doc or same_value(doc[name], value):
        doc[name] = value
        return
    base = attribute_key(name).replace(".", "_")
    kept, n = f"{base}_nested", 2
    while kept in doc and doc[kept] != value:
        kept, n = f"{base}_nested{n}", n + 1
    doc[kept] = value


def ecs_to_raw(doc: RawRecord) -> RawRecord:
    """An ECS (or any JSON) document as the raw dict :func:`normalize` takes; ``doc`` is consumed."""
    found: RawRecord = {}
    heads = {key.partition(".")[0] for key in doc}
    for head, path, parts, target in _ECS_PATHS_BY_HEAD:
        if head not in heads:
            continue
        if path not in doc:  # the nested form: skip quickly when the next level is absent
            child = doc.get(head)
            if type(child) is not dict or parts[1] not in child:
                continue
        if target in found or (target in doc and not isinstance(doc[target], dict)):
            continue
        value = _take(doc, path, parts)
        if value is not None and not isinstance(value, dict | list):
            found[target] = value
        elif value is not None:
            doc[path] = value  # not a scalar: keep it as it came, as an attribute
    if "http.method" in found or "http.status" in found:
        value = _take(doc, "event.duration", ("event", "duration"))
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            found["http.duration_ms"] = value / 1e6  # ECS durations are nanoseconds
        elif value is not None:
            doc["event.duration"] = value
    for name in [k for k, v in doc.items() if isinstance(v, dict) and (k in _CANONICAL or k in _ALIASES)
                 and not _is_seconds_nanos(k, v)]:
        value = doc.pop(name)
        if name in _ALIASES:
            _flatten(name, value, doc)
            continue
        for key, inner in value.items():
            if name == "http" and key in HTTP_FIELDS:
                _set_nested(doc, f"http.{key}", inner)  # already the canonical shape
            elif inner not in (None, {}, []):
                _set_nested(doc, f"{name}_{key}", inner)
    doc.update(found)
    return doc


def _is_seconds_nanos(name: str, value: JsonObject) -> bool:
    """A time written as a protobuf Timestamp (Google Cloud's ``{"seconds": …, "nanos": …}``): the
    record's timestamp, read whole by normalize, not an object to flatten."""
    return name in ("timestamp", "time") and "seconds" in value and set(value) <= {"seconds", "nanos"}


class _Ids:
    """Cheap unique document ids shaped like Elasticsearch's (20 URL-safe characters)."""

    def __init__(self) -> None:
        self.prefix = urlsafe_b64encode(os.urandom(9)).decode()[:12]
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"{self.prefix}{self.n:08x}"


def _valid_index(index: str, seen: set[str]) -> bool:
    if index and _INDEX_NAME.fullmatch(index) and index[0] not in "_-+":
        seen.add(index)
        return True
    return False


def decode_bulk(
    body: bytes, default_index: str | None, received_ns: int, limits: RecordLimits,
    tenant: str | None = None, options: BulkOptions | None = None,
) -> tuple[list[BulkDoc], list[BulkItem], BulkNotes]:
    """The good documents (their item's number, store row and, when the action named an ``_id``,
    a digest of their source), one answer per bulk item, and what was ignored.

    Raises :class:`BulkSyntaxError` when an action line cannot be read (as Elasticsearch does,
    the whole request is refused then, since the pairing of the remaining lines is unknown).
    """
    options = options or BulkOptions()
    lines = body.split(b"\n")
    docs: list[BulkDoc] = []
    items: list[BulkItem] = []
    notes: BulkNotes = dict.fromkeys(options.ignored, 1)
    ids = _Ids()
    valid_indexes: set[str] = set()
    actions: dict[bytes, Meta] = {}
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i].strip()
        i += 1
        if not line:
            continue
        meta = actions.get(line)  # shippers repeat one action line: parse it once
        if meta is None:
            meta = parse_action(line, i, options)
            if len(actions) < 64:  # lines with their own _id each are not worth keeping
                actions[line] = meta
        for name in meta.ignored:
            notes[name] = notes.get(name, 0) + 1
        if meta.trailing:
            notes["trailing"] = notes.get("trailing", 0) + 1
        action = meta.action
        source: bytes | None = None
        if action in _WITH_SOURCE:
            while i < n and not lines[i].strip():
                i += 1
            if i >= n:
                raise BulkSyntaxError(f"line {i}: the {action} action has no source line")
            source = lines[i]
            i += 1
        index = meta.index or default_index or ""
        doc_id = meta.doc_id
        id_problem = _id_problem(doc_id)
        if id_problem is not None:
            items.append((action, index, doc_id or "", 400, *id_problem))
            continue
        doc_id = doc_id or ""
        if meta.refusal is not None:
            items.append((action, index, doc_id, *meta.refusal))
            continue
        if index not in valid_indexes and not _valid_index(index, valid_indexes):
            items.append((action, index, doc_id, 400, "invalid_index_name_exception",
                          f"index name [{index}] is missing or invalid"))
            continue
        assert source is not None
        problem = _decode_doc(source, index, doc_id, received_ns, limits, tenant)
        if isinstance(problem, str):
            items.append((action, index, doc_id, 400, "document_parsing_exception", problem))
            continue
        docs.append((len(items), problem, content_digest(source) if doc_id else b""))
        items.append((action, index, doc_id or ids.next(), 201, "", ""))
    return docs, items, notes


def _decode_doc(source: bytes, index: str, doc_id: str, received_ns: int, limits: RecordLimits,
                tenant: str | None) -> bytes | str:
    """One document's store row, or the reason it cannot be stored."""
    if len(source) > limits.max_line_bytes:
        return f"document is over the limit of {limits.max_line_bytes} bytes"
    try:
        doc = exactjson.loads(source)  # integers beyond 64 bits stay exact (not floats)
    except (orjson.JSONDecodeError, exactjson.ExactJSONError) as exc:
        return f"failed to parse the document: {exc}"
    if not isinstance(doc, dict):
        return f"a document must be a JSON object, got {type(doc).__name__}"
    problem = limits.check(doc, len(source))
    if problem is not None:
        return problem
    raw = ecs_to_raw(doc)
    set_beside(raw, "index", index, "bulk")  # a document's own "index" keeps the name
    if doc_id:
        set_beside(raw, "doc_id", doc_id, "bulk")
    try:
        return encode_record(raw, received_ns=received_ns, tenant=tenant)
    except RecordError as exc:
        return str(exc)
    except (TypeError, orjson.JSONEncodeError) as exc:
        return f"document cannot be stored: {exc}"


def _id_problem(doc_id: str | None) -> tuple[str, str] | None:
    """Elasticsearch's own validation of an ``_id`` given in an action (its error type and reason),
    or None."""
    if doc_id is None:
        return None
    if not doc_id:
        return "illegal_argument_exception", "if _id is specified it must not be empty"
    size = len(doc_id.encode("utf-8", "surrogatepass"))
    if size > _MAX_ID_BYTES:
        return ("action_request_validation_exception",
                f"Validation Failed: 1: id [{doc_id[:100]}...] is too long, must be no longer than "
                f"{_MAX_ID_BYTES} bytes but was: {size};")
    return None
