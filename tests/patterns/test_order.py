"""Issue 27: the same messages in any order, in batches of any size, give the same partition and
the same ``pattern_id``s (hypothesis builds the corpora, the orders and the batch sizes)."""

from __future__ import annotations

import itertools
import random
from pathlib import Path
from tempfile import TemporaryDirectory

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import examples

from logharbor.record import normalize
from logharbor.server.engine.mining import PatternMiner
from logharbor.server.engine.store.rows import encode_row

WORDS = ["user", "order", "payment", "cache", "disk", "job", "session", "request", "Failed", "Accepted",
         "GET", "POST", "opened", "closed", "for", "from", "to", "in", "on", "at", "with", "queue", "VM",
         "Resumed", "Paused", "SOCKS5", "HTTPS", "ssh2", "timed", "out", "done", "started", "stopped"]
NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"]


def _slot(kind: int, rng: random.Random) -> str:
    """One parameter of a message: a number, an address, a name, an id or a key=value."""
    if kind == 0:
        return str(rng.randrange(10**6))
    if kind == 1:
        return ".".join(str(rng.randrange(256)) for _ in range(4))
    if kind == 2:
        return rng.choice(NAMES)
    if kind == 3:
        return f"{rng.getrandbits(64):016x}"
    return f"uid={rng.randrange(100)}"


@st.composite
def corpora(draw: st.DrawFn) -> list[tuple[str, str]]:
    """(service, message) lists drawn from a few shapes: fixed words with parameter slots between."""
    shapes = draw(st.lists(st.tuples(st.sampled_from(["api", "db"]),
                                     st.lists(st.one_of(st.sampled_from(WORDS), st.integers(0, 4)),
                                              min_size=1, max_size=7)),
                           min_size=1, max_size=6))
    seed = draw(st.integers(0, 2**32 - 1))
    count = draw(st.integers(1, 120))
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        service, parts = shapes[rng.randrange(len(shapes))]
        out.append((service, " ".join(p if isinstance(p, str) else _slot(p, rng) for p in parts)))
    return out


def _mine(items: list[tuple[str, str]], cuts: list[int], folder: Path) -> tuple[dict, list[str]]:  # type: ignore[type-arg]
    """Mine ``items`` in batches cut at ``cuts`` (as the batcher would); (groups, each item's id)."""
    pm = PatternMiner(folder)
    pm.load()
    rows = [encode_row(normalize({"service": s, "message": m}, received_ns=1_800_000_000_000_000_000))
            for s, m in items]
    bounds = [0, *sorted({c % (len(rows) + 1) for c in cuts}), len(rows)]
    for start, end in itertools.pairwise(bounds):
        if end > start:
            pm.process(b"\n".join(rows[start:end]))
            pm.commit()
    ids = []
    for (service, _), row in zip(items, rows, strict=True):
        stored = orjson.loads(row)["pattern_id"]
        ids.append(pm.miner.group_of("", service, stored) or stored)
    groups = pm.miner.groups()
    pm.close()
    return groups, ids


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(corpus=corpora(), order=st.randoms(use_true_random=False),
       cuts=st.lists(st.integers(0, 200), max_size=5))
def test_any_order_and_any_batches_give_the_same_groups_and_ids(corpus: list[tuple[str, str]],
                                                                 order: random.Random, cuts: list[int]) -> None:
    with TemporaryDirectory() as tmp:
        groups, ids = _mine(corpus, [], Path(tmp) / "a")
        permutation = list(range(len(corpus)))
        order.shuffle(permutation)
        shuffled = [corpus[i] for i in permutation]
        groups2, ids2 = _mine(shuffled, cuts, Path(tmp) / "b")
    assert groups2 == groups
    assert [ids[i] for i in permutation] == ids2  # each message: the same pattern_id
