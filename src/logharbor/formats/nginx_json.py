"""The parse function of an NGINX JSON ``log_format`` (``escape=json``), generated per format.

The general path (``NginxParser._parse_json``) loops over the decoded object's keys, looks each
one's handler up and calls it: ≈ 4 µs of loop and calls per 13-key line. NGINX writes every line of
one format with the same keys in the same order, so the generated function checks that once
(``tuple(obj) == KEYS``) and then runs each key's handler as straight-line code — its ``code``
statement (the same call the handler makes), a ``_request``/``_trace`` inline, or a call — with
``_finish`` folded in. A line with other keys, fewer or another order takes the general path
with the object already decoded. The result is identical, key order and error messages included
(``tests/formats/test_formats_nginx_json.py``, hypothesis).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from logharbor.formats.base import guard, seconds_to_ms, ufloat, uint, unparsed
from logharbor.formats.nginx_vars import Handler, uint_or_text
from logharbor.types import RawRecord

__all__ = ["generate_json"]

#: handlers whose ``inline`` statements are safe on any JSON value (they raise what the call does)
_INLINE_ANY = ("_request", "_trace")


def generate_json(handlers: dict[str, Handler],
                  general: Callable[[str, Any], RawRecord]) -> Callable[[str], RawRecord]:
    """The parse function of a JSON format whose keys map to ``handlers`` (in template order);
    ``general(line, obj)`` is the loop the other lines take."""
    keys = tuple(handlers)
    ns: dict[str, Any] = {"loads": orjson.loads, "JSONDecodeError": orjson.JSONDecodeError,
                          "unparsed": unparsed, "guard": guard, "general": general, "KEYS": keys,
                          "uint": uint, "ufloat": ufloat, "uint_or_text": uint_or_text,
                          "seconds_to_ms": seconds_to_ms}
    src = [
        "def parse(line):",
        "    try:",
        "        obj = loads(line)",
        "    except JSONDecodeError as exc:",
        "        return unparsed(line, f'invalid JSON: {exc}')",
        "    if type(obj) is not dict:",
        "        return unparsed(line, 'JSON line is not an object')",
        "    if tuple(obj) != KEYS:",
        "        return general(line, obj)",
        "    rec = {'source': 'nginx'}",
        "    http = {}",
        "    try:",
    ]
    for i, (key, handler) in enumerate(handlers.items()):
        name = getattr(handler, "__name__", "")
        code = getattr(handler, "inline", None) if name in _INLINE_ANY else None
        code = code or getattr(handler, "code", None) or "{h}(rec, http, {v})"
        ns[f"h{i}"] = handler
        src.append(f"        key = {key!r}")
        src.append(f"        value = obj[{key!r}]")
        src.append("        if value is not None and value != '' and value != '-':")
        for stmt in code.format(v="value", h=f"h{i}").split("\n"):
            src.append("            " + stmt)
    src += [
        "    except ValueError as exc:",
        "        return unparsed(line, f'nginx field {key!r}: {exc}')",
        "    except (TypeError, AttributeError):",
        "        return unparsed(line, f'nginx field {key!r}: unexpected {type(value).__name__} value')",
        "    if http:",
        "        rec['http'] = http",
        "        status = http.get('status')",
        "        if status is not None:",
        "            rec['level'] = 'ERROR' if status >= 500 else 'WARN' if status >= 400 else 'INFO'",
        "        if 'message' not in rec and 'method' in http and 'path' in http:",
        "            rec['message'] = http['method'] + ' ' + http['path']",
        "    if 'message' not in rec:",
        "        rec['message'] = line",
        "    return guard(rec, line)",
    ]
    scope = dict(ns)
    exec(compile("\n".join(src) + "\n", "<nginx json log_format>", "exec"), scope)  # noqa: S102 - built above
    return scope["parse"]  # type: ignore[no-any-return]
