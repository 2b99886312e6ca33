"""structlog through the sdk (one pipeline) and structlog with the canonical renderer."""

from __future__ import annotations

import io
from collections.abc import Iterator

import orjson
import pytest
import structlog

from logharbor import sdk
from logharbor.redaction import Redactor
from logharbor.sdk.structlogging import CanonicalRenderer, add_context


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_structlog_through_the_sdk_handler(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="sl", env="test", structlog=True)
    log = structlog.get_logger("billing")
    structlog.contextvars.bind_contextvars(tenant_id="t-9")
    with sdk.context(request_id="r-sl", trace_id="5759e988bd862e3fe1be46a994272793", user_id="u-5"):
        log.info("invoice sent", invoice_id="i-1", amount=99.5, lines=3, name="acme", args=[1])
        try:
            raise TimeoutError("smtp")
        except TimeoutError:
            log.exception("mail failed", to="dave@example.com")
    log.debug("below the level")
    sent, failed = cap.records()
    assert sent["message"] == "invoice sent" and sent["level"] == "INFO" and sent["logger"] == "billing"
    assert sent["invoice_id"] == "i-1" and sent["amount"] == 99.5 and sent["lines"] == 3
    assert sent["tenant_id"] == "t-9" and sent["user_id"] == "u-5"
    assert sent["name_"] == "acme" and sent["args_"] == [1]  # LogRecord's own names, renamed
    assert sent["request_id"] == "r-sl" and sent["trace_id"] == "5759e988bd862e3fe1be46a994272793"
    assert failed["level"] == "ERROR"
    assert failed["error"]["type"] == "TimeoutError" and failed["error"]["message"] == "smtp"
    assert failed["to"] == "[EMAIL]"


def test_canonical_renderer_standalone() -> None:
    out = io.StringIO()
    structlog.configure(
        processors=[add_context, structlog.processors.add_log_level,
                    CanonicalRenderer({"service": "sl2", "env": "dev", "host": "h", "instance": "i"},
                                      [Redactor().redact_record])],
        logger_factory=structlog.WriteLoggerFactory(file=out),
    )
    log = structlog.get_logger()
    with sdk.context(request_id="r-2", span_id="53995c3f42cd8ad8"):
        log.warning("slow query", ms=1234, sql="select 1", password="pw")
        try:
            {}["k"]
        except KeyError:
            log.error("lookup", exc_info=True)
    first, second = (orjson.loads(line) for line in out.getvalue().splitlines())
    ts = first.pop("timestamp")
    assert ts.endswith("Z") and "T" in ts
    assert first == {"level": "WARN", "service": "sl2", "source": "app", "host": "h", "instance": "i",
                     "env": "dev", "message": "slow query", "span_id": "53995c3f42cd8ad8",
                     "request_id": "r-2", "ms": 1234, "sql": "select 1", "password": "[REDACTED]"}
    assert second["level"] == "ERROR" and second["error"]["type"] == "KeyError"
    assert "Traceback" in second["error"]["stack"]


def test_renderer_processor_can_drop() -> None:
    out = io.StringIO()
    structlog.configure(
        processors=[CanonicalRenderer({"service": "s"}, [lambda r: None if r["message"] == "noise" else r])],
        logger_factory=structlog.WriteLoggerFactory(file=out),
    )
    log = structlog.get_logger()
    log.info("noise")
    log.info("signal")
    assert [orjson.loads(line)["message"] for line in out.getvalue().splitlines()] == ["signal"]
