"""Elasticsearch-compatible ingest: ``_bulk`` plus the calls shippers make before they send.

Filebeat, Logstash, Fluent Bit, Fluentd, Vector and the official clients first probe ``GET /``
(and reject a server whose answer lacks ``X-Elastic-Product: Elasticsearch`` and an 8.x
version), then may check the license, install index templates, ILM policies, ingest pipelines or
data streams. Those set-up calls are answered the way a fresh Elasticsearch would accept them, and
change nothing: logharbor has one schema. Documents then arrive through ``_bulk``; each item is
answered on its own (``201`` or a ``400`` with an ES error type), so a bad document never costs
the good ones beside it. The documents are durable in the WAL before the answer is sent.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from logharbor.server.auth import principal_of
from logharbor.server.errors import ApiError, error_body
from logharbor.server.ingest.base import Ingestor, RecordLimits, read_body
from logharbor.server.ingest.ecs import BulkDoc, BulkItem, BulkSyntaxError, decode_bulk
from logharbor.server.ingest.idempotency import KeyIndex, doc_digest
from logharbor.server.ingest.retries import REPLAYED, pack_entries

__all__ = ["ES_VERSION", "ElasticsearchIngest"]

#: the version we claim; shippers built for 7.x and 8.x both accept an 8.x server
ES_VERSION = "8.17.0"
_PRODUCT = {"X-Elastic-Product": "Elasticsearch"}
_INLINE_BYTES = 64 * 1024
_ES_CONTENT_TYPES = (
    "application/x-ndjson", "application/json", "text/plain", "application/vnd.elasticsearch+x-ndjson",
    "application/vnd.elasticsearch+json",
)
_ACK = {"acknowledged": True}


class _EsResponse(JSONResponse):
    """JSON with the product header Elastic's clients check on every successful answer."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)

    def __init__(self, content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(content, status_code=status_code, headers={**_PRODUCT, **(headers or {})})


def _es_error(status: int, kind: str, reason: str) -> _EsResponse:
    """An error both Elastic's clients (``type``/``reason``) and ours (``code``/``message``) read."""
    body = error_body(kind, reason)
    body["error"].update({"type": kind, "reason": reason,
                          "root_cause": [{"type": kind, "reason": reason}]})
    body["status"] = status
    return _EsResponse(body, status_code=status)


def _filter(value: Any, paths: list[list[str]]) -> Any:
    """Elasticsearch's ``filter_path`` (``errors,items.*.error``) on a response object."""
    if not paths or any(not p for p in paths):
        return value
    if isinstance(value, list):
        kept = [_filter(v, paths) for v in value]
        return [v for v in kept if v not in (None, {}, [])]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, inner in value.items():
        rests = [p[1:] for p in paths if p[0] in ("*", key)]
        if rests:
            kept = _filter(inner, rests)
            if kept not in (None, {}, []) or not isinstance(inner, dict | list):
                out[key] = kept
    return out


def bulk_response(items: list[BulkItem], took_ms: int) -> dict[str, Any]:
    """The ``_bulk`` answer in Elasticsearch's shape (201 created, 200 updated, errors)."""
    out: list[dict[str, Any]] = []
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


class ElasticsearchIngest:
    """``POST /_bulk`` and ``/{index}/_bulk``, and the start-up calls of Elastic shippers."""

    name = "elasticsearch"

    def __init__(self, *, max_body_bytes: int, limits: RecordLimits, max_records: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.limits = limits
        self.max_records = max_records
        self.node = socket.gethostname()

    def router(self) -> APIRouter:
        r = APIRouter(tags=["ingest: elasticsearch"])
        r.add_api_route("/", self.info, methods=["GET", "HEAD"], summary="Elasticsearch version probe")
        r.add_api_route("/_bulk", self.bulk, methods=["POST", "PUT"], summary="Elasticsearch bulk ingest")
        r.add_api_route("/{index}/_bulk", self.bulk, methods=["POST", "PUT"],
                        summary="Elasticsearch bulk ingest into an index")
        r.add_api_route("/_license", self.license, methods=["GET"], summary="Elasticsearch license")
        r.add_api_route("/_xpack", self.xpack, methods=["GET"], summary="Elasticsearch features")
        r.add_api_route("/_cluster/health", self.health, methods=["GET"], summary="Elasticsearch health")
        r.add_api_route("/_nodes", self.nodes, methods=["GET"], summary="Elasticsearch nodes")
        r.add_api_route("/_nodes/{what:path}", self.nodes, methods=["GET"], include_in_schema=False)
        for kind in ("_index_template", "_template", "_component_template", "_ilm/policy",
                     "_ingest/pipeline", "_data_stream"):
            r.add_api_route(f"/{kind}/{{name}}", self.setup, methods=["GET", "HEAD", "PUT", "POST"],
                            include_in_schema=False)
        r.add_api_route("/{index}", self.index_exists, methods=["HEAD"], include_in_schema=False)
        r.add_api_route("/{index}", self.index_create, methods=["PUT"], include_in_schema=False)
        return r

    async def info(self, request: Request) -> Response:
        """The ``GET /`` probe; a browser asking for HTML is sent to the UI instead."""
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/ui/", status_code=302)
        return _EsResponse({
            "name": self.node, "cluster_name": "logharbor", "cluster_uuid": "logharbor",
            "version": {
                "number": ES_VERSION, "build_flavor": "default", "build_type": "logharbor",
                "build_hash": "logharbor", "build_date": "2024-12-11T12:08:05.663969764Z",
                "build_snapshot": False, "lucene_version": "9.12.0",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": "You Know, for Search",
        })

    async def license(self) -> Response:
        return _EsResponse({"license": {"status": "active", "uid": "logharbor", "type": "basic",
                                        "issue_date_in_millis": 0, "max_nodes": 1000,
                                        "issued_to": "logharbor", "issuer": "elasticsearch"}})

    async def xpack(self) -> Response:
        return _EsResponse({"build": {"hash": "logharbor", "date": "2024-12-11"},
                            "license": {"uid": "logharbor", "type": "basic", "mode": "basic",
                                        "status": "active"},
                            "features": {}})

    async def health(self) -> Response:
        return _EsResponse({"cluster_name": "logharbor", "status": "green", "timed_out": False,
                            "number_of_nodes": 1, "number_of_data_nodes": 1})

    async def nodes(self) -> Response:
        return _EsResponse({"_nodes": {"total": 1, "successful": 1, "failed": 0},
                            "cluster_name": "logharbor",
                            "nodes": {"logharbor": {"name": self.node, "version": ES_VERSION,
                                                    "roles": ["data", "ingest", "master"]}}})

    async def setup(self, request: Request, name: str) -> Response:
        """Templates, policies, pipelines, data streams: accepted on write, absent on read.

        A shipper that finds them absent installs them (a harmless PUT we acknowledge); one that
        finds nothing to install moves on. Either way it goes on to ``_bulk``.
        """
        if request.method in ("PUT", "POST"):
            await read_body(request, limit=self.max_body_bytes, content_types=_ES_CONTENT_TYPES)
            return _EsResponse(_ACK)
        return _es_error(404, "resource_not_found_exception", f"[{name}] not found")

    async def index_exists(self, index: str) -> Response:
        """``HEAD /{index}``: every index exists (records are written wherever they are sent)."""
        return Response(status_code=200, headers=_PRODUCT)

    async def index_create(self, request: Request, index: str) -> Response:
        await read_body(request, limit=self.max_body_bytes, content_types=_ES_CONTENT_TYPES)
        return _EsResponse({**_ACK, "shards_acknowledged": True, "index": index})

    async def bulk(self, request: Request, index: str | None = None) -> Response:
        """Decode the action/source pairs, store the good documents, answer every item."""
        started = time.monotonic()
        body = await read_body(request, limit=self.max_body_bytes, content_types=_ES_CONTENT_TYPES)
        lines = body.count(b"\n") + 1
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
                docs, items = await ingestor.offload(decode_bulk, body, index, received, self.limits, tenant)
            else:
                docs, items = decode_bulk(body, index, received, self.limits, tenant)
        except BulkSyntaxError as exc:
            return _es_error(400, "illegal_argument_exception", str(exc))
        if not items:
            return _es_error(400, "action_request_validation_exception",
                             "Validation Failed: 1: no requests added;")
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
        answer = bulk_response(items, int((time.monotonic() - started) * 1000))
        filter_path = request.query_params.get("filter_path")
        if filter_path:
            answer = _filter(answer, [p.strip().split(".") for p in filter_path.split(",") if p.strip()])
        return _EsResponse(answer, headers=REPLAYED if ticket.replay else None)

