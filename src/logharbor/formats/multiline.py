"""Multiline aggregation: joins the lines of one event (a stack trace, a CRI partial line) back
together before a parser sees them.

This is a stateful *aggregator*, not a per-line parser, so it has its own small interface that
the agent drives: ``feed(line, now) -> list[str]`` returns the events a line completed, and
``flush(now) -> list[str]`` returns events whose last line is older than ``timeout`` (the last
event of a file that went quiet); ``close()`` returns whatever is left at shutdown. ``now`` is
any monotonic clock in seconds. Nothing is dropped: an event reaching ``max_lines``, or a line
that would take it past ``max_bytes``, ends it early and the following lines make a new event
(a single line longer than ``max_bytes`` is one event on its own, never cut).

Nothing is cut or split without a word either: an event that is not what the input held is an
:class:`Event` (a ``str``) whose ``fields`` say how, and the sources add them to its record —
``split: "max_lines"`` / ``"max_bytes"`` on an event ended early and ``split: "continued"`` on the
event its next lines made; ``truncated: true`` and ``original_bytes`` on a CRI/Docker line whose
parts went past ``max_bytes`` (its first ``max_bytes`` are kept, the rest of its parts skipped up
to its last: the next line is never made of them); ``partial: true`` on a line whose last part
never came (within ``timeout``, or before the input ended).

How lines are grouped is a small state machine of rules ``(states, regex, action, next state)``,
the model of Fluent Bit's multiline parsers: presets ``java``, ``python`` and ``go`` are rule
tables, and ``start_pattern`` / ``continue_pattern`` build a one-rule table. With ``cri: true``,
lines are first read as CRI container log lines (``<time> <stream> <P|F> <text>``): ``P`` parts
are joined until their ``F`` line, per stream, and the rules then apply to the joined text;
``docker: true`` does the same for Docker ``json-file`` lines, whose ``log`` lacks its final
newline while a long line is split.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

import orjson
from pydantic import Field, field_validator, model_validator

from logharbor.formats.base import Options, ParserConfigError

__all__ = ["PRESETS", "Event", "MultilineAggregator", "MultilineOptions", "PartialLine", "build_multiline",
           "fields_of", "parse_cri", "parse_docker", "utf8_len"]

JOIN, START = "join", "start"


@dataclass(frozen=True)
class Rule:
    """In any of ``states`` (None: any), a line matching ``pattern`` joins the open event or
    starts a new one, and the machine moves to ``next`` (None: stays)."""

    states: frozenset[str] | None
    pattern: re.Pattern[str]
    action: str
    next: str | None = None


def _rule(states: str | None, pattern: str, action: str, nxt: str | None = None) -> Rule:
    return Rule(frozenset(states.split()) if states else None, re.compile(pattern), action, nxt)


#: preset name → (rules, action when no rule matches)
PRESETS: dict[str, tuple[tuple[Rule, ...], str]] = {
    "java": ((
        _rule(None, r"\s+at |\s+\.\.\. \d+ (?:more|common frames omitted)|\s*Caused by: "
                    r"|\s*Suppressed: |\s+~?\[[^\]]*\]\s*$", JOIN),
        # the exception header a logger prints under its message: "java.lang.IllegalStateException: x"
        _rule(None, r"(?:[a-zA-Z_$][\w$]*\.)+[\w$]*(?:Exception|Error|Throwable)\b(?::.*)?$", JOIN),
    ), START),
    "python": ((
        _rule(None, r"Traceback \(most recent call last\):\s*$", JOIN, "tb"),
        _rule("tb", r"[ \t]", JOIN),
        _rule("tb", r"[A-Za-z_][\w.]*(?::.*)?$", JOIN, "exc"),
        _rule("exc chain", r"\s*$", JOIN),
        _rule("exc", r"[ \t]", JOIN),
        _rule("exc", r"During handling of the above exception|The above exception was the direct "
                     r"cause", JOIN, "chain"),
    ), START),
    "go": ((
        _rule(None, r"(?:panic: |fatal error: |runtime: |SIG[A-Z]+: )", START, "panic"),
        _rule("panic", r"\s*$|\s|goroutine \d+ \[|created by |\[(?:recovered|signal)|exit status \d+"
                       r"|[\w./*()\[\]{}%-]+\(.*\)\s*$|(?:r[a-z0-9]{1,2}|pc|lr|sp|fault|trap|err)\s+0x",
              JOIN),
    ), START),
}

_CRI = re.compile(r"(\S+) (stdout|stderr) ([PF])(?::\S*)? ?(.*)\Z", re.S)


def parse_cri(line: str) -> tuple[str, str, bool, str] | None:
    """``2026-11-01T12:00:00.1Z stdout P text`` → (time, stream, is_partial, text), or None."""
    m = _CRI.match(line)
    if m is None:
        return None
    return m[1], m[2], m[3] == "P", m[4]


def parse_docker(line: str) -> tuple[str, str, bool, str] | None:
    """A Docker ``json-file`` line ``{"log":"text\\n","stream":"stdout","time":"…"}`` →
    (time, stream, is_partial, text without its newline), or None. Docker splits lines longer
    than 16 KiB into entries whose ``log`` does not end with a newline."""
    if not line.startswith("{"):
        return None
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    text = obj.get("log")
    if not isinstance(text, str):
        return None
    stream = obj.get("stream")
    time = obj.get("time")
    partial = not text.endswith("\n")
    if not partial:
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    return (time if isinstance(time, str) else "", stream if isinstance(stream, str) else "stdout",
            partial, text)


class Event(str):
    """An event that is not exactly what the input held: ``fields`` say how (see the module
    docstring); its record gets them."""

    fields: dict[str, object]


def _event(text: str, fields: dict[str, object] | None) -> str:
    if not fields:
        return text
    event = Event(text)
    event.fields = fields
    return event


def fields_of(event: str) -> dict[str, object] | None:
    """The fields an event carries about how it was cut or split, or None (most events)."""
    return event.fields if type(event) is Event else None


def utf8_len(text: str) -> int:
    """The length of ``text`` in UTF-8 bytes (what ``max_bytes`` counts)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


@dataclass
class _Event:
    lines: list[str]
    size: int
    last: float
    prefix: str = ""
    fields: dict[str, object] | None = None


@dataclass
class PartialLine:
    """The parts of one CRI/Docker line so far: its first ``max_bytes`` kept, every part counted."""

    parts: list[str] = field(default_factory=list)
    size: int = 0  # bytes kept
    total: int = 0  # bytes of every part
    time: str = ""
    last: float = 0.0

    def add(self, text: str, limit: int) -> None:
        n = utf8_len(text)
        self.total += n
        if self.size + n <= limit:
            self.parts.append(text)
            self.size += n
        elif self.size < limit:  # the part that crosses the limit: its head, whole characters
            head = text.encode("utf-8", "surrogatepass")[: limit - self.size]
            self.parts.append(head.decode("utf-8", "ignore"))
            self.size = limit

    def fields(self, ended: bool) -> dict[str, object] | None:
        """How the joined line differs from the input's: cut, and/or never ended."""
        out: dict[str, object] = {}
        if self.total > self.size:
            out.update(truncated=True, original_bytes=self.total)
        if not ended:
            out["partial"] = True
        return out or None


class MultilineOptions(Options):
    """Options of the multiline aggregator (see the module docstring and docs/formats.md)."""

    preset: Literal["java", "python", "go"] | None = None
    start_pattern: str | None = None
    continue_pattern: str | None = None
    cri: bool = False
    cri_prefix: bool = False
    docker: bool = False
    max_lines: int = Field(500, ge=1)
    #: the server's max_field_bytes: a longer event (its message) would be refused there
    max_bytes: int = Field(262_144, ge=64)
    timeout: float = Field(1.0, gt=0)

    @field_validator("start_pattern", "continue_pattern")
    @classmethod
    def _compile(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"regex does not compile: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_way(self) -> MultilineOptions:
        custom = self.start_pattern is not None or self.continue_pattern is not None
        if self.preset and custom:
            raise ValueError("option 'preset': give a preset or start/continue patterns, not both")
        if not (self.preset or custom or self.cri or self.docker):
            raise ValueError("option 'preset': give a preset, a start_pattern/continue_pattern, cri "
                             "or docker")
        if self.cri and self.docker:
            raise ValueError("option 'docker': a stream is CRI or Docker json-file, not both")
        if self.cri_prefix and not self.cri:
            raise ValueError("option 'cri_prefix': only meaningful with cri: true")
        return self


class MultilineAggregator:
    """Joins continuation lines into events; one instance per input stream (per file)."""

    def __init__(self, options: MultilineOptions) -> None:
        self.options = options
        self._rules: tuple[Rule, ...] = ()
        self._default = JOIN
        if options.preset:
            self._rules, self._default = PRESETS[options.preset]
        elif options.start_pattern is not None or options.continue_pattern is not None:
            rules = []
            if options.continue_pattern is not None:
                rules.append(Rule(None, re.compile(options.continue_pattern), JOIN))
            if options.start_pattern is not None:
                rules.append(Rule(None, re.compile(options.start_pattern), START))
            self._rules = tuple(rules)
            self._default = JOIN if options.start_pattern is not None else START
        self._grouping = bool(self._rules)
        self._events: dict[str, _Event] = {}
        self._states: dict[str, str] = {}
        self._partials: dict[str, PartialLine] = {}
        #: keys whose last event was ended early (max_lines, max_bytes): a joining line continues it
        self._split: set[str] = set()

    # -- public interface ---------------------------------------------------------------------

    def feed(self, line: str, now: float, fields: dict[str, object] | None = None) -> list[str]:
        """Add one line (without its newline); return the events it completed, oldest first.
        ``fields``: how the line itself differs from the input (a line the source cut)."""
        out: list[str] = []
        self._expire(now, out)
        if line.endswith("\n"):
            line = line[:-1]
        if self.options.cri:
            framed = parse_cri(line)
        elif self.options.docker:
            framed = parse_docker(line)
        else:
            framed = None
        if framed is None:  # no framing (or not the expected one): the line as it is
            self._group("", line, "", now, out, fields)
            return out
        time, stream, partial, text = framed
        p = self._partials.get(stream)
        if partial:
            if p is None:
                p = self._partials[stream] = PartialLine(time=time)
            p.add(text, self.options.max_bytes)  # past max_bytes: counted, skipped up to the last part
            p.last = now
            return out
        if p is not None:
            del self._partials[stream]
            p.add(text, self.options.max_bytes)
            text, time, fields = "".join(p.parts), p.time, p.fields(ended=True)
        self._group(stream, text, self._prefix(time, stream), now, out, fields)
        return out

    def flush(self, now: float) -> list[str]:
        """Return the events (and CRI partials) whose last line is ``timeout`` or more old."""
        out: list[str] = []
        self._expire(now, out)
        return out

    def close(self) -> list[str]:
        """Return every pending event, for shutdown or end of input."""
        out: list[str] = []
        for stream, p in list(self._partials.items()):
            del self._partials[stream]
            self._group(stream, "".join(p.parts), self._prefix(p.time, stream), p.last, out,
                        p.fields(ended=False))
        for key in list(self._events):
            self._emit(key, out)
        return out

    def pending(self) -> bool:
        """True while some event or partial line waits for more lines or its timeout."""
        return bool(self._events or self._partials)

    def deadline(self) -> float | None:
        """When the oldest pending event times out (in ``now`` units), or None."""
        times = [e.last for e in self._events.values()] + [p.last for p in self._partials.values()]
        return min(times) + self.options.timeout if times else None

    # -- internals ----------------------------------------------------------------------------

    def _prefix(self, time: str, stream: str) -> str:
        return f"{time} {stream} F " if self.options.cri_prefix else ""

    def _expire(self, now: float, out: list[str]) -> None:
        timeout = self.options.timeout
        for stream, p in list(self._partials.items()):
            if now - p.last >= timeout:
                del self._partials[stream]
                self._group(stream, "".join(p.parts), self._prefix(p.time, stream), p.last, out,
                            p.fields(ended=False))
        for key, event in list(self._events.items()):
            if now - event.last >= timeout:
                self._emit(key, out)

    def _emit(self, key: str, out: list[str], ended_early: str | None = None) -> None:
        event = self._events.pop(key)
        fields = event.fields
        if ended_early is not None:
            fields = {**(fields or {}), "split": ended_early}
            self._split.add(key)
        out.append(_event(event.prefix + "\n".join(event.lines), fields))

    def _group(self, key: str, line: str, prefix: str, now: float, out: list[str],
               fields: dict[str, object] | None = None) -> None:
        if not self._grouping:
            out.append(_event(prefix + line, fields))
            return
        state = self._states.get(key, "start")
        action, nxt = self._default, "start"
        for rule in self._rules:
            if (rule.states is None or state in rule.states) and rule.pattern.match(line):
                action = rule.action
                nxt = rule.next if rule.next is not None else state
                break
        continued = key in self._split
        if continued:
            self._split.discard(key)
        event = self._events.get(key)
        n = utf8_len(line)
        if event is not None and event.size + n + 1 > self.options.max_bytes:
            # the line would push the event over max_bytes: it starts the next
            self._emit(key, out, "max_bytes" if action == JOIN else None)
            self._split.discard(key)
            continued = action == JOIN
            event = None
        if action == JOIN and event is not None:
            event.lines.append(line)
            event.size += n + 1
            event.last = now
            if fields:
                event.fields = {**(event.fields or {}), **fields}
        else:
            if event is not None:
                self._emit(key, out)
            if continued and action == JOIN:  # the rest of an event ended early
                fields = {**(fields or {}), "split": "continued"}
            event = self._events[key] = _Event([line], n, now, prefix, fields)
        self._states[key] = nxt
        if len(event.lines) >= self.options.max_lines:
            self._emit(key, out, "max_lines")
        elif event.size >= self.options.max_bytes:
            if len(event.lines) > 1:
                self._emit(key, out, "max_bytes")
            else:  # one long line: nothing of it split, but a line joining it next continues it
                self._emit(key, out)
                self._split.add(key)


def build_multiline(**options: object) -> MultilineAggregator:
    """Build an aggregator from config options, validated up front (errors name the option)."""
    from pydantic import ValidationError

    from logharbor.formats.base import _describe

    try:
        valid = MultilineOptions.model_validate(options)
    except ValidationError as exc:
        raise ParserConfigError(_describe("multiline", exc)) from None
    return MultilineAggregator(valid)
