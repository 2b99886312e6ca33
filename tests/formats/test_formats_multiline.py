"""The multiline aggregator: presets on real-shaped stack traces, custom patterns, CRI partial
lines, limits, the flush timeout, and the property that no line is ever lost or reordered."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import examples

from logharbor.formats import ParserConfigError
from logharbor.formats.multiline import build_multiline, fields_of, parse_cri, parse_docker

PYTHON_LOG = """\
2026-11-01 12:00:00,001 ERROR checkout payment failed
Traceback (most recent call last):
  File "/app/pay.py", line 12, in charge
    gateway.charge(order)
  File "/app/gateway.py", line 40, in charge
    raise TimeoutError("gateway")
TimeoutError: gateway

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/app/pay.py", line 14, in charge
    raise PaymentError("declined") from None
app.errors.PaymentError: declined
2026-11-01 12:00:00,002 INFO checkout retry scheduled
2026-11-01 12:00:00,003 INFO checkout done"""

JAVA_LOG = """\
2026-11-01 12:00:00.001 ERROR [main] c.e.OrderService - order failed
java.lang.IllegalStateException: could not place order
\tat com.example.OrderService.place(OrderService.java:42)
\tat com.example.Main.main(Main.java:10)
Caused by: java.sql.SQLException: connection reset
\tat org.postgresql.Driver.connect(Driver.java:99)
\t... 2 more
\tSuppressed: java.io.IOException: close failed
\t\tat com.example.Pool.close(Pool.java:7)
2026-11-01 12:00:00.002 INFO  [main] c.e.OrderService - retrying
Exception in thread "worker-1" java.lang.OutOfMemoryError: Java heap space
\tat java.base/java.util.Arrays.copyOf(Arrays.java:3512)"""

GO_LOG = """\
2026/11/01 12:00:00 handling request /api/orders
panic: runtime error: index out of range [5] with length 3

goroutine 1 [running]:
main.handler(0xc000012345)
\t/app/main.go:18 +0x1d
net/http.HandlerFunc.ServeHTTP(...)
\t/usr/local/go/src/net/http/server.go:2136
created by net/http.(*Server).Serve in goroutine 1
\t/usr/local/go/src/net/http/server.go:3285 +0x4b4
exit status 2
2026/11/01 12:00:01 restarted"""


def run(lines: list[str], **options: object) -> list[str]:
    agg = build_multiline(**options)
    out: list[str] = []
    for i, line in enumerate(lines):
        out += agg.feed(line, i * 0.001)
    return out + agg.close()


def test_python_preset_joins_chained_tracebacks() -> None:
    lines = PYTHON_LOG.split("\n")
    events = run(lines, preset="python")
    assert events == ["\n".join(lines[:14]), lines[14], lines[15]]


def test_java_preset_joins_exception_header_frames_and_causes() -> None:
    lines = JAVA_LOG.split("\n")
    events = run(lines, preset="java")
    assert events == ["\n".join(lines[:9]), lines[9], "\n".join(lines[10:])]


def test_go_preset_joins_a_panic() -> None:
    lines = GO_LOG.split("\n")
    events = run(lines, preset="go")
    assert events == [lines[0], "\n".join(lines[1:11]), lines[11]]


def test_start_pattern_groups_everything_until_the_next_start() -> None:
    lines = ["[2026-11-01] a", "  detail 1", "detail 2", "[2026-11-01] b", "[2026-11-01] c", "tail"]
    assert run(lines, start_pattern=r"\[\d{4}-") == ["\n".join(lines[:3]), lines[3], "\n".join(lines[4:])]


def test_continue_pattern_joins_matching_lines_only() -> None:
    lines = ["first", "  more", "second", "third", "\tmore 3"]
    assert run(lines, continue_pattern=r"\s") == ["first\n  more", "second", "third\n\tmore 3"]


def test_both_patterns() -> None:
    lines = ["START a", "x", "> cont", "START b", "> cont b"]
    events = run(lines, start_pattern="START", continue_pattern=">")
    assert events == ["START a\nx\n> cont", "START b\n> cont b"]


def test_leading_continuation_without_an_event_starts_one() -> None:
    assert run(["  orphan", "  more", "new"], continue_pattern=r"\s") == ["  orphan\n  more", "new"]


def test_timeout_flushes_the_last_event_and_splits_late_continuations() -> None:
    agg = build_multiline(preset="java", timeout=2.0)
    assert agg.feed("ERROR boom", 10.0) == []
    assert agg.feed("\tat a.B.c(B.java:1)", 10.5) == []
    assert agg.pending() and agg.deadline() == 12.5
    assert agg.flush(12.0) == []
    assert agg.flush(12.5) == ["ERROR boom\n\tat a.B.c(B.java:1)"]
    assert not agg.pending() and agg.deadline() is None
    assert agg.feed("INFO x", 20.0) == []
    # a continuation arriving after the timeout cannot reopen an event already flushed
    assert agg.feed("\tat late(B.java:2)", 23.0) == ["INFO x"]
    assert agg.close() == ["\tat late(B.java:2)"]


def test_max_lines_and_max_bytes_emit_early_without_loss() -> None:
    lines = ["ERROR x"] + [f"\tat f{i}(F.java:{i})" for i in range(10)]
    events = run(lines, preset="java", max_lines=4)
    assert [len(e.split("\n")) for e in events] == [4, 4, 3]
    assert "\n".join(events).split("\n") == lines
    big = run(["start", "  " + "y" * 100, "  " + "z" * 100], continue_pattern=r"\s", max_bytes=150)
    assert big == ["start\n  " + "y" * 100, "  " + "z" * 100]


def test_cri_partial_lines_are_joined_per_stream() -> None:
    lines = [
        "2026-11-01T12:00:00.000000001Z stdout P {\"msg\":\"hel",
        "2026-11-01T12:00:00.000000002Z stderr F warning on stderr",
        "2026-11-01T12:00:00.000000003Z stdout P lo wor",
        "2026-11-01T12:00:00.000000004Z stdout F ld\"}",
        "not a CRI line",
        "2026-11-01T12:00:00.000000005Z stdout F ",
    ]
    assert run(lines, cri=True) == ["warning on stderr", '{"msg":"hello world"}', "not a CRI line", ""]
    prefixed = run(lines[:4], cri=True, cri_prefix=True)
    assert prefixed == ["2026-11-01T12:00:00.000000002Z stderr F warning on stderr",
                        '2026-11-01T12:00:00.000000001Z stdout F {"msg":"hello world"}']


def test_cri_with_a_preset_and_partial_timeout() -> None:
    agg = build_multiline(cri=True, preset="java", timeout=1.0)
    out = agg.feed("2026-11-01T12:00:00Z stdout F ERROR failed", 0.0)
    out += agg.feed("2026-11-01T12:00:00Z stdout P \tat a.B", 0.1)
    out += agg.feed("2026-11-01T12:00:00Z stdout F .c(B.java:1)", 0.2)
    out += agg.feed("2026-11-01T12:00:01Z stdout P unterminated", 0.3)
    assert out == []
    assert agg.flush(1.25) == ["ERROR failed\n\tat a.B.c(B.java:1)"]
    assert agg.flush(1.3) == ["unterminated"]


def test_cri_partial_over_max_bytes_is_cut_and_marked_never_split() -> None:
    """Regression: parts past max_bytes used to be emitted as one event and the rest of the line
    as another (a line split in two without a word); now the line keeps its first max_bytes, says
    it was cut and how long it was, and the next line is its own."""
    agg = build_multiline(cri=True, max_bytes=64)
    out: list[str] = []
    for _ in range(5):
        out += agg.feed("2026-11-01T12:00:00Z stdout P " + "a" * 20, 0.0)
    out += agg.feed("2026-11-01T12:00:00Z stdout F end", 0.0)
    out += agg.feed("2026-11-01T12:00:01Z stdout F next", 0.0)
    assert out == ["a" * 64, "next"]
    assert [fields_of(e) for e in out] == [{"truncated": True, "original_bytes": 103}, None]


def test_a_partial_whose_end_never_comes_is_marked() -> None:
    agg = build_multiline(cri=True, timeout=1.0)
    assert agg.feed("2026-11-01T12:00:00Z stdout P cut short", 0.0) == []
    [event] = agg.flush(1.0)
    assert event == "cut short" and fields_of(event) == {"partial": True}
    assert agg.feed("2026-11-01T12:00:00Z stderr P at the end", 2.0) == []
    [event] = agg.close()
    assert event == "at the end" and fields_of(event) == {"partial": True}


def test_events_ended_early_say_so_and_their_continuation_too() -> None:
    lines = ["ERROR x"] + [f"\tat f{i}(F.java:{i})" for i in range(5)] + ["INFO next"]
    events = run(lines, preset="java", max_lines=4)
    assert [fields_of(e) for e in events] == [{"split": "max_lines"}, {"split": "continued"}, None]
    big = run(["start", "  " + "y" * 100, "  " + "z" * 100, "other"], start_pattern=r"\S", max_bytes=150)
    assert big == ["start\n  " + "y" * 100, "  " + "z" * 100, "other"]
    assert [fields_of(e) for e in big] == [{"split": "max_bytes"}, {"split": "continued"}, None]


def test_docker_json_file_partials_are_joined_per_stream() -> None:
    import orjson

    def entry(log: str, stream: str = "stdout") -> str:
        return orjson.dumps({"log": log, "stream": stream, "time": "2026-11-01T12:00:00.1Z"}).decode()

    lines = [entry("a" * 10), entry("oops\n", "stderr"), entry("b" * 10), entry("c\n"),
             "plain text line", entry("\tat x.y(Z.java:1)\r\n")]
    assert run(lines, docker=True) == ["oops", "a" * 10 + "b" * 10 + "c", "plain text line",
                                       "\tat x.y(Z.java:1)"]
    assert run([entry("ERROR x\n"), entry("\tat "), entry("a.B(C.java:1)\n")], docker=True,
               preset="java") == ["ERROR x\n\tat a.B(C.java:1)"]
    assert parse_docker('{"log": 5}') is None and parse_docker("[1]") is None


def test_parse_cri() -> None:
    assert parse_cri("2026-11-01T12:00:00Z stderr P x y") == ("2026-11-01T12:00:00Z", "stderr", True, "x y")
    assert parse_cri("2026-11-01T12:00:00Z stdout F:x z") == ("2026-11-01T12:00:00Z", "stdout", False, "z")
    assert parse_cri("hello") is None


@pytest.mark.parametrize("options,option", [
    ({}, "preset"),
    ({"preset": "ruby"}, "preset"),
    ({"preset": "java", "start_pattern": "x"}, "preset"),
    ({"start_pattern": "("}, "start_pattern"),
    ({"continue_pattern": "[a"}, "continue_pattern"),
    ({"preset": "go", "max_lines": 0}, "max_lines"),
    ({"preset": "go", "timeout": 0}, "timeout"),
    ({"preset": "go", "cri_prefix": True}, "cri_prefix"),
    ({"cri": True, "docker": True}, "docker"),
])
def test_config_errors_name_the_option(options: dict, option: str) -> None:
    with pytest.raises(ParserConfigError, match=f"option '{option}'"):
        build_multiline(**options)


LINE = st.one_of(
    st.sampled_from(["ERROR x", "Traceback (most recent call last):", "  File \"a.py\", line 1",
                     "ValueError: v", "", "\tat a.B(C.java:1)", "Caused by: x.Y: z", "panic: boom",
                     "goroutine 1 [running]:", "main.main()", "exit status 2", "2026-11-01 INFO ok"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r"), max_size=30),
)


@settings(max_examples=examples(150), deadline=None)
@given(lines=st.lists(LINE, max_size=40), preset=st.sampled_from(["java", "python", "go"]),
       max_lines=st.integers(1, 8), gaps=st.lists(st.floats(0, 3), min_size=40, max_size=40))
def test_no_line_is_lost_or_reordered(lines: list[str], preset: str, max_lines: int,
                                      gaps: list[float]) -> None:
    agg = build_multiline(preset=preset, max_lines=max_lines, timeout=1.0)
    now = 0.0
    events: list[str] = []
    for line, gap in zip(lines, gaps, strict=False):
        now += gap
        events += agg.flush(now)
        events += agg.feed(line, now)
    events += agg.close()
    joined = [part for event in events for part in event.split("\n")]
    assert joined == lines
    assert all(len(event.split("\n")) <= max_lines for event in events)
