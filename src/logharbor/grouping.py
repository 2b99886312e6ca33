"""How the miner cuts a service's masked templates into groups: candidates, then decisive words.

Used by :class:`logharbor.miner.Miner`, which keeps the set and says what changed; this module is
the partition itself, a function of the set (docs/patterns.md, "How a message becomes a template"):

1. *Candidates* (:class:`Bucket`): masked templates of one token count that hold the same token (or
   the same ``key=``) in at least :data:`SIMILARITY` of their positions are linked; each connected
   set is cut further by step 2.
2. *Decisive words* (:func:`partition`): a position whose values are at most a few distinct words
   (:data:`SPLIT_WORDS`, or :data:`SPLIT_WORDS_FIRST` for the first word) splits the set by that
   word, the position with the fewest values first, again in each part. A masked value, a ``key=``
   with a masked value, or many words is a parameter; so are digits alone (``CPU0`` … ``CPU3``, when
   three or more differ only there).

A group's template (:func:`render`) keeps the tokens all members share and generalizes the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from logharbor.patterns import WILDCARD, has_placeholder

__all__ = ["SIMILARITY", "SPLIT_WORDS", "SPLIT_WORDS_FIRST", "Bucket", "Member", "partition", "render"]

SIMILARITY = 0.5  # the share of positions two candidates agree on
SPLIT_WORDS = 4  # a position with at most this many distinct words splits a group
SPLIT_WORDS_FIRST = 8  # the same for the first word (a verb, a component name)
_VAR = "\x00"  # the class of a masked value
_EDGE = set("()[]{}<>,;:.!?\"'=")


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
class Bucket:
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
