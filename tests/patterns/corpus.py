"""A generated corpus with known templates: parameters the masking catches (numbers, ids, IPs) and
words it cannot (user, table and queue names), plus templates injected later (issue 15 tests)."""

from __future__ import annotations

import random

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
TABLES = ["orders", "users", "payments", "carts", "sessions"]
PROVIDERS = ["stripe", "adyen", "paypal", "braintree", "klarna"]
QUEUES = ["emails", "invoices", "thumbnails", "reports", "webhooks"]  # five: more than a few words, a parameter

#: service → [(template the miner must end with, a function making one message)]
KNOWN: dict[str, list[tuple[str, object]]] = {
    "web": [
        ("user <*> logged in from <ip>",
         lambda r: f"user {r.choice(USERS)} logged in from 10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(256)}"),
        ("GET <path> took <num>ms",
         lambda r: f"GET /api/items/{r.randrange(10**6)} took {r.randrange(2000)}ms"),
        ("session <uuid> expired for <*>",
         lambda r: f"session {r.getrandbits(32):08x}-{r.getrandbits(16):04x}-4{r.getrandbits(12):03x}-"
                   f"8{r.getrandbits(12):03x}-{r.getrandbits(48):012x} expired for {r.choice(USERS)}"),
    ],
    "db": [
        ("query on table <*> took <num>ms returning <num> rows",
         lambda r: f"query on table {r.choice(TABLES)} took {r.randrange(900)}ms returning {r.randrange(10**4)} rows"),
        ("connection pool exhausted",
         lambda r: "connection pool exhausted"),
    ],
    "worker": [
        ("job <*> from queue <*> finished in <num>s",
         lambda r: f"job j-{r.randrange(10**6)} from queue {r.choice(QUEUES)} finished in {r.random() * 9:.2f}s"),
    ],
}

#: templates that only appear after the injection time
INJECTED: dict[str, list[tuple[str, object]]] = {
    "web": [("payment provider <*> timed out after <num>ms",
             lambda r: f"payment provider {r.choice(PROVIDERS)} timed out after {r.randrange(9000)}ms")],
    "worker": [("disk <path> is <num>% full",
                lambda r: f"disk /var/lib/data{r.randrange(4)}/vol is {r.randrange(90, 100)}% full")],
}


def messages(rng: random.Random, table: dict[str, list[tuple[str, object]]], n: int
             ) -> list[tuple[str, str, str]]:
    """``n`` (service, expected template, message) drawn evenly from ``table``."""
    flat = [(service, template, make) for service, items in table.items() for template, make in items]
    out = []
    for i in range(n):
        service, template, make = flat[i % len(flat)]
        out.append((service, template, make(rng)))  # type: ignore[operator]
    rng.shuffle(out)
    return out
