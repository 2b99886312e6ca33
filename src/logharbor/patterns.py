"""Log templates: the shape a message takes once its variable parts are masked.

``GET /orders/o-42 took 12ms for user u-7`` and ``GET /orders/o-913 took 480ms for user u-31``
are one template, ``GET <path> took <num>ms for user <*>``. The template is computed from the
message alone (no state), so every ingest worker and every server gives one message the same
*masked-template id* — a hash of the service and the template (:func:`pattern_id`). What masking
cannot know, that a word no rule masks (a user or table name) is a parameter, the miner learns
from the set of masked templates of a service (:mod:`logharbor.miner`, docs/patterns.md).

It works token by token; a word with no digit passes untouched, which is most of them. A token
with a digit is, in order: a URL, UUID, e-mail address, IPv4/IPv6 address with an optional port,
a host name with a port, a hex id (8+ hex digits, or ``0x…``), a path of two or more segments or
with a file extension (``<path>``; a query string keeps its names: ``/search?q=<*>``), a date or
time of day (``<time>``), a number with an optional short unit (``12ms`` → ``<num>ms``), an
*identifier* — letters and then one or two digits, ``SOCKS5``, ``ssh2``, ``v2``, ``eth0`` — kept as
it is, and otherwise it is cut at ``= : , ; ( ) [ ] { } | / "`` and each piece with a digit is
masked alone (``uid=0`` → ``uid=<num>``, ``HTTP/1.1`` → ``HTTP/<num>``), the rest ``<*>``
(``o-42``, ``req_9f``). Around the tokens: a unit written apart joins its number (``5.2 KB`` →
``<num>KB``, one token like ``5.2KB``), a parenthesis that only restates a number
(``1190 bytes (1.16 KB)``) is dropped, and weekday and month names next to a masked number are
masked (``Sun Jul 24 02:38:22 2005`` → ``<*> <*> <num> <time> <num>``).
"""

from __future__ import annotations

import re
from itertools import product
from zlib import crc32

__all__ = ["PLACEHOLDER", "WILDCARD", "has_placeholder", "pattern_id", "pattern_key", "template_of"]

WILDCARD = "<*>"
#: every placeholder masking writes; a token holding one is a variable
PLACEHOLDER = re.compile(r"<(?:\*|num|ip|hex|uuid|url|email|path|time)>")
has_placeholder = PLACEHOLDER.search

_DIGIT = re.compile(r"\d").search
_EDGE = "()[]{}<>,;:.!?\"'"
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.I)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IPV4 = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?")
_IPV6 = re.compile(r"\[?(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\]?(?::\d+)?", re.I)
_HOST_PORT = re.compile(r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+:\d{1,5}")
_HEX = re.compile(r"(?=[0-9a-f]*\d)[0-9a-f]{8,}|0x[0-9a-f]+", re.I)
_PATH = re.compile(r"/[^\s/]+(?:/[^\s/]*)+|/[^\s/]*\.[^\s/]+")
_TIME = re.compile(r"(?:\d{4}-\d\d-\d\d(?:[T_ ]?\d\d:\d\d(?::\d\d)?)?|\d\d?:\d\d(?::\d\d)?)"
                   r"(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?", re.I)
_NUMBER = re.compile(r"([-+~]?\d+(?:[.,]\d+)*)([a-zA-Zµ%]{0,3})")
_IDENTIFIER = re.compile(r"[A-Za-z]+\d{1,2}")
_PIECES = re.compile(r"([=:,;()\[\]{}|/\"]+)")
_RESTATED = re.compile(r"\s*\(\s*[-+~]?\d+(?:[.,]\d+)?\s*[A-Za-zµ%]{0,3}\s*\)")
_UNITS = frozenset("b kb mb gb tb kib mib gib tib ms us µs ns s sec secs min mins h hr hrs".split())
_MAX_CHARS = 2000  # the head of a very long message decides its shape


def _typed(core: str) -> str | None:
    """The typed mask of a whole token (edges stripped), or None; each pattern runs only when
    the token has the character it needs."""
    if "://" in core and _URL.fullmatch(core):
        return "<url>"
    if len(core) == 36 and _UUID.fullmatch(core):
        return "<uuid>"
    if "@" in core and _EMAIL.fullmatch(core):
        return "<email>"
    colons = core.count(":")
    if core.count(".") == 3 and colons <= 1 and _IPV4.fullmatch(core):
        return "<ip>"
    if colons >= 2 and ("::" in core or colons >= 5) and _IPV6.fullmatch(core):
        return "<ip>"
    if core[0] == "/":
        if "?" in core and "=" in core:  # /search?q=decaf&page=2 → /search?q=<*>&page=<*>
            path, _, query = core.partition("?")
            path = "<path>" if _PATH.fullmatch(path) else path
            return path + "?" + "&".join(kv.partition("=")[0] + "=<*>" if "=" in kv else kv
                                         for kv in query.split("&"))
        if _PATH.fullmatch(core):
            return "<path>"
    return None


def _mask_core(core: str, whole: bool = True) -> str:
    """A token with a digit (edges stripped): its typed mask, or its pieces masked one by one."""
    if core.isdigit() and core.isascii():  # the common case, decided without a regex
        return "<num>"
    typed = _typed(core)
    if typed is not None:
        return typed
    if ":" in core and _HOST_PORT.fullmatch(core):
        return "<*>:<num>"
    if len(core) >= 3 and _HEX.fullmatch(core):
        return "<hex>"
    if (":" in core or "-" in core) and _TIME.fullmatch(core):
        return "<time>"
    m = _NUMBER.fullmatch(core)
    if m is not None:
        return "<num>" + m[2]
    if _IDENTIFIER.fullmatch(core):
        return core  # SOCKS5, ssh2, v2, eth0: a name, not a number
    if whole:
        pieces = _PIECES.split(core)
        if len(pieces) > 1:
            return "".join(_mask_core(p, False) if p and _DIGIT(p) and not _PIECES.fullmatch(p) else p
                           for p in pieces)
    return WILDCARD


def _mask(token: str) -> str:
    if token.isalpha():
        return token
    core = token.strip(_EDGE)
    if not core:
        return token
    if not _DIGIT(core):
        if core[0] == "/" or "://" in core or "@" in core:  # paths, URLs, addresses without digits
            typed = _typed(core)
            if typed is not None:
                start = token.find(core)
                return token[:start] + typed + token[start + len(core):]
        return token
    start = token.find(core)
    return token[:start] + _mask_core(core) + token[start + len(core):]


_UNIT_MAX = max(map(len, _UNITS))
_CALENDAR = frozenset(
    "Mon Tue Wed Thu Fri Sat Sun Jan Feb Mar Apr May Jun Jul Aug Sep Sept Oct Nov Dec Monday Tuesday "
    "Wednesday Thursday Friday Saturday Sunday January February March April June July August "
    "September October November December".split())


_MASKED: dict[str, str] = {}  # token → its mask: tokens repeat far more than messages do
_MASKED_MAX = 100_000
#: the tokens :func:`_around` looks at (units as written, with the punctuation that may follow, and
#: calendar names): a message with none of them skips that pass
_AROUND = frozenset(
    ["".join(spelling) + tail for unit in _UNITS
     for spelling in product(*({c.lower(), c.upper()} for c in unit))
     for tail in ("", ",", ".", ")", ";", ":")]
    + [n + tail for n in _CALENDAR for tail in ("", ",", ".")])


def _remember(token: str) -> str:
    """The mask of a token not in :data:`_MASKED` (and put it there)."""
    if token.isdigit():
        return "<num>"  # numbers vary: not worth a place in the cache
    masked = _mask(token)
    if len(_MASKED) >= _MASKED_MAX:
        _MASKED.clear()
    _MASKED[token] = masked
    return masked


def _tokens(message: str) -> list[str]:
    """The masked tokens of ``message``."""
    text = message[:_MAX_CHARS]
    if "(" in text and _DIGIT(text):
        text = _RESTATED.sub("", text)  # "1190 bytes (1.16 KB)": the parenthesis restates a number
    tokens = text.split()
    known = _MASKED.get
    out = [known(t) or _remember(t) for t in tokens]
    if not _AROUND.isdisjoint(tokens):  # rare: a unit written apart, or a weekday or month name
        out = _around(tokens, out)
    return out


def _around(tokens: list[str], masked: list[str]) -> list[str]:
    """Join a unit written apart to its number ("5.2 KB" → "<num>KB", one token like "5.2KB");
    mask a weekday or month name beside a masked number (part of a date)."""
    out: list[str] = []
    dates: list[int] = []
    for token, mask in zip(tokens, masked, strict=True):
        if out and mask == token and out[-1].endswith("<num>") and token.rstrip(_EDGE).lower() in _UNITS:
            out[-1] += token
            continue
        if mask == token and token.rstrip(",.") in _CALENDAR:
            dates.append(len(out))
        out.append(mask)
    for i in dates:
        if any(0 <= j < len(out) and has_placeholder(out[j]) for j in (i - 1, i + 1, i + 2)):
            out[i] = WILDCARD
    return out


_CACHE: dict[str, str] = {}  # identical messages are common; bounded, cleared when full
_CACHE_MAX = 20_000


def template_of(message: str) -> str:
    """The message with its variable parts masked, whitespace folded."""
    cached = _CACHE.get(message)
    if cached is not None:
        return cached
    template = " ".join(_tokens(message))
    if len(message) <= 512:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[message] = template
    return template


def pattern_key(tenant: str | None, service: str | None) -> str:
    """What a masked-template id is computed over: the service, within its tenant when it has one."""
    return f"{tenant}\x00{service or ''}" if tenant else (service or "")


_IDS: dict[tuple[str | None, str], str] = {}  # templates repeat far more than messages do
_IDS_MAX = 20_000


def pattern_id(service: str | None, template: str) -> str:
    """16 hex digits naming (service, template); the same everywhere, stable across restarts."""
    key = (service, template)
    known = _IDS.get(key)
    if known is not None:
        return known
    head = crc32(template.encode())
    tail = crc32((service or "").encode() + b"\x00" + template.encode(), 0x5F3759DF)
    out = f"{head:08x}{tail:08x}"
    if len(template) <= 512:
        if len(_IDS) >= _IDS_MAX:
            _IDS.clear()
        _IDS[key] = out
    return out
