"""Log templates: the shape a message takes once its variable parts are masked.

``GET /orders/o-42 took 12ms for user u-7`` and ``GET /orders/o-913 took 480ms for user u-31``
are one template, ``GET /orders/<*> took <num>ms for user <*>``. The template is computed from
the message alone (no state), so every ingest worker and every server gives one message the same
``pattern_id`` — the id is a hash of the service and the template. What the masking cannot
know, that a word no rule masks (a user or table name) is a parameter, :class:`Miner` learns:
a Drain-style merge over the masked token sequences of one service (docs/patterns.md).

It works token by token (words without digits pass untouched, which is most of them, so the cost
is a few µs per message): quoted strings, then per token URLs, UUIDs, e-mail addresses,
IPv4/IPv6 addresses with an optional port, hex ids (≥ 8 hex digits with a digit), the values of
a path's query string (``/search?q=<*>``), paths of two or more segments (or with a file
extension), numbers with a unit kept (``12ms`` → ``<num>ms``),
and any other token holding a digit (``o-42``, ``req_9f``) becomes ``<*>``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from zlib import crc32

__all__ = ["Cluster", "Miner", "pattern_id", "pattern_key", "template_of"]

_QUOTED = re.compile(r'"[^"]*"|\'[^\']*\'')
_PLAIN = re.compile(r"[A-Za-z_-]*")  # a word with no digit and nothing special: kept as it is
_EDGE = "()[]{}<>,;:.!?"
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.I)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_IPV4 = re.compile(r"(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?")
_IPV6 = re.compile(r"\[?(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}\]?(?::\d+)?", re.I)
_HEX = re.compile(r"(?=[0-9a-f]*\d)[0-9a-f]{8,}", re.I)
_PATH = re.compile(r"/[^\s/]+(?:/[^\s/]*)+|/[^\s/]*\.[^\s/]+")
_NUMBER = re.compile(r"([-+]?\d+(?:[.,]\d+)?)([a-zA-Zµ%]{0,3})")
_MAX_CHARS = 2000  # the head of a very long message decides its shape


def _classify(core: str) -> str | None:
    """The typed mask of a token, in order of precedence; each pattern runs only when the
    token has the character it needs (most tokens are tried against one or two, not seven)."""
    if "://" in core and _URL.fullmatch(core):
        return "<url>"
    if len(core) == 36 and _UUID.fullmatch(core):
        return "<uuid>"
    if "@" in core and _EMAIL.fullmatch(core):
        return "<email>"
    colons = core.count(":")
    if core.count(".") == 3 and colons <= 1 and _IPV4.fullmatch(core):
        return "<ip>"
    if colons >= 2 and _IPV6.fullmatch(core):
        return "<ip>"
    if len(core) >= 8 and _HEX.fullmatch(core):
        return "<hex>"
    if core[0] == "/":
        if "?" in core and "=" in core:  # /search?q=decaf&page=2 → /search?q=<*>&page=<*>
            path, _, query = core.partition("?")
            path = "<path>" if _PATH.fullmatch(path) else path
            return path + "?" + "&".join(kv.partition("=")[0] + "=<*>" if "=" in kv else kv
                                         for kv in query.split("&"))
        if _PATH.fullmatch(core):
            return "<path>"
    return None


def _mask(token: str) -> str:
    if token.isalpha():
        return token
    core = token.strip(_EDGE)
    if not core or _PLAIN.fullmatch(core):
        return token
    start = token.find(core)
    head, tail = token[:start], token[start + len(core):]
    if core.isdigit() and core.isascii():  # the common case, decided without a regex
        return head + ("<hex>" if len(core) >= 8 else "<num>") + tail
    mask = _classify(core)
    if mask is not None:
        return head + mask + tail
    m = _NUMBER.fullmatch(core)
    if m is not None:
        return head + "<num>" + m[2] + tail
    if any(c.isdigit() for c in core):
        return head + "<*>" + tail
    return token


_CACHE: dict[str, str] = {}  # identical messages are common; bounded, cleared when full
_CACHE_MAX = 20_000


def template_of(message: str) -> str:
    """The message with its variable parts masked, whitespace folded."""
    cached = _CACHE.get(message)
    if cached is not None:
        return cached
    text = message[:_MAX_CHARS]
    if '"' in text or "'" in text:
        text = _QUOTED.sub('"<str>"', text)
    template = " ".join([_mask(token) for token in text.split()])
    if len(message) <= 512:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[message] = template
    return template


def pattern_key(tenant: str | None, service: str | None) -> str:
    """What a masked-template id is computed over: the service, within its tenant when it has one."""
    return f"{tenant}\x00{service or ''}" if tenant else (service or "")


def pattern_id(service: str | None, template: str) -> str:
    """16 hex digits naming (service, template); the same everywhere, stable across restarts."""
    head = crc32(template.encode())
    tail = crc32((service or "").encode() + b"\x00" + template.encode(), 0x5F3759DF)
    return f"{head:08x}{tail:08x}"


# -- the miner ---------------------------------------------------------------------------------

WILDCARD = "<*>"


@dataclass(eq=False)
class Cluster:
    """One template: its id (fixed at creation), its tokens (generalized as it learns), where it
    came from (the timestamp and message of its first record, for the patterns table)."""

    id: str
    tokens: list[str]
    first_ts: str = ""
    sample: str = ""
    sids: set[str] = field(default_factory=set)

    @property
    def template(self) -> str:
        return " ".join(self.tokens)


@dataclass
class _Service:
    clusters: OrderedDict[str, Cluster] = field(default_factory=OrderedDict)  # LRU order
    #: (token count, position, token) → the clusters whose template has that token there: the
    #: similarity of a new sequence is counted from these lists, never by scanning every cluster
    index: dict[tuple[int, int, str], list[Cluster]] = field(default_factory=dict)
    sids: OrderedDict[str, str] = field(default_factory=OrderedDict)  # masked-template id → cluster id

    def link(self, cluster: Cluster, positions: range | list[int]) -> None:
        n = len(cluster.tokens)
        for i in positions:
            if cluster.tokens[i] != WILDCARD:
                self.index.setdefault((n, i, cluster.tokens[i]), []).append(cluster)  # lists: small

    def unlink(self, cluster: Cluster, positions: range | list[int]) -> None:
        n = len(cluster.tokens)
        for i in positions:
            key = (n, i, cluster.tokens[i])
            holders = self.index.get(key)
            if holders is not None and cluster in holders:  # identity: clusters have no __eq__
                holders.remove(cluster)
                if not holders:
                    del self.index[key]


def _best(svc: _Service, tokens: list[str], threshold: float) -> Cluster | None:
    """The cluster most like ``tokens``, by Drain's measure: the share of positions where the
    template has this exact token (a wildcard position does not count as a match, so a very
    general template does not swallow everything of its length); fewer wildcards win a tie."""
    n = len(tokens)
    same: dict[Cluster, int] = {}
    for i, token in enumerate(tokens):
        for cluster in svc.index.get((n, i, token), ()):
            same[cluster] = same.get(cluster, 0) + 1
    best: Cluster | None = None
    best_key: tuple[float, int, str] | None = None
    for cluster, hits in same.items():
        sim = hits / n
        if sim >= threshold:
            key = (sim, -cluster.tokens.count(WILDCARD), cluster.id)  # the id: the same pick every run
            if best_key is None or key > best_key:
                best, best_key = cluster, key
    return best


class Miner:
    """Drain over masked templates, per (tenant, service), bounded, with stable cluster ids.

    The input is a *masked-template id* (``sid``: :func:`pattern_id` of the tenant/service key and
    :func:`template_of` the message) and, the first time a sid is seen, its tokens. A sid maps to
    a cluster once and keeps that mapping; a new sid joins the most similar cluster of the same
    token count when at least ``similarity`` of the positions agree (the cluster's template then
    turns the differing positions into ``<*>``), or starts a new cluster whose id is the sid, so
    a cluster's id never changes. Memory is bounded: ``max_clusters`` per service and
    ``max_sids`` per service (least recently used first out), ``max_services`` services.

    Every change is reported as an *op* (a small list) by :meth:`learn` and can be applied again
    by :meth:`apply`, which is how the state is journaled and restored (server/mining.py).
    """

    def __init__(self, *, similarity: float = 0.6, max_clusters: int = 500, max_sids: int = 5_000,
                 max_services: int = 100) -> None:
        self.similarity = similarity
        self.max_clusters = max_clusters
        self.max_sids = max_sids
        self.max_services = max_services
        self.services: OrderedDict[tuple[str, str], _Service] = OrderedDict()
        self.owners: dict[str, tuple[str, str]] = {}  # sid → its (tenant, service)
        self.evictions = 0

    # -- reading -------------------------------------------------------------------------------

    def lookup(self, tenant: str, service: str, sid: str) -> str | None:
        """The cluster id of a known sid (and mark it used), or None."""
        svc = self.services.get((tenant, service))
        if svc is None:
            return None
        cid = svc.sids.get(sid)
        if cid is not None:
            svc.sids.move_to_end(sid)
            svc.clusters.move_to_end(cid)
            self.services.move_to_end((tenant, service))
        return cid

    def resolve(self, sid: str) -> str | None:
        """The cluster id of a known sid, whatever its service (sids are unique per service)."""
        owner = self.owners.get(sid)
        return None if owner is None else self.lookup(owner[0], owner[1], sid)

    def clusters(self) -> Iterator[tuple[str, str, Cluster]]:
        for (tenant, service), svc in self.services.items():
            for cluster in svc.clusters.values():
                yield tenant, service, cluster

    def counts(self) -> dict[str, int]:
        return {"services": len(self.services),
                "clusters": sum(len(s.clusters) for s in self.services.values()),
                "sids": sum(len(s.sids) for s in self.services.values()),
                "evictions": self.evictions}

    # -- learning ------------------------------------------------------------------------------

    def learn(self, tenant: str, service: str, sid: str, tokens: list[str], *, ts: str = "",
              sample: str = "") -> tuple[str, list[list[object]]]:
        """Map a sid to its cluster, learning from ``tokens``; (cluster id, ops that changed state)."""
        known = self.lookup(tenant, service, sid)
        if known is not None:
            return known, []
        tokens = tokens or [""]  # an empty template is one empty token, as " ".join writes it
        ops: list[list[object]] = []
        svc = self._service(tenant, service, ops)
        best = _best(svc, tokens, self.similarity)
        if best is None:
            best = svc.clusters.get(sid)  # its own cluster, when the sid itself was forgotten
        if best is None:
            while len(svc.clusters) >= self.max_clusters:  # evictions go first in the journal
                evict: list[object] = ["e", tenant, service, next(iter(svc.clusters))]
                ops.append(evict)
                self.apply(evict)
            op: list[object] = ["c", tenant, service, sid, " ".join(tokens), ts, sample]
        else:
            merged = [a if a == b else WILDCARD for a, b in zip(best.tokens, tokens, strict=True)]
            op = ["c", tenant, service, best.id, " ".join(merged), best.first_ts, best.sample] \
                if merged != best.tokens else []
        if op:
            ops.append(op)
            self.apply(op, ops)
        cid = sid if best is None else best.id
        map_op: list[object] = ["s", tenant, service, sid, cid]
        ops.append(map_op)
        self.apply(map_op, ops)
        return cid, ops

    def _service(self, tenant: str, service: str, ops: list[list[object]] | None) -> _Service:
        key = (tenant, service)
        svc = self.services.get(key)
        if svc is None:
            while len(self.services) >= self.max_services:
                (old_tenant, old_service), gone = self.services.popitem(last=False)
                for sid in gone.sids:
                    self.owners.pop(sid, None)
                self.evictions += 1
                if ops is not None:
                    ops.append(["E", old_tenant, old_service])
            svc = self.services[key] = _Service()
        self.services.move_to_end(key)
        return svc

    def apply(self, op: list[object], ops: list[list[object]] | None = None) -> None:
        """Apply one op (from :meth:`learn`, or read back from the journal). Evictions it causes
        are appended to ``ops`` when given (when replaying, the journal has them already)."""
        kind, tenant, service = op[0], str(op[1]), str(op[2])
        if kind == "E":
            gone = self.services.pop((tenant, service), None)
            for sid in gone.sids if gone is not None else ():
                self.owners.pop(sid, None)
            return
        svc = self._service(tenant, service, ops)
        if kind == "c":
            cid, tokens = str(op[3]), str(op[4]).split(" ")
            cluster = svc.clusters.get(cid)
            if cluster is None:
                while len(svc.clusters) >= self.max_clusters:
                    _, old = svc.clusters.popitem(last=False)
                    self._drop(svc, old)
                    if ops is not None:
                        ops.append(["e", tenant, service, old.id])
                cluster = svc.clusters[cid] = Cluster(cid, tokens, str(op[5]), str(op[6]))
                svc.link(cluster, range(len(tokens)))
            elif len(tokens) == len(cluster.tokens):
                changed = [i for i, (a, b) in enumerate(zip(cluster.tokens, tokens, strict=True)) if a != b]
                svc.unlink(cluster, changed)
                cluster.tokens = tokens
                svc.link(cluster, changed)
            svc.clusters.move_to_end(cid)
        elif kind == "s":
            sid, cid = str(op[3]), str(op[4])
            cluster = svc.clusters.get(cid)
            if cluster is None:
                return
            svc.sids[sid] = cid
            svc.sids.move_to_end(sid)
            cluster.sids.add(sid)
            self.owners[sid] = (tenant, service)
            while len(svc.sids) > self.max_sids:
                old_sid, old_cid = svc.sids.popitem(last=False)
                self.owners.pop(old_sid, None)
                owner = svc.clusters.get(old_cid)
                if owner is not None:
                    owner.sids.discard(old_sid)
        elif kind == "e":
            old = svc.clusters.pop(str(op[3]), None)
            if old is not None:
                self._drop(svc, old)

    def _drop(self, svc: _Service, cluster: Cluster) -> None:
        self.evictions += 1
        svc.unlink(cluster, range(len(cluster.tokens)))
        for sid in cluster.sids:
            svc.sids.pop(sid, None)
            self.owners.pop(sid, None)

    # -- persistence ---------------------------------------------------------------------------

    def snapshot(self) -> list[list[object]]:
        """The whole state as ops, oldest first (applying them to an empty miner rebuilds it)."""
        out: list[list[object]] = []
        for (tenant, service), svc in self.services.items():
            for c in svc.clusters.values():
                out.append(["c", tenant, service, c.id, c.template, c.first_ts, c.sample])
            for sid, cid in svc.sids.items():
                out.append(["s", tenant, service, sid, cid])
        return out
