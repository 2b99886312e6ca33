"""The sdk's own fields (``error``, ``code``) beside a key the caller passed under that name: both
values are written, the caller's as ``<name>_attribute`` (docs/record.md "Two values for one
name"). Before, the caller's value was overwritten, a text ``error`` with ``stack_info=True``
lost the whole record (TypeError), and ``stack_info`` replaced the exception's traceback."""

from __future__ import annotations

import logging

import structlog

from logharbor.record import normalize


def test_an_extra_error_is_kept_beside_the_exception(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s", caller_info=True)  # stack_info= needs it
    log = logging.getLogger("own")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed", extra={"error": {"code": "E42"}})
    log.warning("text error", extra={"error": "E43"}, stack_info=True)
    log.info("no collision", extra={"error": "E44"})
    failed, text, plain = cap.records()
    assert failed["error"]["type"] == "ValueError" and failed["error_attribute"] == {"code": "E42"}
    assert failed["code"]["function"] == "test_an_extra_error_is_kept_beside_the_exception"
    assert text["error"]["stack"].startswith("Stack (most recent call last)") and text["error_attribute"] == "E43"
    assert plain["error"] == "E44" and "error_attribute" not in plain
    for line in (failed, text, plain):  # and the server keeps both as attributes
        assert normalize(line)["attributes"].get("error_attribute") == line.get("error_attribute")


def test_the_traceback_and_the_stack_are_both_kept(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s", caller_info=True)
    try:
        raise KeyError("k")
    except KeyError:
        logging.getLogger("own").error("both", exc_info=True, stack_info=True)
    (line,) = cap.records()
    stack = line["error"]["stack"]
    assert stack.startswith("Traceback (most recent call last)") and "KeyError: 'k'" in stack
    assert "\nStack (most recent call last)" in stack  # logging's own order: traceback, then stack


def test_caller_info_beside_an_extra_code(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s", caller_info=True)
    logging.getLogger("own").info("coded", extra={"code": "PAY_001"})
    (line,) = cap.records()
    assert line["code"]["function"] == "test_caller_info_beside_an_extra_code" and line["code_attribute"] == "PAY_001"


def test_a_structlog_error_key_beside_the_exception(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="sl", structlog=True)
    log = structlog.get_logger("own")
    try:
        raise TimeoutError("smtp")
    except TimeoutError:
        log.exception("mail failed", error="E45")
    (line,) = cap.records()
    assert line["error"]["type"] == "TimeoutError" and line["error_attribute"] == "E45"
    structlog.reset_defaults()
