"""How one LogQL label matcher (``name op "value"``) becomes a filter of the query AST.

Why its own module: the same rule serves stream selectors and label filters, and Loki's matcher
semantics (anchored regexes, empty value = absent label) live in one place.
"""

from __future__ import annotations

from logharbor.server.features.query import ast
from logharbor.server.features.query.regex_re2 import compile_re2

from .nodes import field_name
from .templates import check_pattern

__all__ = ["label_match", "matches_empty"]


def matches_empty(op: str, value: str) -> bool:
    """Whether ``name op "value"`` holds for a stream without the label (Loki requires a selector
    to have at least one matcher that does not)."""
    if op in ("=", "=="):
        return value == ""
    if op == "!=":
        return value != ""
    found = compile_re2(f"^(?:{value})$").search("") is not None
    return found if op == "=~" else not found


def label_match(name: str, op: str, value: str) -> ast.Filter:
    """One ``name op "value"`` matcher: exact, or a fully anchored regex as Loki's are (``.``
    matches a newline there, as in Prometheus' matchers and the store's ``match``)."""
    target = field_name(name)
    if op in ("=", "==", "!="):
        m: ast.Filter = ast.Not(ast.Exists(target)) if value == "" else ast.Match(target, ast.Phrase(value))
        return ast.Not(m) if op == "!=" else m
    pattern = f"^(?:{value})$"
    if target == "level":  # logharbor stores ERROR, Grafana users write error
        pattern = "(?i)" + pattern
    check_pattern(pattern, None)
    match = ast.Match(target, ast.Regex(pattern))
    if compile_re2(pattern).search("") is not None:  # matches the empty value: also streams without the label
        match = ast.Or((match, ast.Not(ast.Exists(target))))  # type: ignore[assignment]
    return ast.Not(match) if op == "!~" else match
