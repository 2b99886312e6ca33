"""``explain`` under a scoped key says nothing of another tenant, even where it reads tables other
than the logs (the patterns table: templates, samples, first seen): a stored id that another
tenant's patterns also carry (ids are 64-bit CRCs, which a writer can forge) brings back only what
the key's own scope holds."""

from __future__ import annotations

from logharbor.record import normalize
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import PATTERN_PREFIX, encode_row
from logharbor.server.features.explain import ExplainRequest, explain
from logharbor.server.scopes import Scope

from .data import WINDOW_NS

START = 1_793_534_400 * 10**9 + 90 * 86400 * 10**9  # a range no other explain test loads


def _rows(records: list[dict], pattern: bytes | None = None) -> bytes:  # type: ignore[type-arg]
    out = []
    for r in records:
        row = encode_row(normalize(r, received_ns=START))
        if pattern is not None:  # the id another tenant's template has (as a forged message would get)
            assert row.startswith(PATTERN_PREFIX)
            row = PATTERN_PREFIX + pattern + row[len(PATTERN_PREFIX) + 16:]
        out.append(row)
    return b"\n".join(out)


def test_a_scoped_explain_never_shows_another_tenants_pattern(explain_store: EmbeddedStore) -> None:
    globex = [{"timestamp": START + i * 10**9, "tenant": "globex", "service": "pay",
               "message": "globex card 4111-SECRET charged"} for i in range(100)]
    explain_store.insert(_rows(globex), dedup_token="scope-globex")
    stored = explain_store.query(
        "SELECT pattern_id FROM logs WHERE tenant = 'globex' AND timestamp >= fromUnixTimestamp64Nano("
        "{t:Int64}, 'UTC') LIMIT 1", {"t": START})[0]["pattern_id"]
    acme = [{"timestamp": START + WINDOW_NS + i * 10**9, "tenant": "acme", "service": "pay",
             "level": "error", "message": f"acme forged {i}"} for i in range(40)]
    explain_store.insert(_rows(acme, stored.encode()), dedup_token="scope-acme")
    before = [{"timestamp": START + i * 10**9, "tenant": "acme", "service": "pay", "level": "info",
               "message": "acme order placed"} for i in range(40)]
    explain_store.insert(_rows(before), dedup_token="scope-acme-before")
    scope = Scope.of("acme", None).sql()
    answer = explain(explain_store, ExplainRequest(q="*", focus=(START + WINDOW_NS, START + 2 * WINDOW_NS)),
                     scope=scope, settings={})
    assert answer["focus"]["count"] == 40
    text = repr(answer)
    assert "globex" not in text and "SECRET" not in text, answer["patterns"]
    assert [p["status"] for p in answer["patterns"]] == ["new"], answer["patterns"]
    assert answer["patterns"][0]["template"].startswith("acme forged"), answer["patterns"]
