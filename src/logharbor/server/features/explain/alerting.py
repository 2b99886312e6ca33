"""The top contributors a firing alert carries: "135 records, 7.9x the window before; 92 % of
them have version=1.4.3, host=web-7".

The alert evaluator calls :func:`contributors` for a group that starts firing (or fires again):
explain runs over the rule's window against the window before it, on the rule's filter (its
ratio's numerator too, and the group's labels), inside the rule's scope, with a short time budget
of its own. It must never stand in a notification's way: any error gives ``None`` and the
notification goes out without it (the evaluator also catches whatever escapes).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from logharbor import exactjson
from logharbor.server.features.query import ast, parse, to_text
from logharbor.server.features.query.fieldstats import filter_part

from .engine import ExplainRequest, explain

__all__ = ["ALERT_TIME_BUDGET_S", "contributors", "rule_filter", "summary_text"]

log = logging.getLogger("logharbor.alerts")

#: the most an alert's explain may take (seconds of engine time per query)
ALERT_TIME_BUDGET_S = 10.0
_TOP = 3


def rule_filter(query: str, numerator: str | None, labels: Mapping[str, str]) -> str:
    """The records the alert counts: the rule's filter (and where pipes), its ratio's numerator,
    and its group's labels (``stats … by host`` → ``host:web-7``)."""
    parsed = filter_part(parse(query))
    items: list[ast.Filter] = [parsed.filter, *(p.filter for p in parsed.pipes if isinstance(p, ast.Where))]
    if numerator:
        items.append(parse(numerator).filter)
    items += [ast.Match(name, ast.Phrase(value)) for name, value in labels.items() if value != ""]
    items = [f for f in items if not isinstance(f, ast.MatchAll)]
    if not items:
        return "*"
    return to_text(ast.Query(items[0] if len(items) == 1 else ast.And(tuple(items))))


def _pair(row: Mapping[str, Any]) -> str:
    return f"{row['field']}={exactjson.text(row['value'])}"


def summary_text(answer: Mapping[str, Any]) -> str:
    """One line for people: how the count changed, what most of the records share, the top values."""
    focus, base = answer["focus"]["count"], answer["baseline"]["count"]
    parts = [f"{focus} records, {focus / base:.1f}x the window before ({base})" if base
             else f"{focus} records, none in the window before"]
    together = answer.get("together")
    if together and together["values"]:
        names = ", ".join(_pair(v) for v in together["values"])
        parts.append(f"{round(100 * together['focus']['share'])} % of them have {names} "
                     f"({round(100 * (together['baseline']['share'] or 0))} % before)")
    top = [v for v in answer["values"] if v["significant"]][:_TOP]
    if top:
        parts.append("top: " + ", ".join(
            f"{_pair(v)} ({round(100 * v['focus']['share'])} % vs {round(100 * v['baseline']['share'])} %)"
            for v in top))
    else:
        parts.append("no field value differs significantly from the window before")
    return "; ".join(parts)


def contributors(store: Any, settings: Mapping[str, Any], *, query: str, numerator: str | None,
                 labels: Mapping[str, str], window_ns: int, at_ns: int,
                 scope: tuple[str, dict[str, Any]] | None) -> dict[str, Any] | None:
    """``{"text", "top": [{field, value, focus_share, baseline_share, lift}], "filter"}`` for the
    alert's records in ``[at - window, at)`` against the window before; None on any error."""
    try:
        text = rule_filter(query, numerator, labels)
        budget = dict(settings)
        budget["max_execution_time"] = min(float(budget.get("max_execution_time") or ALERT_TIME_BUDGET_S),
                                           ALERT_TIME_BUDGET_S)
        answer = explain(store, ExplainRequest(q=text, focus=(at_ns - window_ns, at_ns), limit=10),
                         scope=scope, settings=budget, now_ns=at_ns)
    except Exception as exc:  # an explain error never blocks a notification
        log.warning("explain for an alert failed (the notification goes without it): %s", exc)
        return None
    top = [{"field": v["field"], "value": v["value"], "focus_share": v["focus"]["share"],
            "baseline_share": v["baseline"]["share"], "lift": v["lift"]}
           for v in answer["values"] if v["significant"]][:_TOP]
    return {"text": summary_text(answer), "top": top, "filter": text,
            "together": (answer.get("together") or {}).get("filter")}
