"""What LogQL runs on the line for the answer: regexp/pattern extractors and Go-style templates.

Why separate: these shape output only (labels and lines), after the engine has chosen the records.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from logharbor.server.features.query.errors import QueryError
from logharbor.server.features.query.filters import check_regex
from logharbor.server.features.query.regex_re2 import compile_re2

from .lexer import line_regex
from .nodes import LogQLError

__all__ = ["check_pattern", "check_template", "pattern_extractor", "pattern_filter_regex", "pattern_regex",
           "regexp_extractor", "render_template"]


def check_pattern(pattern: str, pos: int | None) -> None:
    try:
        check_regex(pattern)
    except QueryError as exc:
        raise LogQLError(exc.message, pos) from None


def regexp_extractor(text: str, pos: int) -> Any:
    """``| regexp``: an RE2 pattern (Go's defaults: ``.`` does not match a newline, as in Loki)."""
    check_pattern(text, pos)
    compiled = compile_re2(text, dot_nl=False)
    if not compiled.groupindex:
        raise LogQLError("regexp needs at least one named group (?P<name>…)", pos)
    return compiled


def pattern_regex(text: str, pos: int) -> str:
    """A Loki pattern (``<verb> <path> <_>``) as an RE2 pattern: literals from the start of the
    line, each capture as little as it can (the last one the rest), the end of the line free."""
    parts = re.split(r"<(_|[A-Za-z_][A-Za-z0-9_]*)>", text)
    if len(parts) == 1:
        raise LogQLError("pattern needs at least one capture such as <name>", pos)
    names = [p for p in parts[1::2] if p != "_"]
    if len(names) != len(set(names)):
        raise LogQLError("a pattern names each capture once", pos)
    if any(parts[i] == "" for i in range(2, len(parts) - 1, 2)):
        raise LogQLError("two captures of a pattern need a literal between them", pos)
    out: list[str] = ["^"]
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(line_regex(part))
        else:
            last = i == len(parts) - 2 and parts[-1] == ""
            body = ".*" if last else ".*?"
            out.append(f"(?:{body})" if part == "_" else f"(?P<{part}>{body})")
    return "(?s)" + "".join(out)


def pattern_filter_regex(text: str) -> str:
    """``|> "<_> error <_>"`` as RE2 (Loki's ``Matcher.Test``): the literals in order, a capture
    between them never empty, a line ending with the last literal, or with a non-empty capture."""
    parts = re.split(r"<(?:_|[A-Za-z_][A-Za-z0-9_]*)>", text)
    if len(parts) == 1:
        return f"(?s){line_regex(text)}$"
    out = ["(?s)", "" if parts[0] else "^"]
    for i, part in enumerate(parts):
        out.append(line_regex(part))
        if i < len(parts) - 1:
            out.append(".+" if i == len(parts) - 2 and parts[-1] == "" else ".+?")
    return "".join(out) + "$"


def pattern_extractor(text: str, pos: int) -> Any:
    return compile_re2(pattern_regex(text, pos))


_TEMPLATE_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}")
_TEMPLATE_FIELD = re.compile(r"\.[A-Za-z_][A-Za-z0-9_.]*|__line__|__timestamp__")
#: the one-argument functions of Loki's template language, used as ``{{ .field | ToUpper }}``
_FUNCTIONS: dict[str, Callable[[str], str]] = {
    "ToUpper": str.upper, "upper": str.upper, "ToLower": str.lower, "lower": str.lower,
    "Title": str.title, "title": str.title, "TrimSpace": str.strip, "trim": str.strip,
}


def _parts(action: str) -> list[str]:
    return [p.strip() for p in action.split("|")]


def check_template(text: str, pos: int) -> str:
    """Checks a Go template is of the supported form: ``{{.field}}``, ``{{__line__}}``, each
    optionally piped through ``ToUpper ToLower Title TrimSpace`` (and their short names)."""
    for m in _TEMPLATE_ACTION.finditer(text):
        head, *funcs = _parts(m[1])
        unknown = [f for f in funcs if f not in _FUNCTIONS]
        if not _TEMPLATE_FIELD.fullmatch(head) or unknown:
            raise LogQLError(f"template action {{{{{m[1]}}}}} is not supported; use {{{{.field}}}} or "
                             f"{{{{__line__}}}}, piped through {', '.join(sorted(_FUNCTIONS))}", pos)
    return text


def render_template(text: str, value_of: Callable[[str], object]) -> str:
    """Fills ``{{.field | fn}}`` actions with ``value_of(name)`` passed through the functions."""

    def action(m: re.Match[str]) -> str:
        head, *funcs = _parts(m[1])
        value = str(value_of(head.lstrip(".")))
        for name in funcs:
            value = _FUNCTIONS[name](value)
        return value

    return _TEMPLATE_ACTION.sub(action, text)
