"""The miner in-process: corpus → expected templates, ids from templates, bounds, journal and snapshot."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest

from logharbor.miner import Miner
from logharbor.patterns import pattern_id, pattern_key, template_of
from logharbor.record import normalize
from logharbor.server.engine.mining import PatternMiner
from logharbor.server.engine.store.rows import encode_row

from .corpus import INJECTED, KNOWN, messages


def sid_of(service: str, message: str, tenant: str = "") -> str:
    return pattern_id(pattern_key(tenant, service), template_of(message))


def mine(miner: Miner, items: list[tuple[str, str, str]]) -> dict[str, set[str]]:
    """Feed (service, expected, message) to ``miner``; expected template → group ids at the end."""
    sids = []
    for service, expected, message in items:
        sid = sid_of(service, message)
        miner.learn("", service, sid, template_of(message).split(), sample=message)
        sids.append((service, expected, sid))
    got: dict[str, set[str]] = {}
    for service, expected, sid in sids:
        got.setdefault(expected, set()).add(miner.group_of("", service, sid) or "?")
    return got


def templates(miner: Miner) -> dict[str, str]:
    return {gid: template for (_, _, gid), template in miner.groups().items()}


def test_corpus_is_mined_to_its_templates() -> None:
    miner = Miner()
    got = mine(miner, messages(random.Random(1), KNOWN, 3000))
    assert all(len(ids) == 1 for ids in got.values()), got  # one group per known template
    names = templates(miner)
    assert {names[next(iter(ids))] for ids in got.values()} == \
        {t for items in KNOWN.values() for t, _ in items}
    # a changed parameter, masked or not (user, table, queue names), made no new template
    assert len(names) == sum(len(items) for items in KNOWN.values())


def test_a_group_id_is_the_id_of_its_template() -> None:
    miner = Miner()
    mine(miner, messages(random.Random(2), KNOWN, 600))
    for (tenant, service, gid), template in miner.groups().items():
        assert gid == pattern_id(pattern_key(tenant, service), template)


def test_injected_templates_are_new_groups_and_old_ids_stay() -> None:
    miner = Miner()
    before = mine(miner, messages(random.Random(2), KNOWN, 2000))
    after = mine(miner, messages(random.Random(3), KNOWN, 1000) + messages(random.Random(4), INJECTED, 200))
    for template, ids in before.items():
        assert after[template] == ids
    new = {t for items in INJECTED.values() for t, _ in items}
    assert all(len(after[t]) == 1 for t in new)
    assert {templates(miner)[next(iter(after[t]))] for t in new} == new
    assert not set().union(*(after[t] for t in new)) & set().union(*before.values())


def test_services_and_tenants_never_share_a_group() -> None:
    miner = Miner()
    users = ["alice", "bob", "carol", "dave", "erin", "frank"]
    for tenant, service in (("", "web"), ("", "db"), ("t2", "web")):
        for user in users:
            message = f"user {user} logged in"
            miner.learn(tenant, service, sid_of(service, message, tenant), message.split())
    groups = miner.groups()
    assert len(groups) == 3 and set(groups.values()) == {"user <*> logged in"}


def test_different_events_are_not_merged() -> None:
    miner = Miner()
    ids = set()
    for message in ("order o-1 placed", "order o-2 cancelled", "ok", "fail"):
        sid = sid_of("s", message)
        miner.learn("", "s", sid, template_of(message).split())
        ids.add(sid)
    assert {miner.group_of("", "s", s) for s in ids} == ids  # four groups of one: ids are the sids


# -- the failure shapes of issue 27, with messages of our own ------------------------------------

def groups_of(lines: list[str], service: str = "svc") -> dict[str, str]:
    """message → the template of its group, everything mined as the batcher would."""
    miner = Miner()
    for line in lines:
        miner.add("", service, sid_of(service, line), template_of(line).split())
    miner.regroup()
    names = templates(miner)
    return {line: names[miner.group_of("", service, sid_of(service, line)) or ""] for line in lines}


def test_a_decisive_first_word_stays_when_one_side_is_rare() -> None:
    """'Accepted' once among many 'Failed' (same shape otherwise): the one success must not vanish."""
    rng = random.Random(5)
    lines = [f"Failed password for {u} from 10.1.{rng.randrange(256)}.{rng.randrange(256)} port "
             f"{rng.randrange(1024, 65535)} ssh2" for u in ["root", "admin", "oracle", "test", "guest", "pi"] * 30]
    lines.append("Accepted password for deploy from 10.9.9.9 port 50022 ssh2")
    got = groups_of(lines)
    assert got[lines[-1]] == "Accepted password for deploy from <ip> port <num> ssh2"
    assert {got[line] for line in lines[:-1]} == {"Failed password for <*> from <ip> port <num> ssh2"}


def test_request_methods_in_quotes_stay_apart() -> None:
    lines = [f'10.0.0.{i} "{verb} /v2/tenants/{i:032x}/servers HTTP/1.1" status: {code} len: {i * 7} time: 0.{i}'
             for i in range(1, 40) for verb, code in (("GET", 200), ("POST", 202), ("DELETE", 204))]
    got = groups_of(lines)
    for verb in ("GET", "POST", "DELETE"):
        assert {got[line] for line in lines if f'"{verb} ' in line} == \
            {f'<ip> "{verb} <path> HTTP/<num>" status: <num> len: <num> time: <num>'}


def test_status_words_stay_apart() -> None:
    states = ["Resumed", "Started", "Paused", "Stopped"]
    lines = [f"[instance: {random.Random(i).getrandbits(128):032x}] VM {s} (Lifecycle Event)"
             for i in range(30) for s in states]
    got = groups_of(lines)
    assert len(set(got.values())) == 4
    assert {got[line] for line in lines if " Paused " in line} == {"[instance: <hex>] VM Paused (Lifecycle Event)"}


def test_identifiers_with_digits_are_names() -> None:
    lines = [f"host{i}.example.org:443 open through proxy gw.example.org:{8000 + i} {kind}"
             for i in range(50) for kind in ("HTTPS", "SOCKS5")]
    got = groups_of(lines)
    assert {got[line] for line in lines if line.endswith("SOCKS5")} == \
        {"<*>:<num> open through proxy <*>:<num> SOCKS5"}
    assert {got[line] for line in lines if line.endswith("HTTPS")} == \
        {"<*>:<num> open through proxy <*>:<num> HTTPS"}


def test_digit_variants_of_one_name_are_a_parameter() -> None:
    got = groups_of([f"Processor [CPU{i}] (supports C1)" for i in range(4)])
    assert set(got.values()) == {"Processor [<*>] (supports C1)"}


def test_events_differing_in_two_words_are_four_groups() -> None:
    """The merge step must not undo what masking told apart (two words, two values each)."""
    lines = [f"{a} TrustedInstaller {b} at step {i}" for a in ("Starting", "Ending")
             for b in ("initialization.", "finalization.") for i in range(20)]
    assert len(set(groups_of(lines).values())) == 4


def test_many_words_in_one_place_are_a_parameter() -> None:
    users = ["cyrus", "news", "test", "root", "mail", "backup", "www"]
    lines = [f"session {kind} for user {u}" for u in users for kind in ("opened", "closed")]
    got = groups_of(lines)
    assert set(got.values()) == {"session opened for user <*>", "session closed for user <*>"}


def test_a_restated_size_does_not_split_an_event() -> None:
    lines = ["a.example:443 close, 1190 bytes sent, 1671 bytes received, lifetime 00:02",
             "a.example:443 close, 1190 bytes (1.16 KB) sent, 1671 bytes (1.63 KB) received, lifetime <1 sec",
             "b.example:80 close, 12 bytes sent, 7 bytes (1.1 KB) received, lifetime 01:10"]
    assert len(set(groups_of(lines).values())) == 1


def test_an_id_that_generalizes_is_an_alias_of_the_new_one() -> None:
    miner = Miner()
    first = [f"job j-{i} from queue {q} finished" for i, q in enumerate(["a", "b", "c"])]
    for line in first:
        miner.learn("", "w", sid_of("w", line), template_of(line).split())
    old = {miner.group_of("", "w", sid_of("w", line)) for line in first}
    assert len(old) == 3  # three words: three events, for now
    more = [f"job j-{i} from queue {q} finished" for i, q in enumerate(["d", "e", "f"])]
    ops_rows = [miner.learn("", "w", sid_of("w", line), template_of(line).split()) for line in more]
    new = miner.group_of("", "w", sid_of("w", more[0]))
    assert templates(miner)[new] == "job <*> from queue <*> finished"
    for gid in old:  # every former id now names the new group
        assert miner.group_of("", "w", gid) == new
    rows = [row for _, _, changed in ops_rows for row in changed]
    assert {row[2] for row in rows} >= {sid_of("w", line) for line in first + more}


@pytest.mark.parametrize("seed", range(3))
def test_the_same_messages_in_any_order_give_the_same_groups_and_ids(seed: int) -> None:
    items = messages(random.Random(10), KNOWN, 800) + messages(random.Random(11), INJECTED, 100)
    base = Miner()
    mine(base, items)
    shuffled = items[:]
    random.Random(seed).shuffle(shuffled)
    other = Miner()
    mine(other, shuffled)
    assert base.groups() == other.groups()
    for service, _, message in items:
        sid = sid_of(service, message)
        assert base.group_of("", service, sid) == other.group_of("", service, sid)


def test_memory_is_bounded() -> None:
    miner = Miner(max_sids=50, max_services=3)
    rng = random.Random(5)
    words = ["".join(rng.choice("abcdefghij") for _ in range(7)) for _ in range(3000)]
    for i in range(3000):
        tokens = [rng.choice(words) for _ in range(rng.randrange(3, 7))]
        miner.learn("", f"svc{i % 5}", f"{i:016x}", tokens)
    counts = miner.counts()
    assert counts["services"] == 3 and counts["evictions"] > 0
    assert all(len(s.members) <= 50 and len(s.aliases) <= 50 for s in miner.services.values())
    assert len(miner.owners) == counts["sids"] == sum(len(s.members) for s in miner.services.values())
    for svc in miner.services.values():  # what is indexed is what is kept
        assert sum(len(b.members) for b in svc.buckets.values()) == len(svc.members)
        assert set(svc.groups) == {m.gid for m in svc.members.values()}


def test_recently_used_templates_survive_eviction() -> None:
    miner = Miner(max_sids=3)
    hot, _, _ = miner.learn("", "s", "h" * 16, ["hot", "one"])
    for i in range(10):
        miner.learn("", "s", f"{i:016x}", [f"w{i}"])
        assert miner.resolve("h" * 16) == hot  # used every round: never the least recent


# -- the batcher's side: rows, journal, snapshot -------------------------------------------------

def _rows(items: list[tuple[str, str, str]], tenant: str | None = None) -> bytes:
    rows = []
    for i, (service, _, message) in enumerate(items):
        record = {"service": service, "message": message, "timestamp": 1_800_000_000 + i}
        if tenant:
            record["tenant"] = tenant
        rows.append(encode_row(normalize(record, received_ns=1_800_000_000_000_000_000)))
    return b"\n".join(rows)


def test_process_leaves_rows_alone_and_assigns_every_id(tmp_path: Path) -> None:
    pm = PatternMiner(tmp_path / "p")
    assert pm.load() == []
    items = messages(random.Random(6), KNOWN, 600)
    payload = _rows(items)
    out, made = pm.process(payload)
    pm.commit()
    assert out == payload  # rows keep the id of their masked template
    stored = {orjson.loads(line)["pattern_id"] for line in payload.split(b"\n")}
    assigned = {row["pattern_id"]: row for row in made}
    assert set(assigned) >= stored  # every stored id got its group, written before the rows
    by_template: dict[str, set[str]] = {}
    for (_, expected, _), line in zip(items, payload.split(b"\n"), strict=True):
        row = assigned[orjson.loads(line)["pattern_id"]]
        assert row["template"] == expected
        by_template.setdefault(expected, set()).add(row["group_id"])
    assert all(len(ids) == 1 for ids in by_template.values())
    again, made_again = pm.process(payload)
    assert again == payload and made_again == []  # known ids: nothing to learn, nothing to write


@pytest.mark.parametrize("cut", [1, 7, 50])
def test_batches_of_any_size_give_the_same_groups(tmp_path: Path, cut: int) -> None:
    items = messages(random.Random(12), KNOWN, 300) + messages(random.Random(13), INJECTED, 40)
    whole = PatternMiner(tmp_path / "whole")
    whole.load()
    whole.process(_rows(items))
    pieces = PatternMiner(tmp_path / f"pieces{cut}")
    pieces.load()
    rng = random.Random(cut)
    shuffled = items[:]
    rng.shuffle(shuffled)
    for start in range(0, len(shuffled), cut):
        pieces.process(_rows(shuffled[start:start + cut]))
    assert whole.miner.groups() == pieces.miner.groups()


def test_restart_keeps_groups_from_journal_and_snapshot(tmp_path: Path) -> None:
    items = messages(random.Random(7), KNOWN, 200) + messages(random.Random(9), INJECTED, 200)
    first = PatternMiner(tmp_path / "p")
    first.load()
    first.process(_rows(items[:200]))
    first.commit()
    first.compact()  # a snapshot …
    first.process(_rows(items[200:]))
    first.commit()  # … and a journal line after it; then the process dies (no close)
    reborn = PatternMiner(tmp_path / "p")
    replay = reborn.load()
    # assignments made since the snapshot (the injected templates): written again
    assert {row["template"] for row in replay} == {t for items in INJECTED.values() for t, _ in items}
    assert reborn.miner.groups() == first.miner.groups()
    assert reborn.process(_rows(items))[1] == []  # nothing new to learn


def test_a_torn_journal_line_is_dropped(tmp_path: Path) -> None:
    pm = PatternMiner(tmp_path / "p")
    pm.load()
    pm.process(_rows(messages(random.Random(8), KNOWN, 100)))
    pm.commit()
    good = pm.journal_path.read_bytes()
    with open(pm.journal_path, "ab") as fh:
        fh.write(b'{"g":99,"ops":[["a","","web","ab')  # the crash cut this write short
    reborn = PatternMiner(tmp_path / "p")
    reborn.load()
    assert reborn.journal_path.read_bytes() == good
    assert reborn.miner.groups() == pm.miner.groups()
    assert reborn.generation == pm.generation


def test_state_of_the_first_release_is_set_aside(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / "miner.json").write_bytes(orjson.dumps(
        {"version": 1, "generation": 3, "ops": [["c", "", "web", "ab" * 8, "user <*> in", "", "user a in"]]}))
    (folder / "journal.ndjson").write_bytes(b'{"g":4,"ops":[["s","","web","cd","abababababababab"]]}\n')
    pm = PatternMiner(folder)
    assert pm.load() == [] and pm.legacy
    assert (folder / "v1" / "miner.json").exists() and pm.miner.counts()["sids"] == 0


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
    pm.process(_rows([("vault", "", "PLANTED secret 42 for alice"), ("vault", "", "PLANTED secret 7 for alice")]))
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
    assert reborn.miner.groups() == pm.miner.groups() and len(pm.miner.groups()) == 3


def test_a_journal_cut_just_before_its_newline_stays_readable(tmp_path: Path) -> None:
    pm = PatternMiner(tmp_path / "p")
    pm.load()
    pm.process(_rows(messages(random.Random(10), KNOWN, 50)))
    pm.commit()
    whole = pm.journal_path.read_bytes()
    pm.journal_path.write_bytes(whole[:-1])  # the entry is there, its newline is not
    second = PatternMiner(tmp_path / "p")
    second.load()
    second.process(_rows(messages(random.Random(11), INJECTED, 40)))
    second.commit()
    third = PatternMiner(tmp_path / "p")
    third.load()
    assert third.miner.groups() == second.miner.groups() and len(third.miner.groups()) == 8


def test_an_old_id_is_adopted_into_the_group_of_its_message(tmp_path: Path) -> None:
    """Upgrade: an id the first release stored follows the group its sample message falls in now."""
    pm = PatternMiner(tmp_path / "p")
    pm.load()
    pm.process(_rows([("web", "", f"user {u} logged in from 10.0.0.{i}")
                      for i, u in enumerate(["ann", "bo", "cy", "di", "ed"])]))
    pm.commit()
    rows = pm.adopt("", "web", "0123456789abcdef", "user zed logged in from 10.9.9.9")
    pm.commit()
    group = pm.miner.group_of("", "web", "0123456789abcdef")
    assert group is not None and templates(pm.miner)[group] == "user <*> logged in from <ip>"
    assert {"0123456789abcdef"} <= {row["pattern_id"] for row in rows if row["group_id"] == group}
    reborn = PatternMiner(tmp_path / "p")
    reborn.load()
    assert reborn.miner.group_of("", "web", "0123456789abcdef") == group  # the alias is journaled


def _three_lines(folder: Path, sealer: object = None) -> tuple[PatternMiner, list[list[tuple[str, str, str]]]]:
    """A journal of three lines, one per batch, each batch of a service of its own."""
    pm = PatternMiner(folder, sealer=sealer)  # type: ignore[arg-type]
    pm.load()
    batches = []
    for seed, service in ((20, "first"), (21, "middle"), (22, "last")):
        items = [(service, t, m) for _, t, m in messages(random.Random(seed), KNOWN, 60)]
        pm.process(_rows(items))
        pm.commit()
        batches.append(items)
    pm.close()
    assert pm.journal_path.read_bytes().count(b"\n") == 3
    return pm, batches


def _damage(line: bytes, how: str) -> bytes:
    if how == "bytes":
        return line[:10] + b"\x00\xff garbage \x00" + line[25:]  # a bad block in the middle
    if how == "cut":
        return line[: len(line) // 2]  # half a line, then the next whole line
    if how == "op":
        return orjson.dumps({"g": orjson.loads(line)["g"], "ops": [["a", "", "middle"]]})  # too short
    return orjson.dumps({"g": orjson.loads(line)["g"], "ops": "not a list"})


@pytest.mark.parametrize("how", ["bytes", "cut", "op", "shape"])
def test_a_damaged_journal_line_is_skipped_and_the_lines_after_it_are_kept(
        tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture) -> None:
    """Trust (issue #27): one bad line in the middle of the journal lost every line after it (the
    whole state was set aside). Now that line alone is skipped, counted, copied aside and logged."""
    pm, (first, middle, last) = _three_lines(tmp_path / "p")
    lines = pm.journal_path.read_bytes().split(b"\n")
    lines[1] = _damage(lines[1], how)
    pm.journal_path.write_bytes(b"\n".join(lines))
    reborn = PatternMiner(tmp_path / "p")
    with caplog.at_level("ERROR", logger="logharbor.server.engine.mining"):
        reborn.load()
    assert reborn.damaged_lines == 1
    assert reborn.gauges()["logharbor_pattern_journal_damaged_lines"] == 1.0
    assert any("line 2" in r.getMessage() and str(reborn.journal_path) in r.getMessage() for r in caplog.records)
    copies = list((tmp_path / "p").glob("damaged-*/journal-lines.ndjson"))
    assert len(copies) == 1 and copies[0].read_bytes() == lines[1] + b"\n"
    # the first and the last line are kept: the same groups as a miner that saw only those batches
    expected = PatternMiner(tmp_path / "expected")
    expected.load()
    for items in (first, last):
        expected.process(_rows(items))
    want = expected.miner.groups()
    assert want and reborn.miner.groups() == want
    assert {service for _, service, _ in reborn.miner.groups()} == {"first", "last"}
    # folded into a snapshot: the next start reads no damage, and the same state
    assert reborn.journal_path.read_bytes() == b""
    reborn.close()
    again = PatternMiner(tmp_path / "p")
    again.load()
    assert again.damaged_lines == 0 and again.miner.groups() == want
    # what the skipped line taught is learned again from its next rows
    again.process(_rows(middle))
    again.commit()
    assert again.miner.groups() == pm.miner.groups()


def test_a_damaged_sealed_journal_line_is_skipped(tmp_path: Path) -> None:
    from logharbor.sealing import Sealer, generate_key_file, load_keys

    generate_key_file(tmp_path / "keys", 1)
    sealer = Sealer(load_keys(tmp_path / "keys"))
    pm, _ = _three_lines(tmp_path / "p", sealer)
    lines = pm.journal_path.read_bytes().split(b"\n")
    lines[1] = lines[1][:40] + (b"A" if lines[1][40:41] != b"A" else b"B") + lines[1][41:]  # one bit-ish flip
    pm.journal_path.write_bytes(b"\n".join(lines))
    reborn = PatternMiner(tmp_path / "p", sealer=sealer)
    reborn.load()
    assert reborn.damaged_lines == 1
    assert {service for _, service, _ in reborn.miner.groups()} == {"first", "last"}
    assert b"middle" not in b"".join(p.read_bytes() for p in (tmp_path / "p").rglob("*") if p.is_file())
