"""Service health's SQL (``features/health/services.py``): the per-minute recording table, the
statement that records it, and the queries that read raw records and recorded minutes alike.

Identifiers are quoted by the caller (``sqlsafe``) or come from the store; every value is a
``{name:Type}`` parameter. Scope fragments are the auth layer's, with their own parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from logharbor.server.engine.store.sqlsafe import quote_identifier

if TYPE_CHECKING:
    from logharbor.server.engine.store.base import Store

__all__ = ["KEEP_DAYS", "QUANTILES", "create_recording", "raw_part", "record_sql", "recorded_part",
           "recorded_until_sql", "recording_name", "series_sql", "totals_sql"]

QUANTILES = "quantilesTDigest(0.5, 0.95, 0.99)"
KEEP_DAYS = 400  # recorded minutes are kept this long (a year and a month: year-over-year charts)


def recording_name(logs_table_name: str) -> str:
    """The recording table's name (unquoted) beside a logs table."""
    return f"{logs_table_name}_service_minutes"


def create_recording(store: Store) -> None:
    """Create the recording table if it is not there (at start: no table is created once the
    server runs, see ``TierView.freeze_schema``)."""
    name = recording_name(store.table_name)
    if store.existing_tables([name]):
        return
    store.query(
        f"CREATE TABLE IF NOT EXISTS {quote_identifier(name)} (tenant LowCardinality(String), "
        f"service LowCardinality(String), source LowCardinality(String), minute DateTime('UTC'), "
        f"requests UInt64, errors UInt64, latency AggregateFunction({QUANTILES}, Nullable(Float64)), "
        f"recorded_ns UInt64) ENGINE = ReplacingMergeTree(recorded_ns) "
        f"PARTITION BY toYYYYMM(minute) ORDER BY (minute, tenant, service, source) "
        f"TTL minute + INTERVAL {KEEP_DAYS} DAY", {})


def recorded_until_sql(recording: str) -> str:
    """The last recorded minute (``m``, epoch seconds) and the number of recorded rows (``n``)."""
    return f"SELECT toUnixTimestamp(max(minute)) AS m, count() AS n FROM {recording}"  # noqa: S608


def record_sql(recording: str, logs: str) -> str:
    """(Re-)record the minutes of ``[{from}, {to})`` (ns) of ``logs`` under ``{recorded}``."""
    return (f"INSERT INTO {recording} SELECT tenant, service, source, "  # noqa: S608
            f"toStartOfMinute(timestamp) AS minute, count(), countIf(http_status >= 500), "
            f"{QUANTILES.replace('(', 'State(', 1)}(http_duration_ms), {{recorded:UInt64}} "
            f"FROM {logs} WHERE timestamp >= fromUnixTimestamp64Nano({{from:Int64}}, 'UTC') "
            f"AND timestamp < fromUnixTimestamp64Nano({{to:Int64}}, 'UTC') AND http_status IS NOT NULL "
            f"GROUP BY tenant, service, source, minute")


def _within(scope: str | None) -> str:
    """`` AND (scope)`` for a key's scope condition (its values are parameters), or nothing."""
    return f" AND ({scope})" if scope is not None else ""


def raw_part(table: str, scope: str | None, lo: str, hi: str, *, minutes: bool) -> str:
    """Request rows of ``[lo, hi)`` aggregated like the recording (per minute when ``minutes``),
    within ``scope`` (a condition on the tenant and service columns) when given."""
    minute = "toStartOfMinute(timestamp) AS minute, " if minutes else ""
    return (f"SELECT {minute}service, source, count() AS requests, "  # noqa: S608
            f"countIf(http_status >= 500) AS errors, "
            f"toInt64(toUnixTimestamp64Nano(min(timestamp))) AS first_ns, "
            f"toInt64(toUnixTimestamp64Nano(max(timestamp))) AS last_ns, "
            f"{QUANTILES.replace('(', 'State(', 1)}(http_duration_ms) AS latency "
            f"FROM {table} WHERE timestamp >= fromUnixTimestamp64Nano({{{lo}:Int64}}, 'UTC') "
            f"AND timestamp < fromUnixTimestamp64Nano({{{hi}:Int64}}, 'UTC') "
            f"AND http_status IS NOT NULL{_within(scope)} "
            f"GROUP BY {'minute, ' if minutes else ''}service, source")


def recorded_part(recording: str, scope: str | None, *, minutes: bool) -> str:
    """Recorded minutes of ``[{rec_from}, {rec_to})`` (epoch seconds), shaped like :func:`raw_part`."""
    minute = "minute, " if minutes else ""
    return (f"SELECT {minute}service, source, requests, errors, "  # noqa: S608
            f"toInt64(toUnixTimestamp(minute)) * 1000000000 AS first_ns, first_ns AS last_ns, "
            f"latency FROM {recording} "
            f"FINAL WHERE minute >= toDateTime({{rec_from:Int64}}, 'UTC') "
            f"AND minute < toDateTime({{rec_to:Int64}}, 'UTC'){_within(scope)}")


def _merge() -> str:
    quantiles = QUANTILES.replace("(", "Merge(", 1)
    return f"sum(requests) AS requests, sum(errors) AS errors, {quantiles}(latency) AS q"


def totals_sql(parts: list[str]) -> str:
    """Per (service, source) over the parts: requests, errors, latency quantiles, first/last ns."""
    return (f"SELECT service, source, {_merge()}, min(first_ns) AS first_ns, max(last_ns) AS last_ns "  # noqa: S608
            f"FROM (" + " UNION ALL ".join(parts) + ") GROUP BY service, source ORDER BY service, source")


def series_sql(parts: list[str]) -> str:
    """The same per ``{step}`` seconds (``t``), from parts made with ``minutes=True``."""
    return (f"SELECT toUnixTimestamp(toStartOfInterval(minute, toIntervalSecond({{step:UInt32}}))) AS t, "  # noqa: S608
            f"service, source, {_merge()} FROM (" + " UNION ALL ".join(parts)
            + ") GROUP BY t, service, source ORDER BY t, service, source")
