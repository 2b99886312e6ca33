"""What a Loki push line says about itself: the keys of a JSON or logfmt line, and its level.

Why: Loki parses lines at query time (``| json``, ``| logfmt``); logharbor stores records
structured, so a pushed line that is a JSON object, or wholly ``key=value`` pairs, is parsed when
it arrives: its keys become attributes (nested objects kept, every key as written) and the line
itself stays the message, byte for byte. ``| json | reqId="r-5"`` then filters on a stored
field, and so does the native ``reqId:r-5``. The level comes from the line when the stream has
none (Loki's own level detection reads the same keys).
"""

from __future__ import annotations

from typing import Any

from logharbor import exactjson
from logharbor.formats.logfmt import parse_logfmt
from logharbor.record import normalize_level

__all__ = ["LEVEL_KEYS", "line_fields"]

#: keys a line's level is read from, first found wins (Loki's distributor checks these too)
LEVEL_KEYS = ("level", "LEVEL", "Level", "severity", "SEVERITY", "Severity", "lvl", "LVL", "Lvl",
              "levelname", "log.level", "@l", "loglevel", "severity_text")
_MAX_LINE = 256 * 1024


def _level(fields: dict[str, Any]) -> str | None:
    for key in LEVEL_KEYS:
        value = fields.get(key)
        if isinstance(value, dict) and key == "log":
            continue
        if value is None:
            continue
        return normalize_level(value)  # a number is pino's and bunyan's scale, as in any record
    nested = fields.get("log")
    if isinstance(nested, dict) and "level" in nested:  # ECS: {"log": {"level": "error"}}
        return normalize_level(nested["level"])
    return None


def line_fields(line: str) -> tuple[dict[str, Any] | None, str | None]:
    """The keys of a JSON-object or all-``key=value`` line (None for any other line) and the
    level they name (None when none does)."""
    text = line.strip()
    if not text or len(text) > _MAX_LINE:
        return None, None
    if text[0] == "{" and text[-1] == "}":
        try:
            obj = exactjson.loads(text)  # integers beyond 64 bits stay exact, as on native ingest
        except ValueError:  # orjson's JSONDecodeError and ExactJSONError both are
            return None, None
        if not isinstance(obj, dict) or not obj:
            return None, None
        return obj, _level(obj)
    if "=" not in text:
        return None, None
    strict = parse_logfmt(text, typed=False)
    if isinstance(strict, str) or any(v is True for v in strict.values()):  # a bare word: prose, not logfmt
        return None, None
    typed = parse_logfmt(text)
    assert isinstance(typed, dict)
    return typed, _level(typed)
