"""Header rules of the middleware, case by case (the real-server tests cover the wiring)."""

from __future__ import annotations

import re

import pytest

from logharbor.sdk.middleware import client_ip, identity_from_headers, parse_networks

HEX32 = re.compile(r"[0-9a-f]{32}")


def ident(**headers: str) -> dict:
    table = {k.replace("_", "-").lower(): v for k, v in headers.items()}
    return identity_from_headers(table.get)


def test_traceparent_wins_over_amzn() -> None:
    got = ident(traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                x_amzn_trace_id="Root=1-5759e988-bd862e3fe1be46a994272793")
    assert got["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert got["parent_span_id"] == "00f067aa0ba902b7"
    assert "trace_header" not in got


@pytest.mark.parametrize("bad", [
    "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   # version ff is invalid
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",   # all-zero trace id
    "00-4bf92f3577b34da6-00f067aa0ba902b7-01",                    # short
    "garbage",
])
def test_invalid_traceparent_falls_through(bad: str) -> None:
    got = ident(traceparent=bad, x_amzn_trace_id="Root=1-5759e988-bd862e3fe1be46a994272793")
    assert got["trace_id"] == "5759e988bd862e3fe1be46a994272793"
    assert "parent_span_id" not in got


def test_invalid_everything_generates() -> None:
    got = ident(traceparent="nope", x_amzn_trace_id="Self=1-abc", x_request_id="  ")
    assert HEX32.fullmatch(got["trace_id"]) and HEX32.fullmatch(got["request_id"])
    assert re.fullmatch(r"[0-9a-f]{16}", got["span_id"])


def test_request_id_kept_as_given_but_bounded() -> None:
    assert ident(x_request_id="Abc-123")["request_id"] == "Abc-123"
    assert len(ident(x_request_id="x" * 5000)["request_id"]) == 200


@pytest.mark.parametrize(("peer", "xff", "trusted", "expected"), [
    ("203.0.113.9", "1.2.3.4", ["127.0.0.1"], "203.0.113.9"),               # peer not trusted
    ("127.0.0.1", "1.2.3.4", ["127.0.0.1"], "1.2.3.4"),
    ("127.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2", ["127.0.0.1", "10.0.0.0/8"], "1.2.3.4"),
    ("10.0.0.1", "10.0.0.3, 10.0.0.2", ["10.0.0.0/8"], "10.0.0.3"),          # all trusted: left-most
    ("::1", "2001:db8::7", ["::1"], "2001:db8::7"),
    ("127.0.0.1", None, ["127.0.0.1"], "127.0.0.1"),
    ("127.0.0.1", "1.2.3.4", [], "127.0.0.1"),                              # nobody trusted
    (None, "1.2.3.4", ["127.0.0.1"], None),
])
def test_client_ip(peer: str | None, xff: str | None, trusted: list[str], expected: str | None) -> None:
    assert client_ip(peer, xff, parse_networks(trusted)) == expected


def test_bad_trusted_proxy_is_named() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33'")):
        parse_networks(["10.0.0.0/33"])
