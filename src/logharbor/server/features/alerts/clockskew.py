"""The ``clock_skew`` condition: a host's (or app instance's) clock is off by more than a threshold.

It reads the clock offsets the server estimates from the requests themselves
(:mod:`logharbor.server.features.traces.clock`): for each clock, the latest estimate inside the
rule's window. A clock is active when even the near end of its interval is past the threshold,
``|offset| − uncertainty > threshold`` (ms), so an estimate that is merely uncertain never fires.
One alert per clock (group ``tenant``, ``clock``, ``layer``, ``host``, ``instance``), whose
``{{summary}}`` reads "clock of checkout-9093 is +340.0 ms off (± 0.5 ms against shop-alb); NTP?".

Its query is ``*``: the offsets are not records. A rule created by a scoped key sees the clocks of
its tenant (and services) only.
"""

from __future__ import annotations

from typing import Any

from logharbor.server.engine.store.sql.clock import latest_in_window_sql

from .conditions import Condition, GroupResult

__all__ = ["CLOCK_GROUP", "clock_skew_results", "summary"]

CLOCK_GROUP = ("tenant", "clock", "layer", "host", "instance")


def summary(clock: str, offset_ms: float, uncertainty_ms: float, reference: str) -> str:
    """The one line an operator reads in the notification."""
    sign = "+" if offset_ms >= 0 else "−"
    return (f"clock of {clock} is {sign}{abs(offset_ms):.1f} ms off (± {uncertainty_ms:.1f} ms against "
            f"{reference or 'the reference'}); NTP?")


def clock_skew_results(cond: Condition, run_query: Any, window: tuple[int, int], *, clock_table: str | None,
                       scope: tuple[str, dict[str, object]] | None = None) -> list[GroupResult]:
    """Every clock's latest offset in ``window`` ([start, end) in ns); active past the threshold
    (see the module)."""
    if clock_table is None:
        raise ValueError("condition: clock_skew needs the server's clock offsets (not available here)")
    start, end = window
    params: dict[str, object] = {"lh_from": start, "lh_to": end}
    if scope is not None:  # the offsets table has the tenant and service columns scopes name
        params.update(scope[1])
    # clock_table is quoted by the server; every value is a parameter
    sql = latest_in_window_sql(clock_table, scope[0] if scope is not None else None)
    out = []
    for row in run_query(sql, params):
        offset = float(row["offset_ms"])
        uncertainty = float(row.get("uncertainty_ms") or 0.0)
        least = abs(offset) - uncertainty
        active = least >= cond.threshold if cond.op == ">=" else least > cond.threshold
        labels = {name: str(row.get(name) or "") for name in CLOCK_GROUP}
        details = {"offset": f"{offset:+.1f} ms", "uncertainty": f"{uncertainty:.1f} ms",
                   "reference": str(row.get("reference") or ""),
                   "summary": summary(labels["clock"], offset, uncertainty, str(row.get("reference") or ""))}
        out.append(GroupResult(labels, offset, active, details))
    return out
