"""Which hosts channels may reach: ``--channel-allow-hosts`` / ``--channel-deny-hosts``.

A channel is an outbound connection an admin aims anywhere, so without a rule it is a probe of
the server's private network (SSRF). Modelled on Kibana's ``xpack.actions.allowedHosts``, with a
deny list on top. An entry is a host name (``hooks.slack.com``), a wildcard (``*.example.com``),
an address or a network (``10.0.0.0/8``, ``fd00::/8``), or ``*`` (anything). A host passes when

- no deny entry matches its name, and none of the addresses it resolves to is in a denied
  network, and
- the allow list is ``*``, or an allow entry matches its name, or every address it resolves to is
  in an allowed network.

The check runs when a channel is saved and again at every send, on the addresses the name
resolves to then; the connection is made to those checked addresses (pinned), so a name that
resolves to a denied address, or changes between the check and the connection (DNS rebinding),
is refused. Redirects are never followed. By default the allow list is ``*`` and the deny list
is ``default``: the link-local networks and the cloud metadata endpoints (:data:`DEFAULT_DENY`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["DEFAULT_DENY", "HostNotAllowed", "HostPolicy", "Unresolvable", "check_entries"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: link-local (AWS/GCP/Azure/OpenStack/DigitalOcean metadata at 169.254.169.254), AWS's IPv6
#: metadata address, Alibaba's, Azure's wireserver, and the names that lead there
DEFAULT_DENY = ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32",
                "168.63.129.16/32", "metadata.google.internal", "metadata.goog")


class HostNotAllowed(ValueError):
    """The host, or an address it resolves to, is outside what the server lets channels reach."""


class Unresolvable(HostNotAllowed):
    """The name does not resolve (now): nothing to connect to, and nothing to check yet."""


def _address(text: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(text.split("%", 1)[0])  # an IPv6 zone (fe80::1%eth0) is no escape
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # ::ffff:169.254.169.254 is 169.254.169.254
    return ip


@dataclass(frozen=True)
class _Entries:
    anything: bool = False
    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str], flag: str) -> _Entries:
        anything, names, suffixes, networks = False, set(), [], []
        expanded = [e for raw in entries for e in (DEFAULT_DENY if raw.strip() == "default" else (raw,))]
        for raw in expanded:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            if entry == "*":
                anything = True
            elif entry.startswith("*."):
                suffixes.append(entry[1:])
            elif _address(entry) is not None or "/" in entry:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError:
                    raise ValueError(f"{flag}: {raw!r} is not an address or network") from None
            elif all(part and all(c.isalnum() or c == "-" for c in part) for part in entry.split(".")):
                names.add(entry)
            else:
                raise ValueError(f"{flag}: {raw!r} is not a host name, *.domain, address or network")
        return cls(anything, frozenset(names), tuple(suffixes), tuple(networks))

    def name(self, host: str) -> bool:
        return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def address(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.networks)


@dataclass(frozen=True)
class HostPolicy:
    """The allow and deny lists; :meth:`check` resolves a host and returns its allowed addresses."""

    allow: _Entries = field(default_factory=lambda: _Entries(anything=True))
    deny: _Entries = field(default_factory=lambda: _Entries.parse(DEFAULT_DENY, "deny"))

    @classmethod
    def from_lists(cls, allow: Iterable[str], deny: Iterable[str]) -> HostPolicy:
        """From the flags' entries; ``default`` in either stands for :data:`DEFAULT_DENY`."""
        return cls(_Entries.parse(allow, "--channel-allow-hosts"),
                   _Entries.parse(deny, "--channel-deny-hosts"))

    def check_saved(self, host: str, port: int) -> None:
        """The check when a channel is saved: a name that does not resolve yet is judged by its
        name alone (the send checks again), so saving says nothing about which names exist."""
        try:
            self.check(host, port)
        except Unresolvable:
            self.check(host, port, resolve=False)

    def check(self, host: str, port: int, *, resolve: bool = True) -> list[str]:
        """The addresses to connect to for ``host``: all of them allowed, or HostNotAllowed."""
        name = host.strip().lower().rstrip(".").strip("[]")
        literal = _address(name)
        if literal is None and self.deny.name(name):
            raise HostNotAllowed(f"channels may not reach {host!r} (--channel-deny-hosts)")
        if literal is not None:
            addresses = [literal]
        elif resolve:
            addresses = _resolve(name, port)
        else:
            addresses = []
        for ip in addresses:
            if self.deny.address(ip):
                raise HostNotAllowed(f"channels may not reach {host!r}: it is (or resolves to) a denied "
                                     "address (--channel-deny-hosts)")
        named = literal is None and self.allow.name(name)
        in_networks = bool(addresses) and all(self.allow.address(ip) for ip in addresses)
        if not (self.allow.anything or named or in_networks or (not addresses and not resolve)):
            raise HostNotAllowed(f"channels may not reach {host!r}: it is not in --channel-allow-hosts")
        return [str(ip) for ip in addresses]


def check_entries(entries: Iterable[str], flag: str) -> None:
    """Raise ValueError naming ``flag`` and the entry that is no host, domain, address or network."""
    _Entries.parse(entries, flag)


def _resolve(name: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise Unresolvable(f"cannot resolve {name!r}: {exc}") from None
    found: list[IPAddress] = []
    for info in infos:
        ip = _address(str(info[4][0]))
        if ip is not None and ip not in found:
            found.append(ip)
    if not found:
        raise Unresolvable(f"{name!r} resolves to no address")
    return found
