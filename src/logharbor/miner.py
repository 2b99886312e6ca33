"""Which masked templates of a service are one event: decided from the *set* of them, not the order.

Masking (:mod:`logharbor.patterns`) gives each message a masked template and its id (*sid*). The
miner keeps, per (tenant, service), the set of masked templates it has seen and partitions it into
*groups*; a group's template is its members' tokens with the positions where they differ made
``<*>``, and its id (the ``pattern_id`` users see) is :func:`pattern_id` of that template — so a
group of one has the id of its masked template, and the same set gives the same groups and ids
whatever order its messages came in (docs/patterns.md). The partition, per token count:

1. *Candidates*: masked templates that hold the same token (or the same ``key=``) in at least
   half of their positions are linked; each connected set is cut further (step 2).
2. *Decisive words*: a position whose values are at most a few distinct words (``Failed`` /
   ``Accepted``, ``GET`` / ``POST``, ``Resumed`` / ``Paused``; up to 4, or 8 for the first word)
   splits the set by that word, the position with the fewest values first, again in each part. A
   position holding a masked value (``<ip>``), a ``key=`` with a masked value, or many words is a
   parameter and does not split; nor do digits alone (``CPU0`` … ``CPU3``, three or more).

Ideas from Drain (similarity by position), IPLoM (partition by the position with the fewest
values) and Brain/ULP (a position's values over a group tell constants from variables).

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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from logharbor.patterns import WILDCARD, has_placeholder, pattern_id, pattern_key

__all__ = ["Member", "Miner", "Row", "partition", "render"]

SIMILARITY = 0.5
SPLIT_WORDS = 4
SPLIT_WORDS_FIRST = 8
_VAR = "\x00"  # the class of a masked value
_EDGE = set("()[]{}<>,;:.!?\"'=")

#: a changed assignment, as written to the patterns table: (tenant, service, stored id, group id,
#: group template, first timestamp, sample)
Row = tuple[str, str, str, str, str, str, str]


@dataclass(eq=False)
class Member:
    """One masked template of a service."""

    sid: str
    tokens: tuple[str, ...]
    first_ts: str = ""
    sample: str = ""
    gid: str = ""
    template: str = ""


def _key(token: str) -> str | None:
    """``uid=`` of ``(uid=0)``: the key of a key=value token, or None."""
    eq = token.find("=")
    if eq <= 0:
        return None
    start = 0
    while start < eq and not (token[start].isalnum() or token[start] == "_"):
        start += 1
    name = token[start:eq]
    if not name or not (name[0].isalpha() or name[0] == "_"):
        return None
    return name + "=" if all(c.isalnum() or c in "_.-" for c in name) else None


def _link_class(token: str) -> str:
    key = _key(token)
    return "\x01" + key if key is not None else token


def _classes(values: Iterable[str]) -> dict[str, str]:
    """Each value of a position → its class: a word is its own class; masked values are one class;
    the values of one key are one class when any of them is masked; words that differ only in
    their digits are one class when there are three or more of them."""
    out: dict[str, str] = {}
    keyed: dict[str, list[str]] = {}
    stems: dict[str, list[str]] = {}
    for value in values:
        key = _key(value)
        if key is not None:
            keyed.setdefault(key, []).append(value)
        elif has_placeholder(value):
            out[value] = _VAR
        elif any(c.isdigit() for c in value):
            stems.setdefault("".join("#" if c.isdigit() else c for c in value), []).append(value)
        else:
            out[value] = value
    for key, group in keyed.items():
        masked = any(has_placeholder(v) for v in group)
        for value in group:
            out[value] = key + _VAR if masked else value
    for stem, group in stems.items():
        for value in group:
            out[value] = stem + _VAR if len(group) > 2 else value
    return out


def partition(members: list[Member]) -> list[list[Member]]:
    """Cut one candidate set (same token count) at its decisive words, recursively."""
    if len(members) < 2:
        return [members]
    best: tuple[int, int, dict[str, str]] | None = None
    for i in range(len(members[0].tokens)):
        values = {m.tokens[i] for m in members}
        if len(values) < 2:
            continue
        classes = _classes(values)
        kinds = set(classes.values())
        if 1 < len(kinds) <= (SPLIT_WORDS_FIRST if i == 0 else SPLIT_WORDS) and _VAR not in kinds \
                and (best is None or len(kinds) < best[0]):
            best = (len(kinds), i, classes)
    if best is None:
        return [members]
    _, i, classes = best
    parts: dict[str, list[Member]] = {}
    for m in members:
        parts.setdefault(classes[m.tokens[i]], []).append(m)
    return [group for part in parts.values() for group in partition(part)]


def _generalize(values: set[str]) -> str:
    """``<*>`` with the punctuation (and ``key=``) every value starts and ends with."""
    first = min(values)
    last = max(values)
    n = 0
    while n < min(len(first), len(last)) and first[n] == last[n]:
        n += 1
    while n and not all(c in _EDGE for c in first[:n]) and first[n - 1] != "=":
        n -= 1
    head = first[:n]
    tails = [v[n:] for v in values]
    m = 0
    while m < min(map(len, tails)) and len({t[len(t) - 1 - m] for t in tails}) == 1 \
            and tails[0][len(tails[0]) - 1 - m] in _EDGE:
        m += 1
    tail = first[len(first) - m:] if m else ""
    return head + WILDCARD + tail


def render(members: list[Member]) -> str:
    """The group's template: the tokens all members share, the others generalized."""
    if len(members) == 1:
        return " ".join(members[0].tokens)
    out = []
    for column in zip(*(m.tokens for m in members), strict=True):
        values = set(column)
        out.append(column[0] if len(values) == 1 else _generalize(values))
    return " ".join(out)


@dataclass
class _Bucket:
    """The masked templates of one service with one token count, linked into candidate sets."""

    members: dict[str, Member] = field(default_factory=dict)
    index: dict[tuple[int, str], set[str]] = field(default_factory=dict)
    parent: dict[str, str] = field(default_factory=dict)
    sets: dict[str, list[str]] = field(default_factory=dict)  # root → member sids

    def root(self, sid: str) -> str:
        parent = self.parent
        while parent[sid] != sid:
            parent[sid] = parent[parent[sid]]
            sid = parent[sid]
        return sid

    def add(self, member: Member) -> str:
        """Index ``member`` and link it to its candidates; the root of its candidate set."""
        sid, tokens = member.sid, member.tokens
        n = len(tokens)
        hits: dict[str, int] = {}
        for key in enumerate(map(_link_class, tokens)):
            holders = self.index.setdefault(key, set())
            for other in holders:
                hits[other] = hits.get(other, 0) + 1
            holders.add(sid)
        self.members[sid] = member
        self.parent[sid] = sid
        self.sets[sid] = [sid]
        need = SIMILARITY * n
        for other, count in hits.items():
            if count >= need:
                self._union(sid, other)
        return self.root(sid)

    def _union(self, a: str, b: str) -> None:
        ra, rb = self.root(a), self.root(b)
        if ra == rb:
            return
        if len(self.sets[ra]) < len(self.sets[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.sets[ra].extend(self.sets.pop(rb))

    def remove(self, sid: str) -> list[str]:
        """Forget ``sid``; the roots of the candidate sets its old set falls into."""
        member = self.members.pop(sid)
        old = self.sets.pop(self.root(sid))
        for key in enumerate(map(_link_class, member.tokens)):
            holders = self.index.get(key)
            if holders is not None:
                holders.discard(sid)
                if not holders:
                    del self.index[key]
        rest = [s for s in old if s != sid]
        del self.parent[sid]
        for s in rest:  # re-link the rest among themselves (a removal can cut a set in two)
            self.parent[s] = s
            self.sets[s] = [s]
        for s in rest:
            tokens = self.members[s].tokens
            hits: dict[str, int] = {}
            for key in enumerate(map(_link_class, tokens)):
                for other in self.index.get(key, ()):
                    if other != s:
                        hits[other] = hits.get(other, 0) + 1
            need = SIMILARITY * len(tokens)
            for other, count in hits.items():
                if count >= need:
                    self._union(s, other)
        return sorted({self.root(s) for s in rest})


@dataclass
class _Service:
    key: str
    members: OrderedDict[str, Member] = field(default_factory=OrderedDict)  # LRU order
    buckets: dict[int, _Bucket] = field(default_factory=dict)
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
        root = svc.buckets.setdefault(n, _Bucket()).add(member)
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
