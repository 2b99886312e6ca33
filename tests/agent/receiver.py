"""A small real HTTP receiver for agent tests and the benchmark: it speaks the server's ingest
contract (``POST /api/v1/logs``, NDJSON, zstd/gzip, Bearer key) and can misbehave on purpose.

Every accepted line is appended to ``--out`` (fsync'd before the 200, like the server's WAL) unless
``--discard`` is given, in which case lines are only counted. ``--fail-first N --fail-status S``
answers the first N requests with S (``--retry-after`` adds the header). ``--reject-match X``
rejects lines containing X per line (200 with ``rejected``). ``--max-body B`` answers 413 above B
bytes. ``--lose-answer-first N`` stores the first N requests but closes the connection instead of
answering (an answer lost in a crash). ``--dedup-keys`` stores a request once per
``Idempotency-Key`` and answers a repeat as it answered the first (what the server promises within
its window); ``--close-each`` closes every connection after its answer, as some proxies do.
``GET /stats`` returns the counters as JSON, ``keys`` the key of every POST in order.

Run: python receiver.py --port P [--out FILE] [--api-key K] [--tls-cert C --tls-key K] …
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import zstandard


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--out")
    ap.add_argument("--discard", action="store_true")
    ap.add_argument("--api-key")
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-status", type=int, default=503)
    ap.add_argument("--retry-after")
    ap.add_argument("--reject-match")
    ap.add_argument("--max-body", type=int, default=0)
    ap.add_argument("--bulk-retry-first", action="store_true")
    ap.add_argument("--lose-answer-first", type=int, default=0)
    ap.add_argument("--refuse-encoding", help="answer 400 bad_encoding to bodies in this encoding")
    ap.add_argument("--dedup-keys", action="store_true")
    ap.add_argument("--close-each", action="store_true", help="answer with Connection: close (a proxy)")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    args = ap.parse_args()
    lock = threading.Lock()
    stats = {"requests": 0, "lines": 0, "bytes": 0, "wire_bytes": 0, "failed": 0, "rejected": 0,
             "encodings": {}, "too_large": 0, "keys": [], "lost_answers": 0, "repeats": 0}
    answered: dict[str, dict] = {}
    out_fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if args.out else None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        wbufsize = 1 << 16  # one write per response: no Nagle/delayed-ACK stall between header and body

        def log_message(self, *a: object) -> None:
            pass

        def _answer(self, status: int, body: dict, headers: dict | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            if args.close_each:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            with lock:
                self._answer(200, stats)

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                stats["requests"] += 1
                key = self.headers.get("Idempotency-Key")
                stats["keys"].append(key)
                if args.dedup_keys and key in answered:
                    stats["repeats"] += 1
                    self._answer(200, answered[key])
                    return
                if args.api_key and self.headers.get("Authorization") != f"Bearer {args.api_key}":
                    self._answer(401, {"error": {"code": "unauthorized", "message": "bad key"}})
                    return
                if stats["requests"] <= args.fail_first:
                    stats["failed"] += 1
                    h = {"Retry-After": args.retry_after} if args.retry_after else {}
                    self._answer(args.fail_status, {"error": {"code": "x", "message": "failing"}}, h)
                    return
                enc = self.headers.get("Content-Encoding", "identity")
                stats["encodings"][enc] = stats["encodings"].get(enc, 0) + 1
                if enc == args.refuse_encoding:
                    self._answer(400, {"error": {"code": "bad_encoding", "message": f"body is not valid {enc}"}})
                    return
                if enc == "zstd":
                    # every frame (a body may hold several, like a gzip body several members)
                    body = zstandard.ZstdDecompressor().stream_reader(
                        io.BytesIO(raw), read_across_frames=True).read()
                elif enc == "gzip":
                    body = gzip.decompress(raw)
                else:
                    body = raw
                if args.max_body and len(body) > args.max_body:
                    stats["too_large"] += 1
                    self._answer(413, {"error": {"code": "too_large", "message": "body too large"}})
                    return
                lines = body.split(b"\n")
                if lines and lines[-1] == b"":
                    lines.pop()
                if self.path.endswith("/_bulk"):
                    self._bulk(lines, len(body), len(raw))
                    return
                rejected = []
                if args.reject_match:
                    needle = args.reject_match.encode()
                    keep = []
                    for i, line in enumerate(lines, start=1):
                        if needle in line:
                            rejected.append({"line": i, "error": "rejected by test"})
                        else:
                            keep.append(line)
                    lines = keep
                if out_fd is not None and not args.discard and lines:
                    os.write(out_fd, b"\n".join(lines) + b"\n")
                    os.fsync(out_fd)
                stats["lines"] += len(lines)
                stats["rejected"] += len(rejected)
                stats["bytes"] += len(body)
                stats["wire_bytes"] += len(raw)
                answer = {"accepted": len(lines), "rejected": rejected}
                if args.dedup_keys and key:
                    answered[key] = answer
                if stats["lost_answers"] < args.lose_answer_first:
                    stats["lost_answers"] += 1
                    self.close_connection = True  # stored, never answered: the client must retry
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self._answer(200, answer)

        def _bulk(self, lines: list[bytes], nbytes: int, wire: int) -> None:
            """Elasticsearch ``_bulk``: per-item answers; ``--bulk-retry-first`` refuses every
            other item of the first request with 429, ``--reject-match`` refuses items with 400."""
            docs = lines[1::2]
            stats["bulk_requests"] = stats.get("bulk_requests", 0) + 1
            stats.setdefault("bulk_ids", []).append(
                [next(iter(json.loads(a).values())).get("_id") for a in lines[0::2]])
            first = stats["bulk_requests"] == 1
            items, keep = [], []
            for i, doc in enumerate(docs):
                if first and args.bulk_retry_first and i % 2:
                    items.append({"create": {"status": 429, "error": {"type": "es_rejected_execution"}}})
                elif args.reject_match and args.reject_match.encode() in doc:
                    items.append({"create": {"status": 400, "error": {"type": "mapper_parsing_exception"}}})
                    stats["rejected"] += 1
                else:
                    items.append({"create": {"status": 201}})
                    keep.append(doc)
            if out_fd is not None and keep:
                os.write(out_fd, b"\n".join(keep) + b"\n")
                os.fsync(out_fd)
            stats["lines"] += len(keep)
            stats["bytes"] += nbytes
            stats["wire_bytes"] += wire
            errors = any(x["create"]["status"] >= 300 for x in items)
            self._answer(200, {"took": 1, "errors": errors, "items": items})

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    if args.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
