"""The mover: applies the retention rules continuously, on an injectable clock, crash-safely.

Each tick, for every rule (with the SQL condition of exactly its records): sample (delete the
records a sample drops), delete what is past its delete age, then move records whose age puts
them in a later tier, one day of one rule at a time. A move is:

1. an intent row in ``retention_moves`` (state ``copying``) written before any data is touched;
2. the copy: into warm under the move's id (a retry first deletes that id's rows), or a Parquet
   file staged and then published under the move's key (a retry writes it again);
3. state ``copied`` with the confirmed row count;
4. delete from the source exactly the rows whose identity is in the copy (a retry deletes nothing
   new), then state ``done``.

A ``kill -9`` at any point leaves an intent in ``copying`` or ``copied``; :meth:`Mover.recover`
redoes it from that step, so every record ends in exactly one tier. Records are never moved back
to a hotter tier (a rule made longer keeps what already moved where it is).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update

from logharbor.server.engine.store.sql.retention import BEFORE_CUTOFF, FROM_START
from logharbor.server.engine.store.tiers import Tiers
from logharbor.server.features.retention.rules import TIERS, RetentionPolicy, Rule, keep_sql, sample_threshold
from logharbor.server.features.retention.tables import retention_moves, retention_policy
from logharbor.server.leader import Leadership, leads
from logharbor.server.meta.db import MetaStore
from logharbor.server.periodic import Periodic

__all__ = ["Clock", "Mover"]

log = logging.getLogger("logharbor.retention")
Clock = Callable[[], int]
_DAY_NS = 86_400 * 10**9
#: who the audit log names for what the server does on its own (auth.actor_of's default too)
SYSTEM_ACTOR = "system"


class Mover:
    """Runs the retention rules over the tiers; one tick at a time or in a thread."""

    def __init__(self, tiers: Tiers, meta: MetaStore, *, clock: Clock = time.time_ns,
                 interval_s: float = 60.0, days_per_tick: int = 30,
                 step_hook: Callable[[str, str], None] | None = None,
                 leader: Leadership | None = None, audit: Callable[..., None] | None = None) -> None:
        self.tiers = tiers
        #: the audit log's writer (KeyStore.audit): what the server does by itself is "system"'s
        self.audit = audit
        self.leader = leader  # servers sharing meta: only the leader ticks (moves and deletes)
        self.meta = meta
        self.clock = clock
        self.interval_s = interval_s
        self.days_per_tick = days_per_tick
        self.step_hook = step_hook  # (step, move id): tests stop here to crash a move
        self.policy = RetentionPolicy()
        self.lock = threading.Lock()  # one tick, guard step or delete job at a time
        self.moved_rows = {"warm": 0, "cold": 0}
        self.deleted_rows = 0
        self.last_tick_ns: int | None = None
        self._worker = Periodic("retention-mover", self.scheduled_tick, lambda: self.interval_s,
                                "retention tick")

    # -- policy ----------------------------------------------------------------------------

    def load_policy(self) -> RetentionPolicy:
        """The newest stored policy (empty when none was ever set)."""
        with self.meta.engine.connect() as conn:
            row = conn.execute(select(retention_policy.c.spec)
                               .order_by(retention_policy.c.id.desc()).limit(1)).first()
        self.policy = RetentionPolicy.model_validate(row[0]) if row else RetentionPolicy()
        return self.policy

    def save_policy(self, policy: RetentionPolicy, actor: str | None) -> None:
        with self.meta.engine.begin() as conn:
            conn.execute(insert(retention_policy).values(
                spec=policy.model_dump(mode="json", exclude_none=True), updated_ns=time.time_ns(),
                updated_by=actor))
        self.policy = policy

    # -- the loop --------------------------------------------------------------------------

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()

    def tick(self) -> dict[str, int]:
        """Recover unfinished moves, then apply every rule once; counts of what was done (none when
        another server leads)."""
        if not leads(self.leader):
            return {}
        with self.lock:
            done = {"recovered": self.recover(), "sampled": 0, "deleted": 0, "moved": 0}
            now = self.clock()
            for rule, cond, params in self.policy.conditions():
                if cond == "(0)":
                    continue
                done["sampled"] += self._sample(rule, cond, params, now)
                done["deleted"] += self._expire(rule, cond, params, now)
                done["moved"] += self._moves(rule, cond, params, now)
            self.deleted_rows += done["sampled"] + done["deleted"]
            self.last_tick_ns = now
            if done["moved"] or done["sampled"] or done["deleted"] or self.tiers.view_behind:
                self.tiers.refresh_view()  # cold files may have come or gone
                self.tiers.apply_masks()  # what moved or expired leaves the disk, not only the view
            return done

    def scheduled_tick(self) -> dict[str, int]:
        """A tick the server runs by itself: audited as ``system`` when it moved or deleted records
        (an API run is audited by its route, with the key that asked)."""
        done = self.tick()
        if self.audit is not None and any(done.get(k) for k in ("recovered", "sampled", "deleted", "moved")):
            self.audit(SYSTEM_ACTOR, "retention.run", None, detail=str(done))
        return done

    # -- sampling and deleting -------------------------------------------------------------

    def _sample(self, rule: Rule, cond: str, params: dict[str, Any], now: int) -> int:
        if rule.sample is None or rule.sample.keep >= 1.0:
            return 0
        before = now - rule.sample.after_ns
        where = f"{cond} AND {BEFORE_CUTOFF} AND NOT {keep_sql('keep_below')}"
        args = {**params, "t_before": before, "keep_below": sample_threshold(rule.sample.keep)}
        return sum(self._delete(tier, where, args, before) for tier in TIERS)

    def _expire(self, rule: Rule, cond: str, params: dict[str, Any], now: int) -> int:
        delete_ns = rule.plan().delete_ns
        if delete_ns is None:
            return 0
        before = now - delete_ns
        return sum(self._delete(tier, f"{cond} AND {BEFORE_CUTOFF}", {**params, "t_before": before}, before)
                   for tier in TIERS)

    def _delete(self, tier: str, where: str, params: dict[str, Any], before_ns: int) -> int:
        if tier != "cold":
            return self.tiers.delete_where(tier, where, params)
        if self.tiers.cold is None:
            return 0
        last_day = _day(before_ns)
        if not any(key.split("/", 1)[0] <= last_day for key in self.tiers.cold.keys()):
            return 0  # files hold one day each; none is old enough to match
        return sum(self.tiers.delete_in_cold_file(key, where, params)
                   for key in self.tiers.cold_matches(where, params))

    # -- moving ----------------------------------------------------------------------------

    def _moves(self, rule: Rule, cond: str, params: dict[str, Any], now: int) -> int:
        moved = 0
        plan = rule.plan()
        for window in plan.windows:
            if window.tier == "hot" or (window.tier == "cold" and self.tiers.cold is None):
                continue
            where = f"{cond} AND {BEFORE_CUTOFF}"
            args: dict[str, Any] = {**params, "t_before": now - window.lo}
            if window.hi is not None:
                where += f" AND {FROM_START}"
                args["t_from"] = now - window.hi
            for source in TIERS[:TIERS.index(window.tier)]:
                moved += self._move_days(rule.name, source, window.tier, where, args)
        return moved

    def _move_days(self, rule: str, source: str, dest: str, where: str, args: dict[str, Any]) -> int:
        copied = []
        for day in self.tiers.days(source, where, args, limit=self.days_per_tick):
            day_where = f"{where} AND toDate(timestamp) = toDate({{day:String}})"
            copied.append(self._start(rule, source, dest, day_where, {**args, "day": day}, day))
        return self._remove(copied)

    def move(self, rule: str, source: str, dest: str, cond: str, params: dict[str, Any], day: str) -> int:
        """Move the rows of ``source`` matching ``cond`` to ``dest`` (one day, so one cold file)."""
        return self._remove([self._start(rule, source, dest, cond, params, day)])

    def _start(self, rule: str, source: str, dest: str, cond: str, params: dict[str, Any],
               day: str) -> dict[str, Any]:
        """Steps 1–3 of a move: the intent, the copy, the confirmed count."""
        now = time.time_ns()
        move = {"id": f"{rule}.{source}-{dest}.{day}.{now:x}", "source": source, "dest": dest,
                "cold_key": f"{day}/{rule}.{source}.{now:x}.parquet" if dest == "cold" else None,
                "cond": cond, "params": params, "state": "copying", "rows": None}
        with self.meta.engine.begin() as conn:
            conn.execute(insert(retention_moves).values(
                id=move["id"], kind="move", rule=rule, source=source, dest=dest, cond=cond, params=params,
                cold_key=move["cold_key"], state="copying", created_ns=now, updated_ns=now))
        self._hook("intent", move["id"])
        return self._copy(move)

    def _copy(self, move: dict[str, Any]) -> dict[str, Any]:
        if move["dest"] == "warm":
            rows = self.tiers.copy_to_warm(move["id"], move["source"], move["cond"], move["params"])
        else:
            rows = self.tiers.copy_to_cold(move["cold_key"], move["source"], move["cond"], move["params"])
        self._set_state(move["id"], "copied", rows=rows)
        self._hook("copied", move["id"])
        return {**move, "state": "copied", "rows": rows}

    def _remove(self, moves: list[dict[str, Any]]) -> int:
        """Step 4 for copied moves, one delete per source table; returns the rows moved."""
        for source in ("hot", "warm"):
            batch = [m for m in moves if m["source"] == source]
            if not batch:
                continue
            self.tiers.remove_copied(source, [(m["dest"], m["id"], m["cold_key"], m["params"].get("day"))
                                              for m in batch])
            for move in batch:
                self._hook("removed", move["id"])
                self._set_state(move["id"], "done")
                self.moved_rows[move["dest"]] += int(move["rows"] or 0)
        return sum(int(m["rows"] or 0) for m in moves)

    def recover(self) -> int:
        """Finish every move a crash interrupted; the number of moves finished."""
        with self.meta.engine.connect() as conn:
            pending = [dict(m) for m in conn.execute(select(retention_moves).where(
                retention_moves.c.state.in_(("copying", "copied")))
                .order_by(retention_moves.c.created_ns)).mappings().all()]
        copied = []
        for move in pending:
            log.warning("finishing retention move %s from state %s", move["id"], move["state"])
            move["params"] = dict(move["params"])
            copied.append(self._copy(move) if move["state"] == "copying" else move)
        self._remove(copied)
        if pending:
            self.tiers.refresh_view()
        return len(pending)

    def _rows(self, move_id: str) -> int:
        with self.meta.engine.connect() as conn:
            row = conn.execute(select(retention_moves.c.rows).where(retention_moves.c.id == move_id)).first()
        return int(row[0] or 0) if row else 0

    def _set_state(self, move_id: str, state: str, *, rows: int | None = None) -> None:
        values: dict[str, Any] = {"state": state, "updated_ns": time.time_ns()}
        if rows is not None:
            values["rows"] = rows
        with self.meta.engine.begin() as conn:
            conn.execute(update(retention_moves).where(retention_moves.c.id == move_id).values(**values))

    def _hook(self, step: str, move_id: str) -> None:
        if self.step_hook is not None:
            self.step_hook(step, move_id)

    # -- what the disk guard calls -----------------------------------------------------------

    def relieve(self, rule: Rule, cond: str, params: dict[str, Any]) -> int:
        """Free local disk for one rule: its oldest hot day goes to cold, or is deleted without cold."""
        with self.lock:
            for source in ("hot", "warm"):
                days = self.tiers.days(source, cond, params, limit=1)
                if not days:
                    continue
                day = days[0]
                where = f"{cond} AND toDate(timestamp) = toDate({{day:String}})"
                args = {**params, "day": day}
                if rule.cold is not None and self.tiers.cold is not None:
                    n = self.move(rule.name, source, "cold", where, args, day)
                    self.tiers.compact_day(source, day)
                    self.tiers.refresh_view()
                    return n
                n = self.tiers.delete_where(source, where, args)
                self.tiers.compact_day(source, day)  # give the disk back now, not at the next merge
                self.deleted_rows += n
                return n
            return 0


def _day(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d")
