"""LogQL's ``ip("…")``: an address, a CIDR or a range, as an RE2 pattern over dotted quads.

Why a regex: the filter then runs in the engine with the other conditions (``match`` over the
line or a field), and the set of IPv4 addresses a CIDR or a range holds is a finite union of
octet ranges, each an exact regex. IPv6 is refused by name (the union is too large to spell).
"""

from __future__ import annotations

import ipaddress

from .nodes import LogQLError

__all__ = ["ip_field_regex", "ip_line_regex"]


def _digits_range(lo: str, hi: str) -> str:
    """Numbers of equal length between ``lo`` and ``hi`` (as strings), digit by digit."""
    if not lo:
        return ""
    if lo == hi:
        return lo
    if lo[0] == hi[0]:
        return lo[0] + _digits_range(lo[1:], hi[1:])
    rest = len(lo) - 1
    parts = []
    full_lo, full_hi = "0" * rest, "9" * rest
    if lo[1:] == full_lo:
        first = int(lo[0])
    else:
        parts.append(lo[0] + _group(_digits_range(lo[1:], full_hi)))
        first = int(lo[0]) + 1
    last = int(hi[0]) if hi[1:] == full_hi else int(hi[0]) - 1
    if first <= last:
        digit = str(first) if first == last else f"[{first}-{last}]"
        parts.append(digit + "[0-9]" * rest)
    if hi[1:] != full_hi:
        parts.append(hi[0] + _group(_digits_range(full_lo, hi[1:])))
    return "|".join(parts)


def _group(text: str) -> str:
    return f"(?:{text})" if "|" in text else text


def _octets(lo: int, hi: int) -> str:
    """Decimal numbers ``lo``..``hi`` (0..255), written without leading zeros."""
    parts = []
    for width in (1, 2, 3):
        a, b = max(lo, 0 if width == 1 else 10 ** (width - 1)), min(hi, 10**width - 1)
        if a <= b:
            parts.append(_digits_range(str(a), str(b)))
    return _group("|".join(parts))


def _network_regex(net: ipaddress.IPv4Network) -> str:
    first, last = str(net.network_address).split("."), str(net.broadcast_address).split(".")
    return r"\.".join(a if a == b else _octets(int(a), int(b)) for a, b in zip(first, last, strict=True))


def _networks(spec: str, pos: int | None) -> list[ipaddress.IPv4Network]:
    text = spec.strip()
    try:
        if "-" in text:
            lo, hi = (ipaddress.ip_address(p.strip()) for p in text.split("-", 1))
            if lo.version != 4 or hi.version != 4:
                raise ValueError
            if int(hi) < int(lo):
                raise LogQLError(f"ip({spec!r}): the range ends before it starts", pos)
            return list(ipaddress.summarize_address_range(lo, hi))  # type: ignore[arg-type]
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        if ":" in text:
            raise LogQLError(f"ip({spec!r}): IPv6 addresses are not supported by logharbor's ip() "
                             "(IPv4 addresses, CIDRs and ranges are)", pos) from None
        raise LogQLError(f"ip({spec!r}) is not an IPv4 address, CIDR or range", pos) from None
    if not isinstance(net, ipaddress.IPv4Network):
        raise LogQLError(f"ip({spec!r}): IPv6 addresses are not supported by logharbor's ip() "
                         "(IPv4 addresses, CIDRs and ranges are)", pos)
    return [net]


def _addresses(spec: str, pos: int | None) -> str:
    return "|".join(_network_regex(n) for n in _networks(spec, pos))


def ip_field_regex(spec: str, pos: int | None) -> str:
    """A field whose whole value is an address of ``spec``."""
    return f"^(?:{_addresses(spec, pos)})$"


def ip_line_regex(spec: str, pos: int | None) -> str:
    """A line holding an address of ``spec`` that is not part of a longer dotted number."""
    return rf"(?:^|[^0-9.])(?:{_addresses(spec, pos)})(?:$|[^0-9.]|\.(?:$|[^0-9]))"
