"""The NGINX text-format parse function as it was before the inlined generator (2026-12-07).

Kept as the reference the faster generator in :mod:`logharbor.formats.nginx` is held to:
``tests/formats/test_formats_nginx_differential.py`` feeds both the same generated lines and
requires byte-identical records (key order included), and ``bench/parsers.py --baseline`` times
it side by side. It calls each field's handler as the first generator did; do not optimise it.
"""

from __future__ import annotations

from typing import Any

from logharbor.formats.base import ufloat, uint, unparsed
from logharbor.formats.nginx_vars import seconds_to_ms, uint_or_text
from logharbor.types import HttpFields, RawRecord

__all__ = ["finish_reference", "generate_reference"]


def finish_reference(rec: RawRecord, http: HttpFields, line: str) -> RawRecord:
    """Attach ``http``, the level from the status and the message, as the parser always did."""
    if http:
        rec["http"] = http
        status = http.get("status")
        if status is not None:
            rec["level"] = "ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO"
        if "message" not in rec and "method" in http and "path" in http:
            rec["message"] = http["method"] + " " + http["path"]
    if "message" not in rec:
        rec["message"] = line
    return rec


def generate_reference(compiled: Any, unescape: Any) -> Any:
    """The parse function of one compiled text format (``nginx._Compiled``), one handler
    statement or call per variable, matching with the regex as it was (greedy groups)."""
    ns: dict[str, Any] = {"match": compiled.reference_match, "unparsed": unparsed, "finish": finish_reference,
                          "uint": uint, "ufloat": ufloat, "uint_or_text": uint_or_text,
                          "seconds_to_ms": seconds_to_ms,
                          "unescape": unescape}
    names = [f"v{i}" for i in range(len(compiled.fields))]
    src = [
        "def parse(line):",
        "    m = match(line)",
        "    if m is None:",
        "        return unparsed(line, 'line does not match the nginx log_format')",
        f"    {', '.join(names)}, = m.groups()",
        "    rec = {'source': 'nginx'}",
        "    http = {}",
        "    try:",
    ]
    for i, handler in enumerate(compiled.fields):
        if handler is None:
            continue
        v = names[i]
        src.append(f"        if {v} and {v} != '-':")
        if unescape is not None:
            src.append(f"            if '\\\\' in {v}:")
            src.append(f"                {v} = unescape({v})")
        code = getattr(handler, "code", None)
        if code is None:
            ns[f"h{i}"] = handler
            code = f"h{i}(rec, http, {{v}})"
        src.append("            " + code.format(v=v))
    src += [
        "    except ValueError as exc:",
        "        return unparsed(line, 'nginx field: ' + str(exc))",
        "    return finish(rec, http, line)",
    ]
    exec(compile("\n".join(src), "<nginx log_format reference>", "exec"), ns)  # noqa: S102
    return ns["parse"]
