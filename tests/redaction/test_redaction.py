"""The masking table: every sensitive form is masked, and the near-misses beside it are not."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import examples

from logharbor.redaction import DEFAULT_RULES, RULES, Redactor, Rule, luhn_valid

# (text, expected) — the whole output is compared, so a rule that eats a neighbour fails too.
MASKED = [
    ("mail alice.smith+tag@example.co.uk now", "mail [EMAIL] now"),
    ("from=<bob@mail.example.com>", "from=<[EMAIL]>"),
    ("visa 4111111111111111 ok", "visa [CARD] ok"),
    ("card: 4111 1111 1111 1111.", "card: [CARD]."),
    ("card=5500-0000-0000-0004;", "card=[CARD];"),
    ("amex 3782 822463 10005 paid", "amex [CARD] paid"),
    ("amex 378282246310005", "amex [CARD]"),
    ("Authorization: Bearer abcDEF123456.xyz-_~+/=", "Authorization: Bearer [REDACTED]"),
    ("authorization: basic dXNlcjpwYXNzd29yZA==", "authorization: basic [REDACTED]"),
    ("Authorization: Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b", "Authorization: Token [REDACTED]"),
    ("auth: Bearer abcdefghijklmnopqrstuvwxyz", "auth: Bearer [REDACTED]"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
     "jwt [JWT] end"),
    ("key AKIAIOSFODNN7EXAMPLE used", "key [AWS_KEY] used"),
    ("sts ASIAY34FZKBOKMUTVV7A", "sts [AWS_KEY]"),
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     "aws_secret_access_key = [REDACTED]"),
    ('"AWS_SECRET_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', '"AWS_SECRET_KEY": "[REDACTED]"'),
    ("GET /login?user=x&password=hunter2&next=/", "GET /login?user=x&password=[REDACTED]&next=/"),
    ("db_password: s3cr3t!", "db_password: [REDACTED]"),
    ("api_key=abc123 token=zzz", "api_key=[REDACTED] token=[REDACTED]"),
    ("connect postgres://app:pa55w0rd@db.internal:5432/x", "connect postgres://[REDACTED]@db.internal:5432/x"),
]
CLEAN = [
    "order 1234567812345678 shipped",         # 16 digits failing Luhn
    "epoch 1732500000123456789 ns",           # 19 digits, starts with 1 (no card starts so)
    "card 4111111111111112",                  # one digit off a test card: Luhn fails
    "uuid 4111-1111-1111-1111-111111111111",  # too many groups: part of an id
    "user@localhost wrote",                   # no dotted domain
    "max_tokens=512 tokens: 20",              # names that end differently
    "the bearer of bad news",                 # 'bearer' + word shorter than a token
    "AKIAIOSFODNN7EXAMPL is short",           # 19 chars
    "eyJhbGciOiJIUzI1NiJ9 alone",             # a JWT header without the rest
    "host 10.0.1.5 version 1.4.2.3.4",        # IPs are opt-in
    "at 12:34:56 mac aa:bb:cc:dd:ee:ff",      # times and MACs
    "password reset requested",               # the word, no value
    "token validation failed for the Basic plan",  # English after the scheme words
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_masks_every_form(text: str, expected: str) -> None:
    assert Redactor().redact_text(text) == expected


@pytest.mark.parametrize("text", CLEAN)
def test_leaves_near_misses(text: str) -> None:
    out = Redactor().redact_text(text)
    assert out == text
    assert out is text  # no copy for a clean line


@pytest.mark.parametrize(("text", "expected"), [
    ("client 203.0.113.7 via 10.0.0.1:8080", "client [IPV4] via [IPV4]:8080"),
    ("v6 2001:db8::8a2e:370:7334 and [::1]:443", "v6 [IPV6] and [[IPV6]]:443"),
    ("mapped ::ffff:192.0.2.128 done", "mapped [IPV6] done"),
    ("fe80::1ff:fe23:4567:890a, 256.1.1.1", "[IPV6], 256.1.1.1"),
    ("at 12:34:56 version 1.4.2.3.4", "at 12:34:56 version 1.4.2.3.4"),
])
def test_ip_rules_are_opt_in(text: str, expected: str) -> None:
    redactor = Redactor.from_config({"ip": True})
    assert redactor.redact_text(text) == expected


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert not luhn_valid("1234567812345678")


def test_record_masks_sensitive_fields_and_content_only() -> None:
    record = {
        "timestamp": "2026-11-01T12:34:56.789123Z", "level": "INFO", "service": "checkout",
        "message": "charged alice@example.com", "trace_id": "5759e988bd862e3fe1be46a994272793",
        "password": "hunter2", "Authorization": "Bearer abcdefghijk", "user_token": 123456,
        "max_tokens": 512, "order_id": "o-42", "ok": True, "amount": 12.5,
        "headers": {"X-Api-Key": "k-1", "Accept": "text/html", "Cookie": ""},
        "cards": ["4111111111111111", "n/a"],
        "http": {"method": "POST", "path": "/pay?token=abc", "status": 200},
    }
    out = Redactor().redact_record(record)
    assert out is not record
    assert record["password"] == "hunter2"  # input untouched
    assert out == {
        **record,
        "message": "charged [EMAIL]", "password": "[REDACTED]", "Authorization": "[REDACTED]",
        "user_token": "[REDACTED]",
        "headers": {"X-Api-Key": "[REDACTED]", "Accept": "text/html", "Cookie": ""},
        "cards": ["[CARD]", "n/a"],
        "http": {"method": "POST", "path": "/pay?token=[REDACTED]", "status": 200},
    }


def test_clean_record_is_returned_as_is() -> None:
    record = {"message": "hello", "attributes": {"order_id": "o-1", "n": 3}, "http": {"status": 200}}
    assert Redactor().redact_record(record) is record


def test_custom_patterns_and_fields() -> None:
    redactor = Redactor.from_config({
        "patterns": [{"name": "customer", "pattern": r"CUST-\d{6}", "replacement": "CUST-******"}],
        "fields": ["ssn"],
    })
    out = redactor.redact_record({"message": "CUST-123456 and a@b.io", "SSN": "078-05-1120"})
    assert out == {"message": "CUST-****** and [EMAIL]", "SSN": "[REDACTED]"}


def test_bad_config_is_named() -> None:
    with pytest.raises(ValueError, match="unknown redaction rule 'nope'"):
        Redactor(["nope"])
    with pytest.raises(ValueError, match="redaction rule 'x': bad pattern"):
        Rule.custom("x", "(")


def test_only_content_rules_when_fields_empty() -> None:
    out = Redactor(fields=()).redact_record({"password": "hunter2", "note": "a@b.io"})
    assert out == {"password": "hunter2", "note": "[EMAIL]"}


def test_rule_tables_are_consistent() -> None:
    assert set(DEFAULT_RULES) <= set(RULES)
    assert "ipv4" not in DEFAULT_RULES and "ipv6" not in DEFAULT_RULES


@given(st.lists(st.sampled_from([t for t, _ in MASKED] + CLEAN), min_size=1, max_size=6),
       st.sampled_from([" ", ", ", "\n", " | ", "\t"]))
@settings(max_examples=examples(200), deadline=None)
def test_masking_is_stable_and_contains_no_originals(parts: list[str], sep: str) -> None:
    redactor = Redactor.from_config({"ip": True})
    text = sep.join(parts)
    once = redactor.redact_text(text)
    assert redactor.redact_text(once) == once  # masking masked text changes nothing
    for secret in ("alice.smith+tag@example.co.uk", "4111111111111111", "AKIAIOSFODNN7EXAMPLE",
                   "hunter2", "pa55w0rd", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"):
        assert secret not in once
