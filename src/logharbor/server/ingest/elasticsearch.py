"""Elasticsearch-compatible ingest: ``_bulk`` and the single-document calls (``/{index}/_doc``).

Documents arrive through ``_bulk``; each item is answered on its own (``201`` or a ``4xx`` with
an ES error type), so a bad document never costs the good ones beside it. The documents are
durable in the WAL before the answer is sent. What each bulk parameter does here is decided in
:mod:`~logharbor.server.ingest.es_params`; the calls around writing (probes, set-up, health,
refresh) are in :mod:`~logharbor.server.ingest.es_admin`.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from logharbor.server.auth import principal_of
from logharbor.server.errors import ApiError
from logharbor.server.ingest.base import Ingestor, RecordLimits, line_count, read_body
from logharbor.server.ingest.ecs import BulkDoc, BulkItem, BulkNotes, decode_bulk
from logharbor.server.ingest.es_admin import (
    ES_CONTENT_TYPES,
    ES_VERSION,
    EsAdmin,
    EsResponse,
    es_error,
    wait_stored,
)
from logharbor.server.ingest.es_params import IGNORED, BulkOptions, BulkSyntaxError, bulk_options
from logharbor.server.ingest.idempotency import KeyIndex, doc_digest
from logharbor.server.ingest.retries import REPLAYED, pack_entries
from logharbor.server.ingest.writescope import WriteScope, write_scope
from logharbor.types import JsonObject

__all__ = ["ES_VERSION", "ElasticsearchIngest"]

_INLINE_BYTES = 64 * 1024
#: URL parameters of the single-document calls that go into the action object
_DOC_PARAMS = ("op_type", "version", "version_type", "if_seq_no", "if_primary_term")
_TRAILING = ("keys after the action object on an action line are ignored, as Elasticsearch 8 does "
             "(it will reject them in a future version)")


def _filter(value: Any, paths: list[list[str]]) -> Any:
    """Elasticsearch's ``filter_path`` (``errors,items.*.error``) on a response object."""
    if not paths or any(not p for p in paths):
        return value
    if isinstance(value, list):
        kept = [_filter(v, paths) for v in value]
        return [v for v in kept if v not in (None, {}, [])]
    if not isinstance(value, dict):
        return value
    out: JsonObject = {}
    for key, inner in value.items():
        rests = [p[1:] for p in paths if p[0] in ("*", key)]
        if rests:
            kept = _filter(inner, rests)
            if kept not in (None, {}, []) or not isinstance(inner, dict | list):
                out[key] = kept
    return out


def bulk_response(items: list[BulkItem], took_ms: int) -> JsonObject:
    """The ``_bulk`` answer in Elasticsearch's shape (201 created, 200 updated, errors)."""
    out: list[JsonObject] = []
    errors = False
    seq = 0
    for action, index, doc_id, status, kind, reason in items:
        if status < 300:
            updated = status == 200
            out.append({action: {
                "_index": index, "_id": doc_id, "_version": 2 if updated else 1,
                "result": "updated" if updated else "created",
                "_shards": {"total": 1, "successful": 1, "failed": 0},
                "_seq_no": seq, "_primary_term": 1, "status": status}})
            seq += 1
        else:
            errors = True
            out.append({action: {"_index": index, "_id": doc_id or None, "status": status,
                                 "error": {"type": kind, "reason": reason, "index": index}}})
    return {"took": took_ms, "errors": errors, "items": out}


def known_ids(docs: list[BulkDoc], items: list[BulkItem], index: KeyIndex, scope: str,
              ) -> tuple[list[tuple[bytes, tuple[bytes, bytes]]], list[bytes], int]:
    """Which documents to store, given the ``_id``s stored within the window (and earlier in the
    same request): ``(rows with their document digest, rows without an _id, duplicates)``.

    As Elasticsearch answers: ``create`` of a known ``_id`` is a 409; ``index`` of a known ``_id``
    is ``updated`` (200) and is stored only when its source differs (an append-only store keeps
    the earlier version too, see docs/protocols.md). ``items`` is updated in place.
    """
    keyed: list[tuple[bytes, tuple[bytes, bytes]]] = []
    plain: list[bytes] = []
    here: dict[bytes, bytes] = {}
    duplicates = 0
    for number, row, content in docs:
        action, name, doc_id, _, _, _ = items[number]
        if not content:  # no _id given
            plain.append(row)
            continue
        digest = doc_digest(scope, name, doc_id)
        known = here.get(digest) or index.doc(digest)
        if known is not None:
            if action == "create":
                items[number] = (action, name, doc_id, 409, "version_conflict_engine_exception",
                                 f"[{doc_id}]: version conflict, document already exists "
                                 "(current version [1])")
                duplicates += 1
                continue
            items[number] = (action, name, doc_id, 200, "", "")
            if known == content:
                duplicates += 1
                continue  # the same document again: already stored
        here[digest] = content
        keyed.append((row, (digest, content)))
    return keyed, plain, duplicates


def refuse_outside(scope: WriteScope, docs: list[BulkDoc], items: list[BulkItem]) -> list[BulkDoc]:
    """The documents inside the key's scope; each other one's item becomes a 403
    ``security_exception`` naming its service and the scope, as Elasticsearch answers a document
    written to an index the API key has no privilege on. ``items`` is updated in place."""
    _, refused = scope.sift(row for _, row, _ in docs)
    if not refused:
        return docs
    outside = {index for index, _ in refused}
    for index, reason in refused:
        number, _, content = docs[index]
        action, name, doc_id, _, _, _ = items[number]
        items[number] = (action, name, doc_id if content else "", 403, "security_exception",
                         f"action [indices:data/write/bulk[s]] is unauthorized: {reason}")
    return [doc for index, doc in enumerate(docs) if index not in outside]


def _warning(notes: BulkNotes) -> dict[str, str]:
    """Elasticsearch's ``Warning`` header naming what was ignored (clients log it)."""
    texts = [f"bulk parameter [{name}] is ignored: {IGNORED[name]}"
             for name in sorted(notes) if name in IGNORED]
    if "trailing" in notes:
        texts.append(_TRAILING)
    if not texts:
        return {}
    return {"Warning": ", ".join(f'299 Elasticsearch-{ES_VERSION} "{text}"' for text in texts)}


class ElasticsearchIngest:
    """``POST /_bulk``, ``/{index}/_bulk``, ``/{index}/_doc``, and the start-up calls of Elastic shippers."""

    name = "elasticsearch"

    def __init__(self, *, max_body_bytes: int, limits: RecordLimits, max_records: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.limits = limits
        self.max_records = max_records
        self.admin = EsAdmin(max_body_bytes=max_body_bytes)

    def router(self) -> APIRouter:
        r = APIRouter(tags=["ingest: elasticsearch"])
        r.add_api_route("/_bulk", self.bulk, methods=["POST", "PUT"], summary="Elasticsearch bulk ingest")
        r.add_api_route("/{index}/_bulk", self.bulk, methods=["POST", "PUT"],
                        summary="Elasticsearch bulk ingest into an index")
        r.add_api_route("/{index}/_doc", self.doc, methods=["POST"],
                        summary="Elasticsearch: index one document")
        r.add_api_route("/{index}/_doc/{doc_id}", self.doc, methods=["POST", "PUT"], include_in_schema=False)
        r.add_api_route("/{index}/_create/{doc_id}", self.create, methods=["POST", "PUT"],
                        include_in_schema=False)
        self.admin.add_routes(r)
        return r

    async def bulk(self, request: Request, index: str | None = None) -> Response:
        """Decode the action/source pairs, store the good documents, answer every item."""
        started = time.monotonic()
        try:
            options = bulk_options(dict(request.query_params))
        except BulkSyntaxError as exc:
            return es_error(400, "illegal_argument_exception", str(exc))
        body = await read_body(request, limit=self.max_body_bytes, content_types=ES_CONTENT_TYPES)
        written = await self._write(request, body, index, options)
        if isinstance(written, Response):
            return written
        items, notes, replay = written
        answer = bulk_response(items, int((time.monotonic() - started) * 1000))
        filter_path = request.query_params.get("filter_path")
        if filter_path:
            answer = _filter(answer, [p.strip().split(".") for p in filter_path.split(",") if p.strip()])
        return EsResponse(answer, headers={**(REPLAYED if replay else {}), **_warning(notes)})

    async def create(self, request: Request, index: str, doc_id: str) -> Response:
        return await self.doc(request, index, doc_id, action="create")

    async def doc(self, request: Request, index: str, doc_id: str | None = None,
                  action: str = "index") -> Response:
        """One document (``POST /{index}/_doc``, ``PUT /{index}/_doc/{id}``, ``/_create/{id}``):
        the same decoding and idempotency as a one-item ``_bulk``, answered in the single shape."""
        params = dict(request.query_params)
        meta: JsonObject = {"_index": index}
        if doc_id is not None:
            meta["_id"] = doc_id
        for name in _DOC_PARAMS:
            if name in params:
                meta[name] = params.pop(name)
        try:
            options = bulk_options(params)
        except BulkSyntaxError as exc:
            return es_error(400, "illegal_argument_exception", str(exc))
        source = await read_body(request, limit=self.max_body_bytes, content_types=ES_CONTENT_TYPES)
        # a pretty-printed document on one line (a raw newline is never inside a JSON string)
        source = source.replace(b"\r", b" ").replace(b"\n", b" ")
        body = orjson.dumps({action: meta}) + b"\n" + source + b"\n"
        written = await self._write(request, body, None, options)
        if isinstance(written, Response):
            return written
        ((_, name, given_id, status, kind, reason),), notes, replay = written
        headers = {**(REPLAYED if replay else {}), **_warning(notes)}
        if status >= 300:
            error = es_error(status, kind, reason)
            error.headers.update(headers)
            return error
        updated = status == 200
        headers["Location"] = f"/{name}/_doc/{given_id}"
        return EsResponse({"_index": name, "_id": given_id, "_version": 2 if updated else 1,
                           "result": "updated" if updated else "created",
                           "_shards": {"total": 1, "successful": 1, "failed": 0},
                           "_seq_no": 0, "_primary_term": 1}, status_code=status, headers=headers)

    async def _write(self, request: Request, body: bytes, index: str | None, options: BulkOptions,
                     ) -> tuple[list[BulkItem], BulkNotes, bool] | Response:
        """Decode, store and count; the items, what was ignored and whether this was a replay
        (or the whole request's error answer)."""
        lines = line_count(body)
        if lines > 2 * self.max_records:
            raise ApiError(413, "too_many_records",
                           f"{lines} lines in one request, over the limit of {2 * self.max_records}")
        received = time.time_ns()
        principal = principal_of(request)
        tenant = principal.tenant if principal is not None else None
        ingestor: Ingestor = request.app.state.runtime.ingestor
        ingestor.admit(principal, lines // 2)
        try:
            if len(body) > _INLINE_BYTES:
                docs, items, notes = await ingestor.offload(decode_bulk, body, index, received, self.limits,
                                                            tenant, options)
            else:
                docs, items, notes = decode_bulk(body, index, received, self.limits, tenant, options)
        except BulkSyntaxError as exc:
            return es_error(400, "illegal_argument_exception", str(exc))
        if not items:
            return es_error(400, "action_request_validation_exception",
                            "Validation Failed: 1: no requests added;")
        scope = write_scope(principal)
        if scope is not None:
            docs = refuse_outside(scope, docs, items)
        ticket = await ingestor.open_ticket(request, body)
        try:
            if ticket.replay:  # answered as when it was stored (its _ids as new ones, see docs)
                stored = 0
            elif ingestor.keys.enabled:
                scope = tenant or ""
                await ingestor.gate.hold(ticket, [doc_digest(scope, items[n][1], items[n][2])
                                                  for n, _, content in docs if content])
                keyed, plain, duplicates = known_ids(docs, items, ingestor.keys, scope)
                ingestor.keys.duplicate_docs += duplicates
                stored = len(keyed) + len(plain)
                await ingestor.write_entries(pack_entries(ticket, keyed, plain), ticket)
            else:
                stored = len(docs)
                await ingestor.write_payload(b"\n".join(row for _, row, _ in docs))
        finally:
            ingestor.close_ticket(ticket)
        failed = sum(1 for item in items if item[3] >= 300)
        if not ticket.replay:
            ingestor.count(self.name, stored, failed)
            metrics = request.app.state.runtime.metrics
            for what, n in notes.items():
                metrics.count_ignored(self.name, what, n)
        if options.refresh:
            await wait_stored(request)
        return items, notes, ticket.replay
