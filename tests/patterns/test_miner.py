"""The miner in-process: corpus → expected templates, stable ids, bounds, journal and snapshot."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from logharbor.patterns import Miner, pattern_id, pattern_key, template_of
from logharbor.record import normalize
from logharbor.server.mining import PatternMiner
from logharbor.server.store.rows import encode_row

from .corpus import INJECTED, KNOWN, messages


def mine(miner: Miner, items: list[tuple[str, str, str]]) -> dict[str, set[str]]:
    """Feed (service, expected, message) to ``miner``; expected template → cluster ids it got."""
    got: dict[str, set[str]] = {}
    for service, expected, message in items:
        template = template_of(message)
        sid = pattern_id(pattern_key(None, service), template)
        cid, _ = miner.learn("", service, sid, template.split(), sample=message)
        got.setdefault(expected, set()).add(cid)
    return got


def templates(miner: Miner) -> dict[str, str]:
    return {c.id: c.template for _, _, c in miner.clusters()}


def test_corpus_is_mined_to_its_templates() -> None:
    miner = Miner()
    got = mine(miner, messages(random.Random(1), KNOWN, 3000))
    assert all(len(ids) == 1 for ids in got.values()), got  # one cluster per known template
    names = templates(miner)
    assert {names[next(iter(ids))] for ids in got.values()} == \
        {t for items in KNOWN.values() for t, _ in items}
    # a changed parameter, masked or not (user, table, queue names), made no new template
    assert len(names) == sum(len(items) for items in KNOWN.values())


def test_injected_templates_are_new_clusters_and_old_ids_stay() -> None:
    miner = Miner()
    before = mine(miner, messages(random.Random(2), KNOWN, 2000))
    after = mine(miner, messages(random.Random(3), KNOWN, 1000) + messages(random.Random(4), INJECTED, 200))
    for template, ids in before.items():
        assert after[template] == ids
    new = {t for items in INJECTED.values() for t, _ in items}
    assert all(len(after[t]) == 1 for t in new)
    assert {templates(miner)[next(iter(after[t]))] for t in new} == new
    assert not set().union(*(after[t] for t in new)) & set().union(*before.values())


def test_services_and_tenants_never_share_a_cluster() -> None:
    miner = Miner()
    tokens = "user <*> logged in".split()
    a, _ = miner.learn("", "web", "a" * 16, ["user", "alice", "logged", "in"])
    b, _ = miner.learn("", "db", "b" * 16, ["user", "bob", "logged", "in"])
    c, _ = miner.learn("t2", "web", "c" * 16, ["user", "carol", "logged", "in"])
    d, _ = miner.learn("", "web", "d" * 16, ["user", "dave", "logged", "in"])
    assert len({a, b, c}) == 3 and d == a
    assert templates(miner)[a] == " ".join(tokens)


def test_different_events_are_not_merged() -> None:
    miner = Miner()
    first, _ = miner.learn("", "s", "1" * 16, "order <*> placed".split())
    second, _ = miner.learn("", "s", "2" * 16, "order <*> cancelled".split())
    third, _ = miner.learn("", "s", "3" * 16, "ok".split())
    fourth, _ = miner.learn("", "s", "4" * 16, "fail".split())
    assert len({first, second, third, fourth}) == 4


def test_clusters_sids_and_services_are_bounded() -> None:
    miner = Miner(max_clusters=20, max_sids=50, max_services=3)
    rng = random.Random(5)
    words = ["".join(rng.choice("abcdefghij") for _ in range(7)) for _ in range(3000)]
    for i in range(5000):
        tokens = [rng.choice(words) for _ in range(rng.randrange(3, 7))]
        miner.learn("", f"svc{i % 5}", f"{i:016x}", tokens)
    counts = miner.counts()
    assert counts["services"] == 3
    assert all(len(s.clusters) <= 20 and len(s.sids) <= 50 for s in miner.services.values())
    assert counts["evictions"] > 0
    # the index of sids is bounded with them
    assert len(miner.owners) == counts["sids"]


def test_recently_used_clusters_survive_eviction() -> None:
    miner = Miner(max_clusters=3)
    hot, _ = miner.learn("", "s", "h" * 16, ["hot", "one"])
    for i in range(10):
        miner.learn("", "s", f"{i:016x}", [f"w{i}"])
        assert miner.resolve("h" * 16) == hot  # used every round: never the least recent
    assert hot in templates(miner)


def _rows(items: list[tuple[str, str, str]], tenant: str | None = None) -> bytes:
    rows = []
    for i, (service, _, message) in enumerate(items):
        record = {"service": service, "message": message, "timestamp": 1_800_000_000 + i}
        if tenant:
            record["tenant"] = tenant
        rows.append(encode_row(normalize(record, received_ns=1_800_000_000_000_000_000)))
    return b"\n".join(rows)


def test_process_rewrites_merged_ids_and_nothing_else(tmp_path: Path) -> None:
    pm = PatternMiner(tmp_path / "p")
    assert pm.load() == []
    items = messages(random.Random(6), KNOWN, 600)
    payload = _rows(items)
    out, made = pm.process(payload)
    pm.commit()
    before, after = payload.split(b"\n"), out.split(b"\n")
    assert len(before) == len(after) == 600
    ids: dict[str, set[str]] = {}
    for (_, expected, _), old, new in zip(items, before, after, strict=True):
        a, b = orjson.loads(old), orjson.loads(new)
        assert {k: v for k, v in a.items() if k != "pattern_id"} == {k: v for k, v in b.items() if k != "pattern_id"}
        ids.setdefault(expected, set()).add(b["pattern_id"])
    assert all(len(v) == 1 for v in ids.values())
    assert {row["template"] for row in made} >= set(ids)  # every final template was written
    again, made_again = pm.process(payload)
    assert again == out and made_again == []  # known ids: the same rows, nothing to learn


def test_restart_keeps_ids_from_journal_and_snapshot(tmp_path: Path) -> None:
    items = messages(random.Random(7), KNOWN, 200) + messages(random.Random(9), INJECTED, 200)
    first = PatternMiner(tmp_path / "p")
    first.load()
    out1, _ = first.process(_rows(items[:200]))
    first.commit()
    first.compact()  # a snapshot …
    out2, _ = first.process(_rows(items[200:]))
    first.commit()  # … and a journal line after it; then the process dies (no close)
    reborn = PatternMiner(tmp_path / "p")
    replay = reborn.load()
    # clusters made since the snapshot (the injected ones): their templates are written again
    assert {row["template"] for row in replay} == {t for items in INJECTED.values() for t, _ in items}
    assert reborn.process(_rows(items[:200]))[0] == out1
    assert reborn.process(_rows(items[200:]))[0] == out2
    assert templates(reborn.miner) == templates(first.miner)


def test_a_torn_journal_line_is_dropped(tmp_path: Path) -> None:
    pm = PatternMiner(tmp_path / "p")
    pm.load()
    pm.process(_rows(messages(random.Random(8), KNOWN, 100)))
    pm.commit()
    good = pm.journal_path.read_bytes()
    with open(pm.journal_path, "ab") as fh:
        fh.write(b'{"g":99,"ops":[["c","","web","ab')  # the crash cut this write short
    reborn = PatternMiner(tmp_path / "p")
    reborn.load()
    assert reborn.journal_path.read_bytes() == good
    assert templates(reborn.miner) == templates(pm.miner)
    assert reborn.generation == pm.generation


@pytest.mark.parametrize("tenant", [None, "acme"])
def test_ids_are_per_tenant(tenant: str | None) -> None:
    row = orjson.loads(_rows([("web", "", "user alice logged in")], tenant))
    assert row["pattern_id"] == pattern_id(pattern_key(tenant, "web"), "user alice logged in")


def test_a_row_without_a_message_after_a_new_template(tmp_path: Path) -> None:
    """Regression: the row learned from was read up to the next row *with* an id, so a message-less
    row right after it (no id) broke the decoding and the template was never learned."""
    pm = PatternMiner(tmp_path / "p")
    pm.load()
    rows = [encode_row(normalize({"service": "s", "message": "user alice logged in"}, received_ns=1_800_000_000_000_000_000)),
            encode_row(normalize({"service": "s", "level": "info"}, received_ns=1_800_000_000_000_000_000))]
    assert b"pattern_id" not in rows[1]
    out, made = pm.process(b"\n".join(rows))
    assert out == b"\n".join(rows) and [m["template"] for m in made] == ["user alice logged in"]
    assert pm.miner.resolve(orjson.loads(rows[0])["pattern_id"]) is not None


def test_state_on_disk_is_sealed_with_the_store_key(tmp_path: Path) -> None:
    from logharbor.sealing import Sealer, generate_key_file, load_keys

    generate_key_file(tmp_path / "keys", 1)
    sealer = Sealer(load_keys(tmp_path / "keys"))
    pm = PatternMiner(tmp_path / "p", sealer=sealer)
    pm.load()
    out, _ = pm.process(_rows([("vault", "", "PLANTED secret 42 for alice"), ("vault", "", "PLANTED secret 7 for bob")]))
    pm.commit()
    pm.process(_rows([("vault", "", "PLANTED other 9")]))
    pm.commit()
    pm.compact()
    pm.process(_rows([("vault", "", "PLANTED third thing")]))
    pm.commit()
    for path in (pm.snapshot_path, pm.journal_path):
        assert path.stat().st_size > 0
        assert b"PLANTED" not in path.read_bytes() and b"vault" not in path.read_bytes()
    reborn = PatternMiner(tmp_path / "p", sealer=sealer)
    reborn.load()
    assert templates(reborn.miner) == templates(pm.miner) and len(templates(pm.miner)) == 3
    assert reborn.process(_rows([("vault", "", "PLANTED secret 42 for alice")]))[0] == out.split(b"\n")[0]


def test_a_journal_cut_just_before_its_newline_stays_readable(tmp_path: Path) -> None:
    pm = PatternMiner(tmp_path / "p")
    pm.load()
    pm.process(_rows(messages(random.Random(10), KNOWN, 50)))
    pm.commit()
    whole = pm.journal_path.read_bytes()
    pm.journal_path.write_bytes(whole[:-1])  # the entry is there, its newline is not
    second = PatternMiner(tmp_path / "p")
    second.load()
    second.process(_rows(messages(random.Random(11), INJECTED, 10)))
    second.commit()
    third = PatternMiner(tmp_path / "p")
    third.load()
    assert templates(third.miner) == templates(second.miner) and len(templates(third.miner)) == 8
