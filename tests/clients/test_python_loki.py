"""Python's Loki handlers for stdlib logging (pinned in pyproject's test extras), configured as
their READMEs say, against a real server: every record once, with its time, level, message,
service and attributes, and no error reported by the handler."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import uuid
from typing import Any

import httpx
import pytest
from tests.conftest import ServerProcess

from .conftest import ALL_TIME, arrived, from_ns

#: stdlib levels and what logharbor stores for each
LEVELS = [(logging.DEBUG, "DEBUG"), (logging.INFO, "INFO"), (logging.WARNING, "WARN"),
          (logging.ERROR, "ERROR"), (logging.CRITICAL, "FATAL")]
COUNT = 10


class _Errors(logging.Handler):
    """Collects what a handler reports about itself (its own debug logger, or handleError)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append(record.getMessage())


def _log_all(logger: logging.Logger, token: str) -> list[dict[str, Any]]:
    sent = []
    for i in range(COUNT):
        number, level = LEVELS[i % len(LEVELS)]
        message = f"pyloki {token} record {i}"
        before = time.time_ns()
        logger.log(number, message, extra={"order_id": f"o-{i}", "qty": i})
        sent.append({"message": message, "level": level, "before": before, "after": time.time_ns(), "i": i})
    return sent


def test_python_logging_loki(server: ServerProcess) -> None:
    """python-logging-loki 0.3.1, ``version="1"`` (JSON push, labels ``severity`` and ``logger``,
    the push time in nanoseconds), extra ``tags`` become labels."""
    import logging_loki

    token = uuid.uuid4().hex[:10]
    handler = logging_loki.LokiHandler(url=server.url + "/loki/api/v1/push", version="1",
                                       tags={"application": "shop-pyloki", "env": "staging"},
                                       auth=("logharbor", server.api_key))
    failures: list[str] = []
    handler.handleError = lambda record: failures.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger(f"shop.pyloki.{token}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        sent = _log_all(logger, token)
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert failures == []
    rows = {row["message"]: row for row in arrived(server, f"service:shop-pyloki AND {token}", COUNT)}
    assert len(rows) == COUNT
    for want in sent:
        row = rows[want["message"]]
        stamp = dt.datetime.fromisoformat(row["timestamp"].replace("Z", "+00:00"))
        assert want["before"] // 1000 <= stamp.timestamp() * 1e6 <= want["after"] // 1000 + 1
        assert row["level"] == want["level"] and row["service"] == "shop-pyloki"
        assert row["env"] == "staging" and row["logger"] == logger.name


@pytest.mark.parametrize("metadata", [False, True])
def test_loki_logger_handler(server: ServerProcess, metadata: bool) -> None:
    """loki-logger-handler 1.1.2: a JSON line per record (message, level, the record's time in
    seconds, extra fields), gzip, the record's own time in nanoseconds; with structured metadata
    the extra fields named in ``loki_metadata_keys`` go there instead."""
    from loki_logger_handler.loki_logger_handler import LokiLoggerHandler

    token = uuid.uuid4().hex[:10]
    service = f"shop-lokihandler-{int(metadata)}"
    handler = LokiLoggerHandler(
        url=server.url + "/loki/api/v1/push", labels={"application": service, "environment": "prod"},
        auth=("logharbor", server.api_key), timeout=1, enable_self_errors=True,
        enable_structured_loki_metadata=metadata, loki_metadata_keys=["order_id"] if metadata else None)
    errors = _Errors()
    logging.getLogger("LokiHandlerDebug").addHandler(errors)
    created: dict[str, float] = {}

    class _Created(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            created[record.getMessage()] = record.created
            return True

    logger = logging.getLogger(f"shop.lokihandler.{token}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addFilter(_Created())
    logger.addHandler(handler)
    try:
        sent = _log_all(logger, token)
        rows_found = arrived(server, f"service:{service} AND {token}", COUNT)
    finally:
        logger.removeHandler(handler)
        logging.getLogger("LokiHandlerDebug").removeHandler(errors)
    assert errors.seen == [] and not handler.error
    rows = {json.loads(row["message"])["message"]: row for row in rows_found}
    assert len(rows) == COUNT == len(rows_found)
    for want in sent:
        row = rows[want["message"]]
        line = json.loads(row["message"])  # the line as Loki keeps it
        assert line["level"] == logging.getLevelName(LEVELS[want["i"] % len(LEVELS)][0])
        assert row["timestamp"] == from_ns(int(created[want["message"]] * 1e9))
        assert row["level"] == want["level"] and row["service"] == service
        assert row["env"] == "prod"  # the environment label folds into env
        assert row["order_id"] == f"o-{want['i']}"
        assert row["qty"] == want["i"]  # typed, from the JSON line


def test_loki_logger_handler_line_keys_beside_labels_and_metadata(server: ServerProcess) -> None:
    """loki-logger-handler's JSON line carries the record's extra fields; one named as a stream
    label (``team``, ``environment``) or as structured metadata (``region``) with another value
    used to vanish from the stored attributes (the label's value replaced it without a word). The
    stream keeps the name, as in Loki; the line's value is kept as ``<name>_extracted`` (Loki's
    ``| json`` name for it) and counted, so both are found."""
    from loki_logger_handler.loki_logger_handler import LokiLoggerHandler

    token = uuid.uuid4().hex[:10]
    service = "shop-lokihandler-keys"
    handler = LokiLoggerHandler(
        url=server.url + "/loki/api/v1/push",
        labels={"application": service, "environment": "prod", "team": "payments"},
        auth=("logharbor", server.api_key), timeout=1, enable_self_errors=True,
        enable_structured_loki_metadata=True, loki_metadata={"region": "eu-1"},
        loki_metadata_keys=["order_id"])
    logger = logging.getLogger(f"shop.lokihandler.keys.{token}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        # every entry carries the metadata region=eu-1; order_id moves from the line to metadata
        logger.warning("collide %s", token, extra={"team": "search", "environment": "staging",
                                                   "region": "us-2", "order_id": "o-1", "cart": "c-1"})
        logger.warning("same %s", token, extra={"team": "payments", "region": "eu-1", "cart": "c-2"})
        rows = arrived(server, f"service:{service} AND {token}", 2)
    finally:
        logger.removeHandler(handler)
    assert not handler.error and len(rows) == 2
    by_cart = {row["cart"]: row for row in rows}
    collided, same = by_cart["c-1"], by_cart["c-2"]
    assert collided["team"] == "payments" and collided["team_extracted"] == "search"
    assert collided["env"] == "prod" and collided["environment_extracted"] == "staging"
    assert collided["region"] == "eu-1" and collided["region_extracted"] == "us-2"
    assert collided["order_id"] == "o-1" and "order_id_extracted" not in collided
    for name in ("team", "region"):  # equal values: one copy
        assert same[name] == {"team": "payments", "region": "eu-1"}[name]
        assert f"{name}_extracted" not in same
    for row in rows:  # the line's own time is kept beside the entry's, the line stays the message
        assert isinstance(row["timestamp_extracted"], float)
        assert json.loads(row["message"])["message"].endswith(token)
    assert len(server.query(f"team_extracted:search AND {token}", **ALL_TIME)["rows"]) == 1
    metrics = httpx.get(server.url + "/metrics", headers=server.headers, timeout=30).text
    assert 'logharbor_ingest_ignored_total{protocol="loki",what="line_key"}' in metrics
