"""The canonical record the sdk writes, field by field (DESIGN §2)."""

from __future__ import annotations

import datetime as dt
import logging
import re
import uuid
from decimal import Decimal

import pytest

from logharbor import sdk
from logharbor.record import normalize
from logharbor.sdk.formatter import JSONFormatter, level_name, render


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_static_fields_and_extra_types(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="checkout", env="prod", version="1.4.2", instance="checkout-9092")
    log = logging.getLogger("orders")
    log.info("order %s placed", "o-42", extra={
        "user_id": "u-123", "count": 3, "amount": 12.5, "ok": True, "none": None,
        "tags": ["a", 1], "nested": {"k": [1, 2]}, "when": dt.datetime(2026, 1, 2, 3, 4, 5),
        "id": uuid.UUID(int=1), "price": Decimal("1.10"), "blob": b"\xffab", "s": {3},
        "huge": 2**80, "weird": Unprintable(), "obj": object(),
    })
    (line,) = cap.records()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line.pop("timestamp"))
    assert line.pop("host")
    obj = line.pop("obj")
    assert obj.startswith("<object object at")
    assert line == {
        "level": "INFO", "service": "checkout", "source": "app", "env": "prod", "version": "1.4.2",
        "instance": "checkout-9092", "message": "order o-42 placed", "logger": "orders",
        "user_id": "u-123", "count": 3, "amount": 12.5, "ok": True, "none": None,
        "tags": ["a", 1], "nested": {"k": [1, 2]}, "when": "2026-01-02T03:04:05",
        "id": "00000000-0000-0000-0000-000000000001", "price": "1.10", "blob": "\ufffdab", "s": [3],
        "huge": 2**80, "weird": "<unprintable Unprintable>",
    }


def test_levels_map_to_canonical_names(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s", level="TRACE")
    log = logging.getLogger("lv")
    for levelno in (5, 10, 15, 20, 30, 40, 50, 60):
        log.log(levelno, "x")
    assert [r["level"] for r in cap.records()] == [
        "TRACE", "DEBUG", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "FATAL"]
    assert level_name(1) == "TRACE"


def test_exception_is_one_record(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s")
    log = logging.getLogger("exc")

    def inner() -> None:
        raise KeyError("missing-key")

    try:
        try:
            inner()
        except KeyError as exc:
            raise RuntimeError("wrapped") from exc
    except RuntimeError:
        log.exception("failed to charge", extra={"order_id": "o-1"})
    (line,) = cap.records()
    assert line["level"] == "ERROR"
    assert line["message"] == "failed to charge"
    assert line["order_id"] == "o-1"
    error = line["error"]
    assert error["type"] == "RuntimeError"
    assert error["message"] == "wrapped"
    assert "KeyError: 'missing-key'" in error["stack"]
    assert "The above exception was the direct cause" in error["stack"]
    assert error["stack"].count("\n") > 5  # the whole traceback, in one field of one record


class PaymentError(Exception):
    pass


def test_exception_type_names(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s")
    try:
        raise ValueError("x")
    except ValueError:
        logging.getLogger("q").error("e", exc_info=True)
    try:
        raise PaymentError("declined")
    except PaymentError as exc:
        logging.getLogger("q").error("e2", exc_info=exc)
    first, second = cap.records()
    assert first["error"]["type"] == "ValueError"  # builtins: the plain name
    assert second["error"]["type"] == f"{__name__}.PaymentError"
    assert second["error"]["message"] == "declined"


def test_stack_info_needs_caller_info(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s", caller_info=True)
    logging.getLogger("q").warning("w", stack_info=True)
    (line,) = cap.records()
    assert line["error"]["stack"].startswith("Stack (most recent call last)")
    assert "test_stack_info_needs_caller_info" in line["error"]["stack"]


def test_identity_from_context_and_extra_override(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s")
    log = logging.getLogger("ctx")
    with sdk.context(trace_id="5759e988bd862e3fe1be46a994272793", span_id="53995c3f42cd8ad8",
                     request_id="r-1", user_id="u-1"):
        log.info("in", extra={"user_id": "u-override", "http": {"status": 201}})
    log.info("out")
    inside, outside = cap.records()
    assert inside["trace_id"] == "5759e988bd862e3fe1be46a994272793"
    assert inside["span_id"] == "53995c3f42cd8ad8" and inside["request_id"] == "r-1"
    assert inside["user_id"] == "u-override"
    assert inside["http"] == {"status": 201}
    assert "trace_id" not in outside and "user_id" not in outside


def test_record_round_trips_through_record_normalize(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="checkout", env="prod")
    with sdk.context(trace_id="5759e988bd862e3fe1be46a994272793", request_id="r-9"):
        logging.getLogger("rt").warning("slow", extra={"http": {"method": "GET", "status": 200,
                                                                 "duration_ms": 1234.5}, "n": 2})
    (line,) = cap.records()
    rec = normalize(line)
    assert rec["level"] == "WARN" and rec["service"] == "checkout" and rec["env"] == "prod"
    assert rec["trace_id"] == "5759e988bd862e3fe1be46a994272793" and rec["request_id"] == "r-9"
    assert rec["http"] == {"method": "GET", "status": 200, "duration_ms": 1234.5}
    assert rec["attributes"]["n"] == 2 and rec["attributes"]["logger"] == "rt"


def test_processors_can_change_and_drop(capture) -> None:  # type: ignore[no-untyped-def]
    def drop_health(record: dict) -> dict | None:
        return None if record["message"] == "health" else {**record, "team": "payments"}

    cap = capture(service="s", processors=[drop_health])
    logging.getLogger("p").info("health")
    logging.getLogger("p").info("real")
    (line,) = cap.records()
    assert line["message"] == "real" and line["team"] == "payments"


def test_redaction_on_by_default_and_can_be_off(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s")
    logging.getLogger("r").info("mail bob@example.com", extra={"authorization": "Bearer abc.def.ghi",
                                                               "note": "card 4111111111111111"})
    (line,) = cap.records()
    assert line["message"] == "mail [EMAIL]"
    assert line["authorization"] == "[REDACTED]" and line["note"] == "card [CARD]"
    sdk.shutdown()
    cap2 = capture(service="s", redact=False)
    logging.getLogger("r").info("mail bob@example.com")
    assert cap2.records()[0]["message"] == "mail bob@example.com"


def test_bad_format_args_do_not_raise(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s")
    logging.getLogger("f").info("%d items", "not-a-number")
    (line,) = cap.records()
    assert line["message"].startswith("%d items (format error")


def test_caller_info(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s", caller_info=True)
    logging.getLogger("c").info("where")
    (line,) = cap.records()
    assert line["code"]["function"] == "test_caller_info"
    assert line["code"]["file"].endswith("test_formatter.py")


def test_formatter_on_a_plain_handler() -> None:
    formatter = JSONFormatter({"service": "plain", "host": "h1", "instance": "i1"})
    record = logging.LogRecord("n", logging.INFO, __file__, 1, "hi %s", ("there",), None)
    with sdk.context(request_id="r-plain"):
        text = formatter.format(record)
    assert text.startswith('{"timestamp":"')
    assert '"request_id":"r-plain"' in text and '"host":"h1"' in text and not text.endswith("\n")


def test_render_cycles_never_raise() -> None:
    loop: dict = {"a": 1}
    loop["self"] = loop
    line = render({"message": "m", "loop": loop})
    assert line.endswith(b"\n") and b'"message":"m"' in line


@pytest.mark.parametrize("value", ["warning", "WARN", 30])
def test_level_option(capture, value) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s", level=value)
    logging.getLogger("l").info("dropped")
    logging.getLogger("l").warning("kept")
    assert [r["message"] for r in cap.records()] == ["kept"]


@pytest.mark.parametrize(("options", "message"), [
    ({"level": "LOUD"}, "unknown level 'LOUD'"),
    ({"levels": {"x": "nope"}}, "unknown level 'nope'"),
    ({"sample": {"INFO": 2}}, "within 0..1"),
    ({"redact": {"rules": ["emial"]}}, "unknown redaction rule 'emial'"),
    ({"ship_to": "http://127.0.0.1:9", "compression": "lz4"}, "zstd, gzip or none"),
])
def test_bad_options_are_named(capture, options: dict, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=message):
        capture(service="s", **options)


def test_capture_logs_for_users_tests(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="shop")
    log = logging.getLogger("shop.orders")
    log.info("before")
    with sdk.context(request_id="r-cap"), sdk.capture_logs() as logs:
        log.info("order placed for %s", "bob@example.com", extra={"order_id": "o-42"})
        log.debug("below the root level")
    log.info("after")
    assert [r["message"] for r in logs] == ["order placed for [EMAIL]"]
    assert logs[0]["order_id"] == "o-42" and logs[0]["request_id"] == "r-cap"
    assert logs[0]["service"] == "shop"
    # the real output got every line too
    assert [r["message"] for r in cap.records()] == ["before", "order placed for [EMAIL]", "after"]


def test_capture_logs_without_configure() -> None:
    log = logging.getLogger("bare")
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        with sdk.capture_logs() as logs:
            log.warning("careful", extra={"n": 1})
    finally:
        root.setLevel(old_level)
    assert logs[0]["level"] == "WARN" and logs[0]["n"] == 1 and logs[0]["service"] == "unknown"
