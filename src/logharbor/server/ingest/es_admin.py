"""The Elasticsearch calls shippers make around ``_bulk``: probes, set-up, health, refresh.

Filebeat, Logstash, Fluent Bit, Fluentd, Vector and the official clients first probe ``GET /``
(and reject a server whose answer lacks ``X-Elastic-Product: Elasticsearch`` and an 8.x
version), then may check the license or the cluster's health, install index templates, ILM
policies, ingest pipelines or data streams, and after sending ask for a refresh (pino-elasticsearch
at its end). Set-up calls are answered the way a fresh Elasticsearch would accept them and change
nothing (logharbor has one schema); ``_refresh`` is real: it answers once every record acknowledged
before it is in the store, so a search right after finds them.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from logharbor.server.errors import error_body
from logharbor.server.ingest.base import read_body
from logharbor.types import JsonObject

__all__ = ["ES_CONTENT_TYPES", "ES_VERSION", "EsAdmin", "EsResponse", "es_error", "wait_stored"]

#: the version we claim; shippers built for 7.x and 8.x both accept an 8.x server
ES_VERSION = "8.17.0"
PRODUCT = {"X-Elastic-Product": "Elasticsearch"}
ES_CONTENT_TYPES = (
    "application/x-ndjson", "application/json", "text/plain", "application/vnd.elasticsearch+x-ndjson",
    "application/vnd.elasticsearch+json",
)
_ACK = {"acknowledged": True}
#: how long ``_refresh`` (and ``refresh=wait_for``) waits for the batcher before answering
_REFRESH_TIMEOUT_S = 30.0


class EsResponse(JSONResponse):
    """JSON with the product header Elastic's clients check on every successful answer."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)

    def __init__(self, content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> None:
        super().__init__(content, status_code=status_code, headers={**PRODUCT, **(headers or {})})


def es_error(status: int, kind: str, reason: str) -> EsResponse:
    """An error both Elastic's clients (``type``/``reason``) and ours (``code``/``message``) read."""
    body = error_body(kind, reason)
    body["error"].update({"type": kind, "reason": reason,
                          "root_cause": [{"type": kind, "reason": reason}]})
    body["status"] = status
    return EsResponse(body, status_code=status)


async def wait_stored(request: Request) -> bool:
    """Wait until every record acknowledged so far is in the store (searchable); False when the
    batcher did not get there within the refresh timeout (paused, or the store is failing)."""
    runtime = request.app.state.runtime
    position = runtime.wal.durable
    return await asyncio.to_thread(runtime.batcher.wait_stored, position, _REFRESH_TIMEOUT_S)


class EsAdmin:
    """Everything of the Elasticsearch API a shipper calls besides writing documents."""

    def __init__(self, *, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.node = socket.gethostname()

    def add_routes(self, r: APIRouter) -> None:
        r.add_api_route("/", self.info, methods=["GET", "HEAD"], summary="Elasticsearch version probe")
        r.add_api_route("/_license", self.license, methods=["GET"], summary="Elasticsearch license")
        r.add_api_route("/_xpack", self.xpack, methods=["GET"], summary="Elasticsearch features")
        r.add_api_route("/_cluster/health", self.health, methods=["GET"], summary="Elasticsearch health")
        r.add_api_route("/_cluster/health/{index}", self.health, methods=["GET"], include_in_schema=False)
        r.add_api_route("/_cat/health", self.cat_health, methods=["GET"],
                        summary="Elasticsearch health (cat)")
        r.add_api_route("/_nodes", self.nodes, methods=["GET"], summary="Elasticsearch nodes")
        r.add_api_route("/_nodes/{what:path}", self.nodes, methods=["GET"], include_in_schema=False)
        for kind in ("_index_template", "_template", "_component_template", "_ilm/policy",
                     "_ingest/pipeline", "_data_stream"):
            r.add_api_route(f"/{kind}/{{name}}", self.setup, methods=["GET", "HEAD", "PUT", "POST"],
                            include_in_schema=False)
        for path in ("/_alias/{name}", "/{index}/_alias/{name}"):
            r.add_api_route(path, self.alias, methods=["GET", "HEAD"], include_in_schema=False)
        r.add_api_route("/_aliases", self.acknowledge, methods=["POST"], include_in_schema=False)
        r.add_api_route("/{index}/_alias/{name}", self.acknowledge, methods=["PUT", "POST"],
                        include_in_schema=False)
        for path in ("/_refresh", "/{index}/_refresh", "/_flush", "/{index}/_flush"):
            r.add_api_route(path, self.refresh, methods=["GET", "POST"], include_in_schema=False)
        r.add_api_route("/{index}", self.index_exists, methods=["HEAD"], include_in_schema=False)
        r.add_api_route("/{index}", self.index_create, methods=["PUT"], include_in_schema=False)

    async def info(self, request: Request) -> Response:
        """The ``GET /`` probe; a browser asking for HTML is sent to the UI instead."""
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/ui/", status_code=302)
        return EsResponse({
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
        return EsResponse({"license": {"status": "active", "uid": "logharbor", "type": "basic",
                                       "issue_date_in_millis": 0, "max_nodes": 1000,
                                       "issued_to": "logharbor", "issuer": "elasticsearch"}})

    async def xpack(self) -> Response:
        return EsResponse({"build": {"hash": "logharbor", "date": "2024-12-11"},
                           "license": {"uid": "logharbor", "type": "basic", "mode": "basic",
                                       "status": "active"},
                           "features": {}})

    def _health(self) -> JsonObject:
        return {"cluster_name": "logharbor", "status": "green", "timed_out": False,
                "number_of_nodes": 1, "number_of_data_nodes": 1, "active_primary_shards": 1,
                "active_shards": 1, "relocating_shards": 0, "initializing_shards": 0,
                "unassigned_shards": 0, "delayed_unassigned_shards": 0, "number_of_pending_tasks": 0,
                "number_of_in_flight_fetch": 0, "task_max_waiting_in_queue_millis": 0,
                "active_shards_percent_as_number": 100.0}

    async def health(self, index: str | None = None) -> Response:
        return EsResponse(self._health())

    async def cat_health(self, request: Request) -> Response:
        """``GET /_cat/health``: a text table (``?v`` for the header) or ``?format=json``."""
        now = time.time()
        row = {"epoch": str(int(now)), "timestamp": time.strftime("%H:%M:%S", time.gmtime(now)),
               "cluster": "logharbor", "status": "green", "node.total": "1", "node.data": "1",
               "shards": "1", "pri": "1", "relo": "0", "init": "0", "unassign": "0",
               "unassign.pri": "0", "pending_tasks": "0", "max_task_wait_time": "-",
               "active_shards_percent": "100.0%"}
        if request.query_params.get("format") == "json":
            return EsResponse([row])
        text = " ".join(row.values()) + "\n"
        if "v" in request.query_params:
            text = " ".join(row) + "\n" + text
        return PlainTextResponse(text, headers=PRODUCT)

    async def nodes(self) -> Response:
        return EsResponse({"_nodes": {"total": 1, "successful": 1, "failed": 0},
                           "cluster_name": "logharbor",
                           "nodes": {"logharbor": {"name": self.node, "version": ES_VERSION,
                                                   "roles": ["data", "ingest", "master"]}}})

    async def setup(self, request: Request, name: str) -> Response:
        """Templates, policies, pipelines, data streams: accepted on write, absent on read.

        A shipper that finds them absent installs them (a harmless PUT we acknowledge); one that
        finds nothing to install moves on. Either way it goes on to ``_bulk``.
        """
        if request.method in ("PUT", "POST"):
            return await self.acknowledge(request)
        return es_error(404, "resource_not_found_exception", f"[{name}] not found")

    async def acknowledge(self, request: Request) -> Response:
        await read_body(request, limit=self.max_body_bytes, content_types=ES_CONTENT_TYPES)
        return EsResponse(_ACK)

    async def alias(self, name: str) -> Response:
        """No aliases exist (``require_alias`` is refused for the same reason)."""
        return es_error(404, "aliases_not_found_exception", f"aliases [{name}] missing")

    async def refresh(self, request: Request) -> Response:
        """Real: answers once the records acknowledged before it are searchable."""
        done = await wait_stored(request)
        return EsResponse({"_shards": {"total": 1, "successful": 1 if done else 0,
                                       "failed": 0 if done else 1}})

    async def index_exists(self, index: str) -> Response:
        """``HEAD /{index}``: every index exists (records are written wherever they are sent)."""
        return Response(status_code=200, headers=PRODUCT)

    async def index_create(self, request: Request, index: str) -> Response:
        await read_body(request, limit=self.max_body_bytes, content_types=ES_CONTENT_TYPES)
        return EsResponse({**_ACK, "shards_acknowledged": True, "index": index})
