"""A cluster database as the release before text attributes left it (``<logs>_local`` with
``attributes JSON`` + ``attributes_exact`` on every replica, the Distributed ``<logs>``, the
patterns tables and view), made on the HTTP double, and how to read it back after a conversion."""

from __future__ import annotations

import itertools
from typing import Any

import clickhouse_connect
from tests.store.old_attributes import ENGINE_SETTINGS as OLD_SETTINGS
from tests.store.oldlayout import OLD_SCHEMA, old_row

from logharbor.server.engine.store.batches import mark_rows
from logharbor.server.engine.store.patterns import patterns_ddl

from .conftest import CLUSTER, PASSWORD, USER, Double

__all__ = ["DAY_NS", "old_cluster_database", "spread_over_days"]

DAY_NS = 86_400 * 10**9
_db = itertools.count()
_REPLICA_PATH = "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')"


def spread_over_days(objs: list[dict[str, Any]], days: int) -> list[dict[str, Any]]:
    """Each record once per day for ``days`` days back (messages made unique per day)."""
    return [{**o, "timestamp": o["timestamp"] - d * DAY_NS, "message": f"d{d}-{o['message']}"}
            for d in range(days) for o in objs]


def old_cluster_database(double: Double, batches: list[list[bytes]], prefix: str = "oldcl") -> str:
    """A database holding the old release's cluster tables; each batch of old-layout rows is one
    insert through the Distributed table (as an old server's batch was)."""
    name = f"{prefix}_{next(_db)}"
    client = clickhouse_connect.get_client(host="127.0.0.1", port=double.port, username=USER, password=PASSWORD,
                                           settings=dict(OLD_SETTINGS))
    try:
        client.command(f"CREATE DATABASE {name} ON CLUSTER {CLUSTER}")
        body = "\n".join(line for line in OLD_SCHEMA.splitlines() if not line.lstrip().startswith("--"))
        client.command(body.replace("{table}", f"{name}.logs_local ON CLUSTER {CLUSTER}")
                       .replace("{engine}", _REPLICA_PATH))
        client.command(f"CREATE TABLE {name}.logs ON CLUSTER {CLUSTER} AS {name}.logs_local ENGINE = "
                       f"Distributed('{CLUSTER}', '{name}', 'logs_local', cityHash64(tenant, service, trace_id))")
        for statement in patterns_ddl("logs_local", "patterns_local", on_cluster=f" ON CLUSTER {CLUSTER}"):
            client.command(statement.replace("`logs_local`", f"{name}.logs_local")
                           .replace("`patterns_local`", f"{name}.patterns_local")
                           .replace("`patterns_local_mv`", f"{name}.patterns_local_mv"))
        for i, rows in enumerate(batches):
            client.raw_insert(f"{name}.logs", None, mark_rows(b"\n".join(rows), f"old-{i}"), fmt="JSONEachRow",
                              settings={"distributed_foreground_insert": 1})
    finally:
        client.close()
    return name


def old_rows(objs: list[dict[str, Any]], received_ns: int) -> list[bytes]:
    return [old_row(o, received_ns) for o in objs]
