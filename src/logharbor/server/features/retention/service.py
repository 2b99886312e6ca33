"""Retention as one object for the app: tiers, mover, delete jobs and disk guard, started together;
plus the storage figures (per tier, service and level) and the preview of what rules would do.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from logharbor.server.engine.store.sql.retention import BEFORE_CUTOFF, FROM_START
from logharbor.server.engine.store.tiers import Tiers
from logharbor.server.features.retention.delete import DeleteJobs
from logharbor.server.features.retention.guard import DiskGuard
from logharbor.server.features.retention.mover import Mover
from logharbor.server.features.retention.rules import TIERS, RetentionPolicy, keep_sql, sample_threshold
from logharbor.server.scopes import Scope

__all__ = ["Retention", "StorageCollector"]


@dataclass
class Retention:
    """Everything retention owns in one running server."""

    tiers: Tiers
    mover: Mover
    deletes: DeleteJobs
    guard: DiskGuard
    _cache: tuple[float, dict[str, Any]] | None = field(default=None, repr=False)
    _cache_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self) -> None:
        """Finish interrupted moves and deletes, then run the mover and the guard in threads."""
        self.mover.load_policy()
        with self.mover.lock:
            self.mover.recover()
        self.deletes.resume()
        self.guard.check()
        self.mover.start()
        self.guard.start()

    def stop(self) -> None:
        self.guard.stop()
        self.mover.stop()
        self.deletes.stop(timeout=30)

    def state(self) -> dict[str, Any]:
        """The rules in force, where cold files go and what the mover did (``GET /api/v1/retention``)."""
        cold = self.tiers.cold
        return {**self.mover.policy.model_dump(mode="json", exclude_none=True),
                "cold_storage": cold.url if cold is not None else None,
                "mover": {"interval_s": self.mover.interval_s, "last_tick_ns": self.mover.last_tick_ns,
                          "moved_rows": dict(self.mover.moved_rows), "deleted_rows": self.mover.deleted_rows}}

    def delete_job(self, job_id: str, viewer: Scope | None = None) -> dict[str, Any] | None:
        """A delete job as the API shows it, or None; a job outside ``viewer``'s scope (a scoped
        key's) is as absent as one that never was."""
        job = self.deletes.get(job_id)
        if job is not None and viewer is not None:
            stored = (self.deletes.get(job_id, raw=True) or {}).get("progress", {}).get("scope")
            if not viewer.covers(Scope.from_sql_params(stored[1] if stored else None)):
                return None
        return job

    # -- storage figures -------------------------------------------------------------------

    def storage(self, *, max_age_s: float = 0.0) -> dict[str, Any]:
        """Bytes and records per tier, service and level, and compression ratios (cached briefly)."""
        with self._cache_lock:
            if self._cache is not None and time.monotonic() - self._cache[0] < max_age_s:
                return self._cache[1]
        result = self._measure()
        with self._cache_lock:
            self._cache = (time.monotonic(), result)
        return result

    def _measure(self) -> dict[str, Any]:
        tiers = self.tiers
        out: dict[str, Any] = {"tiers": {}, "groups": []}
        for tier in ("hot", "warm"):
            _, disk, raw = tiers.part_figures(tier)
            # parts still count rows a lightweight delete masked until they merge; count() does not
            records = tiers.count(tier)
            out["tiers"][tier] = {"records": records, "bytes": disk, "uncompressed_bytes": raw}
        keys = tiers.cold.keys() if tiers.cold is not None else []
        cold_rows = 0
        if keys:
            cold_rows = tiers.count("cold")
        out["tiers"]["cold"] = {"records": cold_rows, "files": len(keys),
                                "bytes": sum(tiers.cold.size(k) for k in keys) if tiers.cold else 0,
                                "location": tiers.cold.url if tiers.cold else None}
        known = [t for t in ("hot", "warm") if out["tiers"][t]["records"]]
        raw_per_record = (sum(out["tiers"][t]["uncompressed_bytes"] for t in known)
                          / max(1, sum(out["tiers"][t]["records"] for t in known))) if known else 0.0
        out["tiers"]["cold"]["uncompressed_bytes"] = int(raw_per_record * cold_rows)  # estimated
        for figures in out["tiers"].values():
            figures["bytes_per_record"] = (round(figures["bytes"] / figures["records"], 2)
                                           if figures["records"] else 0)
            figures["compression_ratio"] = (round(figures["uncompressed_bytes"] / figures["bytes"], 2)
                                            if figures["bytes"] else 0)
        for tier in TIERS:
            figures = out["tiers"][tier]
            if not figures["records"]:
                continue
            per_record = figures["bytes"] / figures["records"]
            for row in tiers.groups(tier):
                out["groups"].append({"tier": tier, "service": row["service"], "level": row["level"],
                                      "records": int(row["n"]), "bytes": int(per_record * int(row["n"]))})
        total_bytes = sum(f["bytes"] for f in out["tiers"].values())
        total_raw = sum(f["uncompressed_bytes"] for f in out["tiers"].values())
        out["total"] = {"records": sum(f["records"] for f in out["tiers"].values()), "bytes": total_bytes,
                        "compression_ratio": round(total_raw / total_bytes, 2) if total_bytes else 0}
        out["disk"] = {"used_bytes": self.guard.used_bytes, "free_bytes": self.guard.free_bytes,
                       "max_bytes": self.guard.max_bytes, "rejecting": self.guard.rejecting}
        out["mover"] = {"moved_rows": dict(self.mover.moved_rows),
                        "deleted_rows": self.mover.deleted_rows + self.deletes.deleted_rows,
                        "last_tick_ns": self.mover.last_tick_ns}
        return out

    def storage_within(self, scope: tuple[str, dict[str, Any]] | None) -> dict[str, Any]:
        """The storage figures a key sees: all of them, or for a key scoped to a tenant or services
        (``scope``: its SQL condition) its own records only."""
        return self.storage() if scope is None else self.scoped_storage(scope[0], dict(scope[1]))

    def scoped_storage(self, scope_sql: str, params: dict[str, Any]) -> dict[str, Any]:
        """Storage figures of a scoped key: only its records (bytes apportioned by records)."""
        full = self.storage(max_age_s=30)
        out: dict[str, Any] = {"tiers": {}, "groups": []}
        for tier in TIERS:
            figures = full["tiers"][tier]
            per_record = figures["bytes"] / figures["records"] if figures["records"] else 0.0
            n = 0
            if figures["records"]:
                for row in self.tiers.groups(tier, scope_sql, params):
                    n += int(row["n"])
                    out["groups"].append({"tier": tier, "service": row["service"], "level": row["level"],
                                          "records": int(row["n"]), "bytes": int(per_record * int(row["n"]))})
            out["tiers"][tier] = {"records": n, "bytes": int(per_record * n),
                                  "bytes_per_record": figures["bytes_per_record"],
                                  "compression_ratio": figures["compression_ratio"]}
        out["total"] = {"records": sum(t["records"] for t in out["tiers"].values()),
                        "bytes": sum(t["bytes"] for t in out["tiers"].values())}
        return out

    # -- preview ---------------------------------------------------------------------------

    def preview(self, policy: RetentionPolicy, now_ns: int | None = None) -> list[dict[str, Any]]:
        """Per rule: records (and estimated bytes) the next tick would move or delete."""
        now = now_ns if now_ns is not None else self.mover.clock()
        figures = self.storage(max_age_s=30)["tiers"]
        per_record = {t: (f["bytes"] / f["records"] if f["records"] else 0) for t, f in figures.items()}
        has_cold = bool(self.tiers.cold is not None and figures["cold"]["records"])
        out = []
        for rule, cond, params in policy.conditions():
            plan = rule.plan()
            item: dict[str, Any] = {"rule": rule.name, "to_warm": 0, "to_cold": 0, "delete": 0,
                                    "sample_out": 0, "bytes": 0}
            if cond != "(0)":
                for tier in TIERS:
                    if tier == "cold" and not has_cold:
                        continue
                    n_delete = n_sample = 0
                    if plan.delete_ns is not None:
                        n_delete = self._count(tier, f"{cond} AND {BEFORE_CUTOFF}",
                                               {**params, "t_before": now - plan.delete_ns})
                    if rule.sample is not None and rule.sample.keep < 1:
                        n_sample = self._count(tier, f"{cond} AND {BEFORE_CUTOFF} AND NOT {keep_sql('k')}",
                                               {**params, "t_before": now - rule.sample.after_ns,
                                                "k": sample_threshold(rule.sample.keep)})
                    item["delete"] += n_delete
                    item["sample_out"] += n_sample
                    item["bytes"] += int((n_delete + n_sample) * per_record[tier])
                    for window in plan.windows:
                        if window.tier == "hot" or TIERS.index(window.tier) <= TIERS.index(tier):
                            continue
                        where = f"{cond} AND {BEFORE_CUTOFF}"
                        args: dict[str, Any] = {**params, "t_before": now - window.lo}
                        if window.hi is not None:
                            where += f" AND {FROM_START}"
                            args["t_from"] = now - window.hi
                        n = self._count(tier, where, args)
                        item[f"to_{window.tier}"] += n
                        item["bytes"] += int(n * per_record[tier])
            out.append(item)
        return out

    def _count(self, tier: str, where: str, params: dict[str, Any]) -> int:
        return self.tiers.count(tier, where, params)


class StorageCollector(Collector):
    """``/metrics`` gauges: bytes and records per tier, per tier/service/level, and ratios."""

    def __init__(self, retention: Retention) -> None:
        self.retention = retention

    def collect(self) -> Iterator[GaugeMetricFamily]:
        data = self.retention.storage(max_age_s=30)
        tier_bytes = GaugeMetricFamily("logharbor_tier_bytes", "bytes on disk per retention tier",
                                       labels=["tier"])
        tier_records = GaugeMetricFamily("logharbor_tier_records", "records per retention tier",
                                         labels=["tier"])
        ratio = GaugeMetricFamily("logharbor_tier_compression_ratio",
                                  "uncompressed / stored bytes per tier", labels=["tier"])
        groups = GaugeMetricFamily("logharbor_tier_service_records", "records per tier, service and level",
                                   labels=["tier", "service", "level"])
        group_bytes = GaugeMetricFamily("logharbor_tier_service_bytes",
                                        "bytes per tier, service and level (apportioned by records)",
                                        labels=["tier", "service", "level"])
        for tier, figures in data["tiers"].items():
            tier_bytes.add_metric([tier], figures["bytes"])
            tier_records.add_metric([tier], figures["records"])
            ratio.add_metric([tier], figures["compression_ratio"])
        for group in data["groups"]:
            labels = [group["tier"], group["service"], group["level"]]
            groups.add_metric(labels, group["records"])
            group_bytes.add_metric(labels, group["bytes"])
        yield from (tier_bytes, tier_records, ratio, groups, group_bytes)
        yield GaugeMetricFamily("logharbor_disk_guard_rejecting", "1 while ingest answers 429 for disk",
                                value=1.0 if data["disk"]["rejecting"] else 0.0)
        yield GaugeMetricFamily("logharbor_data_dir_bytes", "bytes used by the data directory (no cold)",
                                value=float(data["disk"]["used_bytes"]))
