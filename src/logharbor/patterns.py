"""Log templates: the shape a message takes once its variable parts are masked.

``GET /orders/o-42 took 12ms for user u-7`` and ``GET /orders/o-913 took 480ms for user u-31``
are one template, ``GET /orders/<*> took <num>ms for user <*>``. The template is computed from
the message alone (no state), so every ingest worker and every server gives one message the same
``pattern_id`` — the id is a hash of the service and the template — and it is stored with the
record at ingest. What a stateful miner such as Drain adds (merging templates that differ in a
word no rule masks) happens at query time over these templates, where the whole picture is known.

It works token by token (words without digits pass untouched, which is most of them, so the cost
is a few µs per message): quoted strings, then per token URLs, UUIDs, e-mail addresses,
IPv4/IPv6 addresses with an optional port, hex ids (≥ 8 hex digits with a digit), paths of two
or more segments (or with a file extension), numbers with a unit kept (``12ms`` → ``<num>ms``),
and any other token holding a digit (``o-42``, ``req_9f``) becomes ``<*>``.
"""

from __future__ import annotations

import re
from zlib import crc32

__all__ = ["pattern_id", "template_of"]

_QUOTED = re.compile(r'"[^"]*"|\'[^\']*\'')
_PLAIN = re.compile(r"[A-Za-z_-]*")  # a word with no digit and nothing special: kept as it is
_EDGE = "()[]{}<>,;:.!?"
_CLASSES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.I), "<url>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I), "<uuid>"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?"), "<ip>"),
    (re.compile(r"\[?(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\]?(?::\d+)?", re.I), "<ip>"),
    (re.compile(r"(?=[0-9a-f]*\d)[0-9a-f]{8,}", re.I), "<hex>"),
    (re.compile(r"/[^\s/]+(?:/[^\s/]*)+|/[^\s/]*\.[^\s/]+"), "<path>"),
)
_NUMBER = re.compile(r"([-+]?\d+(?:[.,]\d+)?)([a-zA-Zµ%]{0,3})")
_MAX_CHARS = 2000  # the head of a very long message decides its shape


def _mask(token: str) -> str:
    if token.isalpha():
        return token
    core = token.strip(_EDGE)
    if not core or _PLAIN.fullmatch(core):
        return token
    start = token.find(core)
    head, tail = token[:start], token[start + len(core):]
    for pattern, mask in _CLASSES:
        if pattern.fullmatch(core):
            return head + mask + tail
    m = _NUMBER.fullmatch(core)
    if m is not None:
        return head + "<num>" + m[2] + tail
    if any(c.isdigit() for c in core):
        return head + "<*>" + tail
    return token


_CACHE: dict[str, str] = {}  # identical messages are common; bounded, cleared when full
_CACHE_MAX = 20_000


def template_of(message: str) -> str:
    """The message with its variable parts masked, whitespace folded."""
    cached = _CACHE.get(message)
    if cached is not None:
        return cached
    text = message[:_MAX_CHARS]
    if '"' in text or "'" in text:
        text = _QUOTED.sub('"<str>"', text)
    template = " ".join([_mask(token) for token in text.split()])
    if len(message) <= 512:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[message] = template
    return template


def pattern_id(service: str | None, template: str) -> str:
    """16 hex digits naming (service, template); the same everywhere, stable across restarts."""
    head = crc32(template.encode())
    tail = crc32((service or "").encode() + b"\x00" + template.encode(), 0x5F3759DF)
    return f"{head:08x}{tail:08x}"
