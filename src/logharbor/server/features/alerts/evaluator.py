"""The evaluator: runs every rule on its own fixed grid of times, and moves alert states.

Scheduling: a rule with interval ``I`` is evaluated at the slots ``k·I + offset`` (the offset, a
stable hash of the name, spreads 100 one-minute rules over the minute). Slots come from the grid,
never from "last run + I", so a slow evaluation does not push later ones (no drift). A slot whose
previous run of the same rule is still busy is skipped and counted on the rule (no overlapping
runs); after downtime the next slot is simply the next one (no burst of catch-up runs). Each run
looks at ``[slot − window, slot)``, so its verdict depends on the slot, not on when it ran.
With a lease (the server's :class:`~logharbor.server.leader.Leader`, or a :class:`~.lease.Lease`),
only the server holding it runs slots (several servers, one metadata database).

States per (rule, group): inactive → pending (condition true, ``for`` not yet elapsed) → firing
→ resolved (condition false again). Every transition is written with the new state and the
outbox rows of its notifications in one transaction (:meth:`Catalog.save`). Time comes from an
injectable :class:`Clock`, so tests move it instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from logharbor.server.leader import Leadership

from .catalog import Catalog, Evaluation, StoredRule
from .rules import GroupResult, Rule

__all__ = ["Clock", "Evaluator", "Job", "ManualClock", "SystemClock", "next_slot", "step"]

log = logging.getLogger("logharbor.alerts")
_RESOLVED_KEEP_NS = 86400 * 10**9  # a resolved group stays visible this long
#: firing groups of one evaluation that get their top contributors (explain costs a few passes)
_EXPLAINS_PER_EVALUATION = 3
#: condition kinds whose records can be explained (a new template is its own explanation)
_EXPLAINED = frozenset({"count", "ratio", "value", "anomaly"})
#: (query, numerator, group labels, window ns, at ns, scope) → contributors, or None
Explainer = Callable[[str, "str | None", dict[str, str], int, int, "tuple[str, dict[str, object]] | None"],
                     "dict[str, Any] | None"]
_RELOAD_NS = 30 * 10**9  # rules edited on another server are picked up within this long


class Clock(Protocol):
    """Wall time in ns and a way to wait for it."""

    def now_ns(self) -> int:
        """The current time in ns since the epoch."""
        ...

    async def sleep_until(self, ns: int) -> None:
        """Return once the clock reads ``ns`` or later."""
        ...


class SystemClock:
    """The real clock."""

    def now_ns(self) -> int:
        """The current time in ns since the epoch."""
        return time.time_ns()

    async def sleep_until(self, ns: int) -> None:
        """Return once the clock reads ``ns`` or later."""
        delay = (ns - time.time_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)


class ManualClock:
    """A clock that moves only when told to: tests and the benchmark drive the scheduler with it."""

    def __init__(self, start_ns: int) -> None:
        self._now = start_ns
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def now_ns(self) -> int:
        """The current time in ns since the epoch."""
        return self._now

    async def sleep_until(self, ns: int) -> None:
        """Return once the clock reads ``ns`` or later."""
        if ns <= self._now:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((ns, future))
        try:
            await future
        finally:
            self._waiters = [(t, f) for t, f in self._waiters if f is not future]

    def set(self, ns: int) -> None:
        """Move to ``ns`` and wake every sleeper whose time has come."""
        self._now = max(self._now, ns)
        for due, future in list(self._waiters):
            if due <= self._now and not future.done():
                future.set_result(None)

    def advance(self, delta_ns: int) -> None:
        """Move forward by ``delta_ns`` (see :meth:`set`)."""
        self.set(self._now + delta_ns)


def _offset_ns(name: str, interval_ns: int) -> int:
    seconds = max(1, interval_ns // 10**9)
    return (zlib.crc32(name.encode()) % seconds) * 10**9


def next_slot(name: str, interval_ns: int, after_ns: int) -> int:
    """The first slot of ``name``'s grid strictly after ``after_ns``."""
    offset = _offset_ns(name, interval_ns)
    k = (after_ns - offset) // interval_ns + 1
    return k * interval_ns + offset


def step(prev: Mapping[str, Any] | None, active: bool, at_ns: int, rule: Rule
         ) -> tuple[str, dict[str, Any], str | None]:
    """One group's next state: (state, changed columns, notification kind or None)."""
    before = prev["state"] if prev else "inactive"
    cols: dict[str, Any] = {}
    if active:
        since = prev["active_since_ns"] if prev and before in ("pending", "firing") else at_ns
        cols["active_since_ns"] = since
        if before == "firing":
            last = (prev or {}).get("last_notified_ns") or since
            repeat = rule.repeat_ns
            if repeat and at_ns - last >= repeat:
                return "firing", cols, "firing"
            return "firing", cols, None
        if at_ns - since >= rule.for_ns:
            cols.update(fired_ns=at_ns, resolved_ns=None)
            return "firing", cols, "firing"
        return "pending", cols, None
    if before == "firing":
        cols["resolved_ns"] = at_ns
        return "resolved", cols, "resolved"
    if before == "pending":
        cols["active_since_ns"] = None
        return "inactive", cols, None
    return before, cols, None


@dataclass
class Job:
    """Something other than a rule run on the same grid (the service-health recording)."""

    name: str
    interval_ns: int
    run: Callable[[int], None]


class Evaluator:
    """Evaluates rules (on demand or on schedule) and records what changed."""

    def __init__(self, catalog: Catalog, run_query: Callable[[str, Mapping[str, Any]], list[dict[str, Any]]],
                 table: str, clock: Clock | None = None, *, concurrency: int = 2,
                 on_outbox: Callable[[], None] | None = None, jobs: list[Job] | None = None,
                 lease: Leadership | None = None, patterns_table: str | None = None,
                 explain: Explainer | None = None, clock_table: str | None = None) -> None:
        self.catalog = catalog
        self.run_query = run_query
        self.table = table
        self.patterns_table = patterns_table  # quoted; what new_pattern rules read (None: ``patterns``)
        self.clock_table = clock_table  # quoted; the clock offsets clock_skew rules read (None: none)
        #: the top contributors of a firing group (features/explain/alerting.py); None: none
        self.explain = explain
        self.clock: Clock = clock or SystemClock()
        self.on_outbox = on_outbox
        self.jobs = jobs or []
        self.lease = lease
        self._limit = asyncio.Semaphore(concurrency)
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self.runs = 0  # evaluations done (rules and jobs), for tests and /metrics
        self.skips = 0
        #: the time the scheduler sleeps until, None while it is working (tests and the benchmark
        #: move a manual clock only once it is asleep and nothing runs: see :meth:`settled`)
        self.waiting_until: int | None = None

    # -------------------------------------------------------------------------- one evaluation

    def evaluate(self, stored: StoredRule, at_ns: int) -> Evaluation:
        """Evaluate one rule for slot ``at_ns`` and save the outcome; never raises for rule errors."""
        rule = stored.rule
        began = time.perf_counter()
        ev = Evaluation(stored.id, rule.name, at_ns, 0.0)
        try:
            states = self.catalog.states(stored.id)
            keep = ("pending", "firing") if rule.condition.type != "absence" else None
            known = [s["group_labels"] for s in states.values() if keep is None or s["state"] in keep]
            results = rule.evaluate(self.run_query, at_ns, table=self.table, known_groups=known,
                                    patterns_table=self.patterns_table, scope=stored.scope.sql(),
                                    clock_table=self.clock_table)
            self._transitions(stored, at_ns, states, results, ev)
        except Exception as exc:  # surfaced on the rule (last_error), never raised into the scheduler
            ev = Evaluation(stored.id, rule.name, at_ns, 0.0, error=f"{type(exc).__name__}: {exc}"[:4000])
            log.warning("rule %r failed at %d: %s", rule.name, at_ns, ev.error)
        ev.duration_ms = round((time.perf_counter() - began) * 1000, 3)
        self.catalog.save(ev)
        self.runs += 1
        if ev.outbox and self.on_outbox is not None:
            self.on_outbox()
        return ev

    def _transitions(self, stored: StoredRule, at_ns: int, states: dict[str, dict[str, Any]],
                     results: list[GroupResult], ev: Evaluation) -> None:
        rule = stored.rule
        seen = set()
        explains = [_EXPLAINS_PER_EVALUATION]  # what is left of this evaluation's explain budget
        for result in results:
            key = result.key
            seen.add(key)
            prev = states.get(key)
            before = prev["state"] if prev else "inactive"
            active = result.holds(rule.condition)
            state, cols, notify = step(prev, active, at_ns, rule)
            if state == "inactive" and rule.condition.type != "absence":
                if prev is not None:
                    ev.deletes.append(key)
            elif state == "resolved" and before == "resolved" and rule.condition.type != "absence" and \
                    at_ns - ((prev or {}).get("resolved_ns") or at_ns) > _RESOLVED_KEEP_NS:
                ev.deletes.append(key)
            else:
                row = {"group_key": key, "group_labels": result.labels, "state": state, "value": result.value,
                       "details": result.details, "updated_ns": at_ns, **cols}
                if notify:
                    row["last_notified_ns"] = at_ns
                ev.upserts.append(row)
            if state != before:
                ev.history.append({"group_key": key, "from_state": before, "to_state": state,
                                   "value": result.value, "time_ns": at_ns})
            if notify:
                since = cols.get("active_since_ns") or (prev or {}).get("active_since_ns") or at_ns
                self._outbox(stored, result, notify, since, at_ns, ev, repeat=before == "firing" == state,
                             explains=explains)
        for key, prev in states.items():  # groups not reported at all (value rules): condition false
            if key in seen:
                continue
            if prev["state"] == "resolved" and rule.condition.type != "absence" and \
                    at_ns - (prev["resolved_ns"] or at_ns) > _RESOLVED_KEEP_NS:
                ev.deletes.append(key)  # a group long quiet: forget it
                continue
            if prev["state"] not in ("pending", "firing"):
                continue
            result = GroupResult(prev["group_labels"], None)
            state, cols, notify = step(prev, False, at_ns, rule)
            ev.upserts.append({"group_key": key, "group_labels": prev["group_labels"], "state": state,
                               "value": None, "updated_ns": at_ns, **cols})
            ev.history.append({"group_key": key, "from_state": prev["state"], "to_state": state,
                               "value": None, "time_ns": at_ns})
            if notify:
                self._outbox(stored, result, notify, prev["active_since_ns"] or at_ns, at_ns, ev)

    def _outbox(self, stored: StoredRule, result: GroupResult, kind: str, since_ns: int, at_ns: int,
                ev: Evaluation, *, repeat: bool = False, explains: list[int] | None = None) -> None:
        rule = stored.rule
        labels = {"alertname": rule.name, **rule.labels, **result.labels}
        annotations = rule.render(result.labels, result.value, result.details)
        found = self._contributors(stored, result, kind, at_ns, explains)
        if found is not None:
            annotations = {**annotations, "contributors": found["text"]}
        alert = {"labels": labels, "annotations": annotations,
                 "value": result.value, "details": result.details, "state": kind, "starts_ns": since_ns,
                 "ends_ns": at_ns if kind == "resolved" else None,
                 "rule_labels": rule.labels, "max_per_hour": rule.max_notifications_per_hour,
                 "scope": stored.scope.as_json()}
        if found is not None:
            alert["contributors"] = found
        dedup = f"{stored.id}:{result.key}:{kind}:{since_ns}" + (f":{at_ns}" if repeat else "")
        for channel in rule.channels:
            ev.outbox.append({"dedup_key": dedup, "channel": channel, "rule_id": stored.id,
                              "rule_name": rule.name, "batch": at_ns, "kind": kind, "alert": alert,
                              "status": "pending", "attempts": 0, "next_attempt_ns": at_ns,
                              "created_ns": at_ns})

    def _contributors(self, stored: StoredRule, result: GroupResult, kind: str, at_ns: int,
                      explains: list[int] | None) -> dict[str, Any] | None:
        """What sets a firing group's records apart (a few per evaluation; never raises)."""
        rule = stored.rule
        if self.explain is None or kind != "firing" or not rule.channels or not explains \
                or explains[0] <= 0 or rule.condition.type not in _EXPLAINED:
            return None
        explains[0] -= 1
        try:
            return self.explain(rule.query, rule.condition.numerator, result.labels, rule.window_ns, at_ns,
                                stored.scope.sql())
        except Exception as exc:  # an explain error must never block a notification
            log.warning("rule %r: contributors failed, notifying without them: %s", rule.name, exc)
            return None

    def dry_run(self, rule: Rule, at_ns: int, *, scope: tuple[str, dict[str, object]] | None = None
                ) -> list[dict[str, Any]]:
        """Each group's value and verdict now, changing nothing (``logharbor alerts test``)."""
        results = rule.evaluate(self.run_query, at_ns, table=self.table, scope=scope,
                                patterns_table=self.patterns_table, clock_table=self.clock_table)
        return [{"group": r.labels, "value": r.value, "active": r.holds(rule.condition),
                 "annotations": rule.render(r.labels, r.value, r.details),
                 **({"details": r.details} if r.details is not None else {})} for r in results]

    # -------------------------------------------------------------------------- scheduler

    def rules_changed(self) -> None:
        """Tell the scheduler to reload the rules now (after an API change)."""
        self._changed.set()

    async def start(self) -> None:
        """Start the scheduler loop on the running event loop."""
        self._loop_task = asyncio.create_task(self._loop(), name="alert-evaluator")

    async def stop(self) -> None:
        """Stop scheduling, let running evaluations finish, and give the lease up."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=30)
        if self.lease is not None and self.lease.held_until:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self.lease.release)

    async def _loop(self) -> None:
        due: dict[str, int] = {}  # rule name or "job:<name>" → next slot
        rules: dict[str, StoredRule] = {}
        versions: dict[str, int] = {}
        reload_at = 0
        while True:
            now = self.clock.now_ns()
            if self._changed.is_set() or now >= reload_at:
                self._changed.clear()
                loaded = await asyncio.to_thread(self.catalog.enabled_rules)
                rules = {s.rule.name: s for s in loaded}
                for name, s in rules.items():
                    if versions.get(name) != s.version:  # new or edited: its grid may have moved
                        versions[name] = s.version
                        due[name] = next_slot(name, s.rule.interval_ns, max(now - 1, s.last_eval_ns or 0))
                for job in self.jobs:
                    due.setdefault("job:" + job.name, next_slot(job.name, job.interval_ns, now - 1))
                due = {k: v for k, v in due.items() if k in rules or k.startswith("job:")}
                reload_at = now + _RELOAD_NS
            active = await self._hold_lease(now)
            for key, slot in sorted(due.items(), key=lambda kv: kv[1]):
                if slot > now:
                    continue
                stored = rules.get(key)
                interval = stored.rule.interval_ns if stored else self._job(key).interval_ns
                due[key] = next_slot(key if stored else key[4:], interval, now)
                if not active:  # another server holds the lease and runs this slot
                    continue
                if key in self._busy:  # the previous run is still going: skip this slot
                    self.skips += 1
                    if stored is not None:
                        await asyncio.to_thread(self.catalog.count_skip, stored.id)
                    continue
                self._busy.add(key)
                task = asyncio.create_task(self._run(key, stored, slot))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            wake = min([*due.values(), reload_at])
            sleeper = asyncio.create_task(self.clock.sleep_until(wake))
            changed = asyncio.create_task(self._changed.wait())
            self.waiting_until = wake
            try:
                await asyncio.wait({sleeper, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.waiting_until = None
                for t in (sleeper, changed):
                    t.cancel()

    async def _hold_lease(self, now: int) -> bool:
        lease = self.lease
        if lease is None:
            return True
        if lease.holds(now + lease.ttl_ns // 2):  # renewed recently enough
            return True
        try:
            return await asyncio.to_thread(lease.hold, now)
        except Exception:  # the database is away: run nothing rather than risk running twice
            log.exception("alert evaluator: could not renew the lease")
            return False

    @property
    def running(self) -> frozenset[str]:
        """Rules (and ``job:<name>``) being evaluated right now."""
        return frozenset(self._busy)

    def settled(self) -> bool:
        """Whether everything due by now has run: the scheduler sleeps past now and nothing runs."""
        waiting = self.waiting_until
        return not self._busy and not self._changed.is_set() and waiting is not None and \
            waiting > self.clock.now_ns()

    def _job(self, key: str) -> Job:
        return next(j for j in self.jobs if "job:" + j.name == key)

    async def _run(self, key: str, stored: StoredRule | None, slot: int) -> None:
        try:
            async with self._limit:
                if stored is not None:
                    await asyncio.to_thread(self.evaluate, stored, slot)
                else:
                    await asyncio.to_thread(self._job(key).run, slot)
                    self.runs += 1
        except Exception:  # a job's bug must not stop the scheduler; it is logged with its trace
            log.exception("alert evaluator: %s failed at slot %d", key, slot)
        finally:
            self._busy.discard(key)
