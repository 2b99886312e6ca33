"""How one LogQL label matcher (``name op "value"``) becomes a filter of the query AST.

Why its own module: the same rule serves stream selectors and label filters, and Loki's matcher
semantics (anchored regexes, empty value = absent label) live in one place.
"""

from __future__ import annotations

import re

from logharbor.server.query import ast

from .nodes import field_name
from .templates import check_pattern

__all__ = ["label_match"]


def label_match(name: str, op: str, value: str) -> ast.Filter:
    """One ``name op "value"`` matcher: exact, or a fully anchored regex as Loki's are."""
    target = field_name(name)
    if op in ("=", "==", "!="):
        m: ast.Filter = ast.Not(ast.Exists(target)) if value == "" else ast.Match(target, ast.Phrase(value))
        return ast.Not(m) if op == "!=" else m
    pattern = f"^(?:{value})$"
    if target == "level":  # logharbor stores ERROR, Grafana users write error
        pattern = "(?i)" + pattern
    check_pattern(pattern, None)
    match = ast.Match(target, ast.Regex(pattern))
    if re.fullmatch(pattern, ""):  # matches the empty value: also streams without the label
        match = ast.Or((match, ast.Not(ast.Exists(target))))  # type: ignore[assignment]
    return ast.Not(match) if op == "!~" else match
