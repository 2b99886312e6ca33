"""JSON lines: each line is one JSON object (what the sdk, Docker, Bunyan, pino and zap write).

The object is returned as it is; :func:`logharbor.record.normalize` folds its aliases (``msg``,
``@timestamp``, ``levelname`` …) later, so this parser stays one ``orjson.loads`` per line plus
a check of the few values normalize could reject (the timestamp, numeric ``http`` fields).
The line is read by orjson, unless the line holds a
digit run that may be an integer beyond 64 bits, which orjson would turn into a float
(``18446744073709551617`` shipped as ``1.8446744073709552e19``); such lines keep it exact.
"""

from __future__ import annotations

import orjson

from logharbor import exactjson
from logharbor.formats.base import Options, guard, register, unparsed
from logharbor.types import RawRecord

__all__ = ["JsonOptions", "JsonParser"]


class JsonOptions(Options):
    """``json`` takes no options: the object's own keys decide everything."""


class JsonParser:
    """Parses a line holding one JSON object; anything else is kept with a ``parse_error``."""

    __slots__ = ()

    def parse(self, line: str) -> RawRecord:
        """Decode ``line``; a non-object or invalid JSON line comes back unparsed."""
        try:
            if exactjson.may_lose(line.encode("utf-8", "surrogatepass")):
                obj = exactjson.loads_exact(line)
                exactjson.dumps(obj)  # a lone surrogate escape, which orjson refuses, is refused too
            else:
                obj = orjson.loads(line)
        except (ValueError, TypeError) as exc:  # JSONDecodeError, ExactJSONError, JSONEncodeError
            return unparsed(line, f"invalid JSON: {exc}")
        if type(obj) is not dict:
            return unparsed(line, f"JSON {type(obj).__name__} is not an object")
        return guard(obj, line)


@register("json", JsonOptions, "one JSON object per line")
def build(options: JsonOptions) -> JsonParser:
    """Build a JSON-lines parser."""
    return JsonParser()
