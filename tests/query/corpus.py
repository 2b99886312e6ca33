"""A small, hand-written corpus: every record has an ``rid`` so tests can name expected answers.

Timestamps: record rNN is at 2026-11-01T12:(NN-1):00Z, so r01 is the oldest and r20 the newest.
"""

from __future__ import annotations

from typing import Any

BASE = "2026-11-01T12:{minute:02d}:00Z"
T1 = "5759e988bd862e3fe1be46a994272793"
T2 = "0af7651916cd43dd8448eb211c80319c"

_RECORDS: list[dict[str, Any]] = [
    {"service": "checkout", "level": "ERROR", "message": "payment declined for order o-42", "host": "web-1",
     "env": "prod", "source": "app", "trace_id": T1, "user_id": "u-123",
     "http": {"method": "POST", "path": "/api/orders", "status": 502, "duration_ms": 1234.5}},
    {"service": "checkout", "level": "INFO", "message": "payment accepted", "host": "web-2", "env": "prod",
     "source": "app", "user_id": "u-124",
     "http": {"method": "POST", "path": "/api/orders", "status": 200, "duration_ms": 120.0}},
    {"service": "checkout", "level": "WARN", "message": "retrying payment after timeout", "host": "web-3",
     "env": "dev", "source": "app", "user_id": "u-123",
     "http": {"method": "POST", "path": "/api/orders/retry", "status": 503, "duration_ms": 900.0}},
    {"service": "api", "level": "INFO", "message": "GET /api/users ok", "host": "web-1", "env": "prod",
     "source": "nginx",
     "http": {"method": "GET", "path": "/api/users", "status": 200, "duration_ms": 15.5,
              "client_ip": "203.0.113.7"}},
    {"service": "api", "level": "ERROR", "message": "timeout after 1500ms calling db", "host": "web-2",
     "env": "prod", "source": "app",
     "http": {"method": "GET", "path": "/api/users/7", "status": 504, "duration_ms": 1500.0}},
    {"service": "api", "level": "FATAL", "message": "out of memory", "host": "web-3", "env": "prod",
     "source": "app"},
    {"service": "auth", "level": "DEBUG", "message": "token refreshed for user u-7", "env": "dev",
     "source": "app", "user_id": 7, "order": {"items": {"sku": "X1"}}},
    {"service": "auth", "level": "INFO", "message": "login ok", "env": "prod", "source": "app",
     "user_id": "u-125", "http": {"method": "GET", "path": "/login", "status": 200, "duration_ms": 30.0}},
    {"service": "billing", "level": "ERROR", "message": "invoice failed: card expired", "env": "prod",
     "source": "app", "trace_id": T2, "error_code": "PAY_001",
     "http": {"method": "POST", "path": "/api/invoices", "status": 500, "duration_ms": 2500.0}},
    {"service": "billing", "level": "INFO", "message": "invoice sent", "env": "staging", "source": "app",
     "http": {"method": "POST", "path": "/api/invoices", "status": 201, "duration_ms": 80.0,
              "bytes_sent": 612}},
    {"service": "edge", "level": "INFO", "message": "GET https://shop.example/ 200", "host": "alb",
     "env": "prod", "source": "alb",
     "http": {"method": "GET", "path": "/", "status": 200, "duration_ms": 5.0, "user_agent": "curl/8.5.0"}},
    {"service": "edge", "level": "ERROR", "message": "POST https://shop.example/api/orders 502",
     "host": "alb", "env": "prod", "source": "alb",
     "http": {"method": "POST", "path": "/api/orders", "status": 502, "duration_ms": 1300.0}},
    {"service": "search", "level": "INFO", "message": 'query "red shoes" returned 0 hits', "env": "prod",
     "source": "app", "query": "red shoes", "hits": 0},
    {"service": "search", "level": "INFO", "message": "query 'blue; DROP TABLE logs;--' returned 3 hits",
     "env": "prod", "source": "app", "query": "blue; DROP TABLE logs;--", "hits": 3},
    {"service": "search", "level": "WARN", "message": "slow query 950ms", "env": "prod", "source": "app",
     "http": {"method": "GET", "path": "/search", "status": 200, "duration_ms": 950.0}},
    {"service": "checkout", "level": "ERROR", "message": "payment declined: insufficient funds",
     "host": "web-1", "env": "prod", "source": "app", "user_id": "u-126", "order": {"items": {"sku": "X2"}},
     "http": {"method": "POST", "path": "/api/orders", "status": 402, "duration_ms": 300.0}},
    {"service": "i18n", "level": "INFO", "message": "Ωmega héllo wörld", "env": "prod", "source": "app"},
    {"service": "worker", "level": "TRACE", "message": "tick", "env": "prod", "source": "app", "n": 5,
     "flag": True},
    {"service": "worker", "level": "DEBUG", "message": "tick", "env": "prod", "source": "app", "n": 12},
    {"service": "worker", "level": "INFO", "message": "job done in 42ms", "env": "prod", "source": "app",
     "n": 7.5},
]


def records() -> list[dict[str, Any]]:
    """The corpus as wire records (DESIGN §2), each with ``rid`` and its timestamp."""
    out = []
    for i, rec in enumerate(_RECORDS):
        item = dict(rec)
        item["rid"] = f"r{i + 1:02d}"
        item["timestamp"] = BASE.format(minute=i)
        out.append(item)
    return out
