"""Which masked templates of a service are one event: decided from the *set* of them, not the order.

Masking (:mod:`logharbor.patterns`) gives each message a masked template and its id (*sid*). The
miner keeps, per (tenant, service), the set of masked templates it has seen and partitions it into
*groups*; a group's template is its members' tokens with the positions where they differ made
``<*>``, and its id (the ``pattern_id`` users see) is :func:`pattern_id` of that template — so a
group of one has the id of its masked template, and the same set gives the same groups and ids
whatever order its messages came in (docs/patterns.md). How the set is cut is
:mod:`logharbor.grouping`: candidates linked by position, then split at decisive words (ideas from
Drain's similarity by position, IPLoM's partition by the position with the fewest values, and
Brain/ULP: over one event's messages, constants stay constant and variables vary).

State is a set, so it is journaled as additions and removals (:meth:`Miner.learn` returns them as
*ops*; :meth:`Miner.apply` replays them and :meth:`Miner.regroup` recomputes what they touched).
An *alias* names an id that is not a member's masked-template id — a former group id after its
template generalized, or a stored id from before an upgrade — and the member whose group it
follows. Memory is bounded: ``max_sids`` masked templates per service and ``max_services``
services, least recently used first out (an eviction can change a group: order independence
holds within the bounds).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

from logharbor.grouping import Bucket, Member, partition, render
from logharbor.patterns import pattern_id, pattern_key

__all__ = ["Member", "Miner", "Row"]

#: a changed assignment, as written to the patterns table: (tenant, service, stored id, group id,
#: group template, first timestamp, sample)
Row = tuple[str, str, str, str, str, str, str]


@dataclass
class _Service:
    key: str
    members: OrderedDict[str, Member] = field(default_factory=OrderedDict)  # LRU order
    buckets: dict[int, Bucket] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)  # group id → members
    aliases: OrderedDict[str, str] = field(default_factory=OrderedDict)  # id → member sid it follows
    followers: dict[str, set[str]] = field(default_factory=dict)  # member sid → aliases of it
    dirty: dict[int, set[str]] = field(default_factory=dict)  # token count → sets to regroup
    fresh: set[str] = field(default_factory=set)  # aliases whose row is not written yet


class Miner:
    """Masked templates per (tenant, service), partitioned into groups; see the module docstring.

    :meth:`add` (and :meth:`forget`, :meth:`apply`) change the set; :meth:`regroup` partitions
    what changed and returns the assignments that moved. :meth:`learn` does both for one sid.
    """

    def __init__(self, *, max_sids: int = 2_000, max_services: int = 100) -> None:
        self.max_sids = max_sids
        self.max_services = max_services
        self.services: OrderedDict[tuple[str, str], _Service] = OrderedDict()
        self.owners: dict[str, tuple[str, str]] = {}  # sid → its (tenant, service)
        self.evictions = 0

    # -- reading -------------------------------------------------------------------------------

    def resolve(self, sid: str) -> str | None:
        """The group id of a known sid (marking it used), or None."""
        owner = self.owners.get(sid)
        if owner is None:
            return None
        svc = self.services[owner]
        svc.members.move_to_end(sid)
        self.services.move_to_end(owner)
        return svc.members[sid].gid

    def group_of(self, tenant: str, service: str, stored_id: str) -> str | None:
        """The group id a stored id (a sid or an alias) resolves to now, or None."""
        svc = self.services.get((tenant, service))
        if svc is None:
            return None
        member = svc.members.get(stored_id)
        if member is None:
            rep = svc.aliases.get(stored_id)
            member = svc.members.get(rep) if rep is not None else None
        return member.gid if member is not None else None

    def member(self, tenant: str, service: str, sid: str) -> Member | None:
        svc = self.services.get((tenant, service))
        return svc.members.get(sid) if svc is not None else None

    def members(self) -> Iterator[tuple[str, str, Member]]:
        for (tenant, service), svc in self.services.items():
            for member in svc.members.values():
                yield tenant, service, member

    def groups(self) -> dict[tuple[str, str, str], str]:
        """(tenant, service, group id) → template, of every group."""
        return {(t, s, m.gid): m.template for t, s, m in self.members()}

    def counts(self) -> dict[str, int]:
        return {"services": len(self.services),
                "groups": sum(len(s.groups) for s in self.services.values()),
                "sids": len(self.owners),
                "aliases": sum(len(s.aliases) for s in self.services.values()),
                "evictions": self.evictions}

    # -- changing the set ----------------------------------------------------------------------

    def add(self, tenant: str, service: str, sid: str, tokens: list[str] | tuple[str, ...], *,
            ts: str = "", sample: str = "") -> list[list[object]]:
        """Add a masked template (a known one is only marked used); the ops to journal."""
        if sid in self.owners:
            self.resolve(sid)
            return []
        ops: list[list[object]] = []
        key = (tenant, service)
        while key not in self.services and len(self.services) >= self.max_services:
            ops.append(["E", *next(iter(self.services))])
            self.apply(ops[-1])
        svc = self._service(tenant, service)
        ops.append(["a", tenant, service, sid, " ".join(tokens), ts, sample])
        self._insert(key, svc, sid, tuple(tokens) or ("",), ts, sample)
        while len(svc.members) > self.max_sids:
            old = next(iter(svc.members))
            ops.append(["d", tenant, service, old])
            self._drop(svc, old)
            self.evictions += 1
        return ops

    def forget(self, tenant: str, service: str, sid: str) -> list[list[object]]:
        """Drop a masked template (its records were erased); the ops to journal."""
        svc = self.services.get((tenant, service))
        if svc is None or sid not in svc.members:
            return []
        self._drop(svc, sid)
        return [["d", tenant, service, sid]]

    def alias(self, tenant: str, service: str, stored_id: str, sid: str) -> list[list[object]]:
        """Make ``stored_id`` follow the group of the known ``sid`` (an id from before an upgrade);
        its assignment comes with the next :meth:`regroup`."""
        svc = self.services.get((tenant, service))
        if svc is None or sid not in svc.members or stored_id in svc.members:
            return []
        op: list[object] = ["l", tenant, service, stored_id, sid]
        self.apply(op)
        return [op]

    def learn(self, tenant: str, service: str, sid: str, tokens: list[str] | tuple[str, ...], *,
              ts: str = "", sample: str = "") -> tuple[str, list[list[object]], list[Row]]:
        """:meth:`add` then :meth:`regroup`: (the sid's group id, ops, assignments that moved)."""
        ops = self.add(tenant, service, sid, tokens, ts=ts, sample=sample)
        more, rows = self.regroup()
        return self.group_of(tenant, service, sid) or sid, [*ops, *more], rows

    def apply(self, op: list[object]) -> None:
        """Apply one journaled op (what it changes is regrouped by the next :meth:`regroup`)."""
        kind, tenant, service = op[0], str(op[1]), str(op[2])
        if kind == "E":
            gone = self.services.pop((tenant, service), None)
            for sid in gone.members if gone is not None else ():
                self.owners.pop(sid, None)
            self.evictions += gone is not None
            return
        svc = self._service(tenant, service)
        if kind == "a":
            if str(op[3]) not in svc.members:
                tokens = tuple(str(op[4]).split(" "))
                self._insert((tenant, service), svc, str(op[3]), tokens, str(op[5]), str(op[6]))
        elif kind == "d":
            if str(op[3]) in svc.members:
                self._drop(svc, str(op[3]))
        elif kind == "l":
            alias, sid = str(op[3]), str(op[4])
            self._unalias(svc, alias)
            svc.aliases[alias] = sid
            svc.followers.setdefault(sid, set()).add(alias)
            svc.fresh.add(alias)
            while len(svc.aliases) > self.max_sids:
                self._unalias(svc, next(iter(svc.aliases)))
        elif kind == "L":
            self._unalias(svc, str(op[3]))

    def regroup(self) -> tuple[list[list[object]], list[Row]]:
        """Partition again every candidate set that changed; (alias ops to journal, the assignments
        of members and aliases that moved, and of aliases not written yet)."""
        ops: list[list[object]] = []
        rows: list[Row] = []
        for (tenant, service), svc in list(self.services.items()):
            if svc.dirty or svc.fresh:
                self._regroup(tenant, service, svc, ops, rows)
        return ops, rows

    def snapshot(self) -> list[list[object]]:
        """The whole state as ops (applying them to an empty miner, then :meth:`regroup`, rebuilds it)."""
        out: list[list[object]] = []
        for (tenant, service), svc in self.services.items():
            for m in svc.members.values():
                out.append(["a", tenant, service, m.sid, " ".join(m.tokens), m.first_ts, m.sample])
            for alias, sid in svc.aliases.items():
                out.append(["l", tenant, service, alias, sid])
        return out

    # -- inside --------------------------------------------------------------------------------

    def _service(self, tenant: str, service: str) -> _Service:
        key = (tenant, service)
        svc = self.services.get(key)
        if svc is None:
            svc = self.services[key] = _Service(pattern_key(tenant, service))
        self.services.move_to_end(key)
        return svc

    def _insert(self, key: tuple[str, str], svc: _Service, sid: str, tokens: tuple[str, ...], ts: str,
                sample: str) -> None:
        member = Member(sid, tokens, ts, sample)
        svc.members[sid] = member
        self._unalias(svc, sid)  # a member's own row wins over an alias of the same id
        self.owners[sid] = key
        n = len(tokens)
        root = svc.buckets.setdefault(n, Bucket()).add(member)
        svc.dirty.setdefault(n, set()).add(root)

    def _drop(self, svc: _Service, sid: str) -> None:
        member = svc.members.pop(sid)
        self.owners.pop(sid, None)
        n = len(member.tokens)
        bucket = svc.buckets[n]
        roots = bucket.remove(sid)
        if not bucket.members:
            del svc.buckets[n]
        else:
            svc.dirty.setdefault(n, set()).update(roots)
        if member.gid:
            self._count(svc, member.gid, -1)
        for alias in list(svc.followers.get(sid, ())):
            self._unalias(svc, alias)

    @staticmethod
    def _unalias(svc: _Service, alias: str) -> None:
        sid = svc.aliases.pop(alias, None)
        if sid is not None:
            svc.fresh.discard(alias)
            followers = svc.followers.get(sid)
            if followers is not None:
                followers.discard(alias)
                if not followers:
                    del svc.followers[sid]

    @staticmethod
    def _count(svc: _Service, gid: str, delta: int) -> None:
        left = svc.groups.get(gid, 0) + delta
        if left > 0:
            svc.groups[gid] = left
        else:
            svc.groups.pop(gid, None)

    def _regroup(self, tenant: str, service: str, svc: _Service, ops: list[list[object]],
                 rows: list[Row]) -> None:
        moved: dict[str, Member] = {}
        gone: dict[str, list[Member]] = {}
        dirty, svc.dirty = svc.dirty, {}
        for n, roots in sorted(dirty.items()):
            bucket = svc.buckets.get(n)
            if bucket is None:
                continue
            for root in sorted({bucket.root(r) for r in roots if r in bucket.parent}):
                for group in partition([bucket.members[s] for s in bucket.sets[root]]):
                    template = render(group)
                    gid = pattern_id(svc.key, template)
                    for m in group:
                        if m.gid == gid and m.template == template:
                            continue
                        if m.gid != gid:
                            if m.gid:
                                gone.setdefault(m.gid, []).append(m)
                                self._count(svc, m.gid, -1)
                            self._count(svc, gid, +1)
                        m.gid, m.template = gid, template
                        moved[m.sid] = m
        for m in moved.values():
            rows.append((tenant, service, m.sid, m.gid, m.template, m.first_ts, m.sample))
        for old, left in sorted(gone.items()):  # a group id no member has any more: an alias
            if old not in svc.groups and old not in svc.members:
                op: list[object] = ["l", tenant, service, old, min(m.sid for m in left)]
                ops.append(op)
                self.apply(op)
        for m in moved.values():
            if m.gid in svc.aliases:  # a group id is current again: it names its group, not an alias
                self._unalias(svc, m.gid)
                ops.append(["L", tenant, service, m.gid])
                rows.append((tenant, service, m.gid, m.gid, m.template, m.first_ts, m.sample))
        for sid in moved:
            svc.fresh.update(svc.followers.get(sid, ()))
        for alias in sorted(svc.fresh):
            m = svc.members[svc.aliases[alias]]
            rows.append((tenant, service, alias, m.gid, m.template, m.first_ts, m.sample))
        svc.fresh.clear()
