"""A test double of a ClickHouse server's HTTP interface that executes the SQL on chDB.

No modern ClickHouse server can be installed on the test machines, so the ClickHouse store is
tested against this: a real HTTP server process speaking the documented interface
(https://clickhouse.com/docs/interfaces/http) in front of chDB, which *is* the ClickHouse engine.
What it implements, because clickhouse-connect sends or reads it:

- the query in the ``query`` URL parameter, in the body, or both (then the two are concatenated,
  ``query`` first: how an ``INSERT … FORMAT X`` carries its data);
- ``param_<name>`` query parameters (passed as text, parsed by the engine per declared type), in
  the URL or as multipart/form-data fields with the query (clickhouse-connect's
  ``form_encode_query_params``, which the store uses so large parameters are not URL-bound);
- ``database``, ``default_format`` (a ``FORMAT`` clause in the query wins), ``query_id``;
- every other URL parameter as a setting for this request only (``SET`` before, ``DEFAULT`` after);
- Basic auth, ``X-ClickHouse-User``/``X-ClickHouse-Key`` and ``user``/``password`` parameters;
- request bodies in gzip, deflate or zstd (``Content-Encoding``), responses in gzip or zstd when
  ``enable_http_compression=1`` and ``Accept-Encoding`` asks;
- response headers ``X-ClickHouse-Query-Id``, ``-Format``, ``-Timezone``, ``-Server-Display-Name``,
  ``-Summary`` (read/written rows and bytes), and on error ``X-ClickHouse-Exception-Code`` with
  the engine's ``Code: N. DB::Exception: …`` text;
- external data (files of a multipart/form-data body, with ``<name>_format`` and
  ``<name>_structure``): each a temporary table of the request's connection, as ClickHouse makes
  one for the query (not capped per field: ``http_max_multipart_form_data_size`` bounds it);
- ``GET /ping`` and ``GET /`` answering ``Ok.``;
- the server's caps on what travels outside the body: a URI longer than ``http_max_uri_size``
  (1 MiB) and a URL parameter or form field value longer than ``http_max_field_value_size``
  (128 KiB) are refused, as ClickHouse refuses them (both defaults as the engine's own
  ``system.settings`` states them), so code that would pass large data as a parameter fails here
  as it would on a real server.

Clusters: each ``--cluster NAME`` is defined in the engine's config as one shard of one replica,
this node, so the real ``Distributed`` engine runs (sharding-key expression, foreground inserts,
``cluster()`` table functions) — a local shard is served in-process. What a double cannot do is
the rest of a cluster: ``ON CLUSTER`` is removed (it needs the Keeper DDL queue) and
``ReplicatedMergeTree(…)`` becomes ``MergeTree`` (no Keeper, no second replica). Replication,
routing between several shards and Keeper behaviour are therefore only exercised by the
``clickhouse`` marked test against a real cluster (``LOGHARBOR_CLICKHOUSE_URL``). ``client_protocol_version``
is ignored (chDB writes Native as a current server does).

Run: ``python -m tests.cluster.chdouble --port N --path DIR [--user U --password P]``.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import os
import queue
import re
import sys
import threading
import uuid
import zlib
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import zstandard

from logharbor.server.engine.store.chparams import encode_params  # chDB reads parameters escaped

_RESERVED = {"query", "database", "default_format", "query_id", "session_id", "session_timeout",
             "session_check", "user", "password", "quota_key", "compress", "decompress", "buffer_size",
             "wait_end_of_query", "client_protocol_version", "role"}
_FORMAT_AT_END = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*$", re.IGNORECASE)
_INSERT = re.compile(r"^\s*INSERT\b", re.IGNORECASE)
_INSERT_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*\n?", re.IGNORECASE)
_ON_CLUSTER = re.compile(r"\s+ON\s+CLUSTER\s+(`[^`]*`|'[^']*'|[A-Za-z0-9_{}.-]+)", re.IGNORECASE)
_REPLICATED = re.compile(r"\bReplicated(\w*MergeTree)\s*\((?:[^()]|\([^()]*\))*\)", re.IGNORECASE)
_CODE = re.compile(r"Code: (\d+)\.")
#: ClickHouse's defaults (``system.settings``): a longer URI or field value is refused
MAX_URI_SIZE = 1 << 20
MAX_FIELD_VALUE_SIZE = 128 * 1024
_STATUS = {"62": 400, "60": 404, "81": 404, "516": 401, "115": 400, "36": 400, "47": 400}


def rewrite_for_one_node(sql: str) -> str:
    """The cluster DDL a single chDB node can run (see the module docstring for what is lost)."""
    text = _ON_CLUSTER.sub("", sql)
    return _REPLICATED.sub(lambda m: m.group(1), text)


class Engine:
    """A pool of chDB connections on one data path; a request holds one for its whole run."""

    def __init__(self, path: str, clusters: list[str], size: int = 4) -> None:
        import chdb

        target = path
        if clusters:
            # each cluster is one shard of one replica: this node (a local shard is written and
            # read in-process, so the real Distributed engine works without a TCP server)
            Path(path).mkdir(parents=True, exist_ok=True)
            config = Path(path).parent / "chdouble-config.xml"
            shards = "".join(f"<{c}><shard><internal_replication>true</internal_replication><replica>"
                             f"<host>127.0.0.1</host><port>9000</port></replica></shard></{c}>" for c in clusters)
            config.write_text(f"<clickhouse><tcp_port>9000</tcp_port><remote_servers>{shards}"
                              "</remote_servers></clickhouse>\n")
            target = f"file:{path}?config-file={config}"
        self._pool: queue.Queue[Any] = queue.Queue()
        for _ in range(size):
            self._pool.put(chdb.connect(target))

    def run(self, sql: str, fmt: str, params: dict[str, str], settings: dict[str, str],
            database: str, externals: list[tuple[str, str, str, bytes]] = ()  # type: ignore[assignment]
            ) -> tuple[bytes, dict[str, Any]]:
        conn = self._pool.get()
        applied: list[str] = []
        made: list[str] = []
        try:
            conn.query(f"USE `{database.replace('`', '')}`")
            for name, value in settings.items():
                if not name.replace("_", "").isalnum():
                    raise RuntimeError(f"Code: 115. DB::Exception: Unknown setting '{name}'")
                literal = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
                conn.query(f"SET {name} = {literal}")
                applied.append(name)
            for name, ext_fmt, structure, data in externals:  # a temporary table of this connection
                if not (name.replace("_", "").isalnum() and ext_fmt.isalnum()):
                    raise RuntimeError(f"Code: 36. DB::Exception: bad external table {name!r} ({ext_fmt})")
                conn.query(f"CREATE TEMPORARY TABLE `{name}` AS SELECT * FROM format({ext_fmt}, "  # noqa: S608
                           "{__ext_structure:String}, {__ext_data:String})",
                           params=encode_params({"__ext_structure": structure,
                                                 "__ext_data": data.decode("utf-8", "surrogateescape")}))
                made.append(name)
            result = conn.query(sql, fmt, params=params) if params else conn.query(sql, fmt)
            data = result.bytes() or b""
            summary = {"read_rows": str(result.rows_read()), "read_bytes": str(result.bytes_read()),
                       "written_rows": str(result.rows_written()), "written_bytes": str(result.bytes_written()),
                       "total_rows_to_read": str(result.rows_read()), "result_rows": "0",
                       "result_bytes": str(len(data)), "elapsed_ns": str(int(result.elapsed() * 1e9))}
            return data, summary
        finally:
            for name in made:
                try:
                    conn.query(f"DROP TEMPORARY TABLE IF EXISTS `{name}`")
                except Exception:  # noqa: S110 - the connection's next request would see it
                    pass
            for name in applied:
                try:
                    conn.query(f"SET {name} = DEFAULT")
                except Exception:  # noqa: S110 - a setting that cannot be reset stays at its request value
                    pass
            self._pool.put(conn)


def _decode_body(body: bytes, encoding: str) -> bytes:
    encoding = encoding.lower().strip()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    raise ValueError(f"Code: 1. DB::Exception: Unsupported Content-Encoding {encoding}")


def _form_fields(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """The text fields of a multipart/form-data body (how clients send long queries and
    parameters) and its files (external data: tables for this query only, named by the file's
    name without its extension)."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields, files = {}, {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        if filename:
            files[str(filename).rsplit(".", 1)[0]] = part.get_payload(decode=True) or b""
        elif name:
            fields[str(name)] = part.get_payload(decode=True).decode("utf-8", "surrogateescape")
    return fields, files


def make_handler(engine: Engine, user: str, password: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _credentials(self, params: dict[str, str]) -> tuple[str, str]:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Basic "):
                name, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
                return name, secret
            if "X-ClickHouse-User" in self.headers:
                return self.headers["X-ClickHouse-User"], self.headers.get("X-ClickHouse-Key", "")
            return params.get("user", "default"), params.get("password", "")

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._handle(b"")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._handle(self.rfile.read(length) if length else b"")

        def _handle(self, raw: bytes) -> None:
            url = urlsplit(self.path)
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            query_id = params.get("query_id") or str(uuid.uuid4())
            base = {"X-ClickHouse-Query-Id": query_id, "X-ClickHouse-Timezone": "UTC",
                    "X-ClickHouse-Server-Display-Name": "chdouble"}
            if len(self.path) > MAX_URI_SIZE:
                self._send(400, b"Code: 1000. DB::Exception: URI too long (http_max_uri_size)\n",
                           base | {"X-ClickHouse-Exception-Code": "1000"})
                return
            try:
                body = _decode_body(raw, self.headers.get("Content-Encoding", ""))
            except Exception as exc:
                self._send(400, str(exc).encode(), base | {"X-ClickHouse-Exception-Code": "1"})
                return
            files: dict[str, bytes] = {}
            if self.headers.get("Content-Type", "").startswith("multipart/form-data"):
                fields, files = _form_fields(self.headers["Content-Type"], body)  # form_encode_query_params
                params |= fields
                body = b""
            externals = [(name, params.pop(f"{name}_format", "TabSeparated"), params.pop(f"{name}_structure", ""),
                          data) for name, data in files.items()]
            long = sorted(k for k, v in params.items() if len(v.encode("utf-8", "surrogateescape"))
                          > MAX_FIELD_VALUE_SIZE)
            if long:
                message = (f"Code: 1000. DB::Exception: Field value too long: {long[0]} "
                           f"(http_max_field_value_size = {MAX_FIELD_VALUE_SIZE})\n")
                self._send(400, message.encode(), base | {"X-ClickHouse-Exception-Code": "1000"})
                return
            text = params.get("query", "")
            if body:
                text = f"{text}\n{body.decode('utf-8', 'surrogateescape')}" if text else body.decode(
                    "utf-8", "surrogateescape")
            if url.path == "/ping" or (self.command == "GET" and not text.strip()):
                self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
                return
            name, secret = self._credentials(params)
            if (name, secret) != (user, password):
                msg = f"Code: 516. DB::Exception: {name}: Authentication failed. (AUTHENTICATION_FAILED)\n"
                self._send(401, msg.encode(), base | {"X-ClickHouse-Exception-Code": "516"})
                return
            query_params = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
            settings = {k: v for k, v in params.items() if k not in _RESERVED and not k.startswith("param_")}
            compress = settings.get("enable_http_compression") == "1"
            sql = rewrite_for_one_node(text)
            if _INSERT.match(sql):
                found = _INSERT_FORMAT.search(sql)
                fmt = found.group(1) if found else "Values"
            else:
                found = _FORMAT_AT_END.search(sql)
                fmt = found.group(1) if found else params.get("default_format", "TabSeparated")
            try:
                data, summary = engine.run(sql, fmt, query_params, settings, params.get("database", "default"),
                                           externals)
            except Exception as exc:
                message = str(exc)
                code = _CODE.search(message)
                code_s = code.group(1) if code else "1"
                self._send(_STATUS.get(code_s, 500), (message.rstrip() + "\n").encode(),
                           base | {"X-ClickHouse-Exception-Code": code_s,
                                   "Content-Type": "text/plain; charset=UTF-8"})
                return
            headers = base | {"X-ClickHouse-Format": fmt, "X-ClickHouse-Summary": orjson.dumps(summary).decode(),
                              "Content-Type": "application/octet-stream"}
            accept = self.headers.get("Accept-Encoding", "")
            if compress and data and "zstd" in accept:
                data = zstandard.ZstdCompressor().compress(data)
                headers["Content-Encoding"] = "zstd"
            elif compress and data and "gzip" in accept:
                data = gzip.compress(data, compresslevel=1)
                headers["Content-Encoding"] = "gzip"
            self._send(200, data, headers)

    return Handler


def main(argv: list[str] | None = None) -> None:
    """Serve until killed; prints ``ready <port>`` once listening."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--path", required=True)
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default="")
    parser.add_argument("--cluster", action="append", default=[], help="a cluster name to serve (repeatable)")
    args = parser.parse_args(argv)
    engine = Engine(args.path, args.cluster)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(engine, args.user, args.password))
    server.daemon_threads = True
    print(f"ready {server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sys.stdin.read()  # the parent holds our stdin: when it goes, so do we
    finally:
        server.shutdown()
        sys.stdout.flush()
        os._exit(0)  # every answer is sent; skip the engine's slow teardown of a throwaway store


if __name__ == "__main__":
    main()
