"""The logger shortcut writes what stdlib logging would, and steps aside whenever it must."""

from __future__ import annotations

import logging

import pytest

from logharbor import sdk
from logharbor.sdk import logger as fast_logger


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _calls(log: logging.Logger) -> None:
    log.info("plain")
    log.info("args %s %d", "a", 2, extra={"k": [1, 2]})
    log.warning("mapping %(x)s", {"x": "y"})
    try:
        raise OSError("disk")
    except OSError as exc:
        log.error("failed", exc_info=True)
        log.error("failed again", exc_info=exc)
    log.debug("below the level")


def _comparable(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "timestamp"} for r in records]


def test_shortcut_matches_stdlib(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="fast")
    log = logging.getLogger("fast.path")
    assert type(log) is fast_logger.Logger
    _calls(log)
    fast = cap.records()
    sdk.shutdown()  # turns the shortcut off: the same calls now go the stdlib way
    cap2 = capture(service="fast", caller_info=False)
    fast_logger.disable()
    _calls(log)
    slow = cap2.records()
    assert len(fast) == 5
    assert _comparable(fast) == _comparable(slow)
    assert fast[2]["message"] == "mapping y"
    assert fast[3]["error"]["type"] == "OSError"


def test_plain_loggers_made_before_configure_are_adopted(capture) -> None:  # type: ignore[no-untyped-def]
    early = logging.Logger.manager.getLogger("made.before.configure")
    if type(early) is not logging.Logger:  # another test adopted it already: make a fresh one
        early.__class__ = logging.Logger
    capture(service="s")
    assert type(logging.getLogger("made.before.configure")) is fast_logger.Logger


@pytest.mark.parametrize("setup", ["handler_on_parent", "filter_on_logger", "no_propagate", "stack_info"])
def test_falls_back_whenever_someone_else_could_see_the_record(capture, setup: str) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s", caller_info=False)
    parent = logging.getLogger(f"fb.{setup}")
    log = logging.getLogger(f"fb.{setup}.child")
    extra_handler = ListHandler()
    seen: list[str] = []
    try:
        if setup == "handler_on_parent":
            parent.addHandler(extra_handler)
        elif setup == "filter_on_logger":
            log.addFilter(lambda r: seen.append(r.getMessage()) or r.getMessage() != "hidden")
        elif setup == "no_propagate":
            parent.propagate = False
            parent.addHandler(extra_handler)
        if setup == "stack_info":
            log.info("visible", stack_info=True)
        else:
            log.info("visible")
            log.info("hidden")
        messages = [r["message"] for r in cap.records()]
        if setup == "handler_on_parent":
            assert [r.getMessage() for r in extra_handler.records] == ["visible", "hidden"]
            assert messages == ["visible", "hidden"]
        elif setup == "filter_on_logger":
            assert seen == ["visible", "hidden"] and messages == ["visible"]
        elif setup == "no_propagate":
            assert [r.getMessage() for r in extra_handler.records] == ["visible", "hidden"]
            assert messages == []
        else:
            assert messages == ["visible"]
    finally:
        parent.removeHandler(extra_handler)
        parent.propagate = True
        log.filters.clear()


def test_reserved_extra_keys_raise_like_stdlib(capture) -> None:  # type: ignore[no-untyped-def]
    capture(service="s")
    log = logging.getLogger("reserved")
    for key in ("message", "name", "lineno"):
        with pytest.raises(KeyError, match="Attempt to overwrite"):
            log.info("x", extra={key: 1})
