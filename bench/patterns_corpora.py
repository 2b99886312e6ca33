"""Labelled corpora in loghub-2k's file format, generated here (for ``bench/patterns_accuracy.py``).

    python bench/patterns_corpora.py /tmp/lh-corpora [--seed 1] [--messages 2000]

loghub-2k (logpai/loghub) is the benchmark issue #27 names; when it is not at hand (no network, the
data set is not committed), these five systems give a labelled stand-in with the failure shapes the
issue lists, written with our own messages: decisive words next to each other with very different
frequencies (``Failed``/``Accepted password``, ``GET``/``POST``/``DELETE`` in a quoted request
line, ``VM Resumed``/``Paused``/``Started``/``Stopped``), identifiers with digits (``SOCKS5``,
``ssh2``, ``/v2/``), ``key=value`` and ``key: value`` parameters, sizes with units, hex and uuid
ids, paths, many user names (a parameter) and a handful of fixed words. Each file is
``<System>_2k.log_structured.csv`` with the columns ``LineId,Content,EventId`` (what the bench
reads); the event of a message is the template it was made from.
"""

# ruff: noqa: E501 - a table of message makers: one event per line reads better than wrapped f-strings

from __future__ import annotations

import argparse
import csv
import random
from collections.abc import Callable
from pathlib import Path

Make = Callable[[random.Random], str]

USERS = [f"{a}{b}" for a in ("al", "bo", "ca", "da", "er", "fr", "gr", "he", "iv", "ju") for b in ("ex", "ri", "na")]
HOSTS = ["www.example.com", "api.example.org", "cdn.example.net", "mail.example.com", "git.example.io",
         "auth.example.dev", "img.example.com", "ws.example.org"]
QUEUES = ["emails", "invoices", "thumbnails", "reports", "webhooks", "exports", "imports", "search"]


def ip(r: random.Random) -> str:
    return f"{r.randrange(1, 224)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"


def uuid(r: random.Random) -> str:
    return (f"{r.getrandbits(32):08x}-{r.getrandbits(16):04x}-4{r.getrandbits(12):03x}-"
            f"{8 + r.randrange(4):x}{r.getrandbits(12):03x}-{r.getrandbits(48):012x}")


def port(r: random.Random) -> int:
    return r.randrange(1024, 65536)


def user(r: random.Random) -> str:
    return r.choice(USERS)


#: system → [(event id, weight, make)]: the weights make some events rare (one login among failures)
SYSTEMS: dict[str, list[tuple[str, int, Make]]] = {
    "GenSSH": [
        ("E1", 300, lambda r: f"Failed password for {user(r)} from {ip(r)} port {port(r)} ssh2"),
        ("E2", 120, lambda r: f"Failed password for invalid user {user(r)} from {ip(r)} port {port(r)} ssh2"),
        ("E3", 2, lambda r: f"Accepted password for {user(r)} from {ip(r)} port {port(r)} ssh2"),
        ("E4", 3, lambda r: f"Accepted publickey for {user(r)} from {ip(r)} port {port(r)} ssh2: RSA "
                            f"SHA256:{r.getrandbits(128):032x}"),
        ("E5", 60, lambda r: f"Invalid user {user(r)} from {ip(r)}"),
        ("E6", 50, lambda r: f"Received disconnect from {ip(r)}: 11: Bye Bye [preauth]"),
        ("E7", 50, lambda r: f"Connection closed by {ip(r)} [preauth]"),
        ("E8", 80, lambda r: "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh "
                             f"ruser= rhost={ip(r)} user={user(r)}"),
        ("E9", 30, lambda r: f"error: maximum authentication attempts exceeded for {user(r)} from {ip(r)} "
                             f"port {port(r)} ssh2 [preauth]"),
        ("E10", 20, lambda r: f"Disconnecting: Too many authentication failures for {user(r)} [preauth]"),
        ("E11", 8, lambda r: f"pam_unix(sshd:session): session opened for user {user(r)} by (uid=0)"),
        ("E12", 8, lambda r: f"pam_unix(sshd:session): session closed for user {user(r)}"),
    ],
    "GenProxy": [
        ("E1", 200, lambda r: f"{r.choice(HOSTS)}:{r.choice((80, 443))} open through proxy "
                              f"proxy.cse.example.net:{r.choice((5070, 5080))} SOCKS5"),
        ("E2", 150, lambda r: f"{r.choice(HOSTS)}:{r.choice((80, 443))} open through proxy "
                              f"proxy.cse.example.net:{r.choice((5070, 5080))} HTTPS"),
        ("E3", 300, lambda r: f"{r.choice(HOSTS)}:{r.choice((80, 443))} close, {r.randrange(10**6)} bytes "
                              f"({r.randrange(1, 999)}.{r.randrange(10)} KB) sent, {r.randrange(10**6)} bytes "
                              f"received, lifetime {r.randrange(60):02d}:{r.randrange(60):02d}"),
        ("E4", 40, lambda r: f"{r.choice(HOSTS)}:{r.choice((80, 443))} error : Could not connect to proxy "
                             f"proxy.cse.example.net:5070 - connection timeout"),
        ("E5", 30, lambda r: f"{r.choice(HOSTS)}:{r.choice((80, 443))} error : A connection request was "
                             "canceled before the completion."),
        # the same event as E3 (as loghub labels it): a restated size and the lifetime are parameters
        ("E3", 10, lambda r: f"{r.choice(HOSTS)}:443 close, {r.randrange(10**4)} bytes sent, "
                             f"{r.randrange(10**4)} bytes received, lifetime <1 sec"),
        ("E7", 5, lambda r: f"proxy.cse.example.net:5070 SOCKS5 handshake failed, status code {r.randrange(1, 9)}"),
    ],
    "GenCloud": [
        ("E1", 250, lambda r: f'{ip(r)} "GET /v2/{r.getrandbits(64):016x}/servers/detail HTTP/1.1" '
                              f"status: 200 len: {r.randrange(1000, 2000)} time: 0.{r.randrange(10**7):07d}"),
        ("E2", 40, lambda r: f'{ip(r)} "POST /v2/{r.getrandbits(64):016x}/os-server-external-events '
                             f'HTTP/1.1" status: 200 len: {r.randrange(300, 400)} time: 0.{r.randrange(10**7):07d}'),
        ("E3", 20, lambda r: f'{ip(r)} "DELETE /v2/{r.getrandbits(64):016x}/servers/{uuid(r)} HTTP/1.1" '
                             f"status: 204 len: {r.randrange(100, 300)} time: 0.{r.randrange(10**7):07d}"),
        ("E4", 30, lambda r: f"[instance: {uuid(r)}] VM Resumed (Lifecycle Event)"),
        ("E5", 30, lambda r: f"[instance: {uuid(r)}] VM Paused (Lifecycle Event)"),
        ("E6", 25, lambda r: f"[instance: {uuid(r)}] VM Started (Lifecycle Event)"),
        ("E7", 25, lambda r: f"[instance: {uuid(r)}] VM Stopped (Lifecycle Event)"),
        ("E8", 20, lambda r: f"[instance: {uuid(r)}] Took {r.randrange(30)}.{r.randrange(100):02d} seconds "
                             "to spawn the instance on the hypervisor."),
        ("E9", 20, lambda r: f"[instance: {uuid(r)}] Terminating instance"),
        ("E10", 15, lambda r: f"Compute_service record updated for {r.choice(('cp-1', 'cp-2', 'cp-3', 'cp-4', 'cp-5'))}"
                              f".example.net:{r.choice(('cp-1', 'cp-2', 'cp-3', 'cp-4', 'cp-5'))}.example.net"),
        ("E11", 20, lambda r: f"Final resource view: phys_ram={r.randrange(1, 64)}GB used_ram={r.randrange(512, 9000)}MB "
                              f"phys_disk={r.randrange(10, 99)}GB used_disk={r.randrange(0, 40)}GB "
                              f"total_vcpus={r.randrange(4, 64)} used_vcpus={r.randrange(0, 8)}"),
    ],
    "GenApp": [
        ("E1", 150, lambda r: f"user {user(r)} logged in from {ip(r)}"),
        ("E2", 8, lambda r: f"user {user(r)} login failed from {ip(r)}: bad password"),
        ("E3", 120, lambda r: f"request_id={uuid(r)} method=GET path=/api/v1/items/{r.randrange(10**5)} "
                              f"status=200 duration={r.randrange(900)}ms"),
        ("E4", 30, lambda r: f"request_id={uuid(r)} method=POST path=/api/v1/orders status=201 "
                             f"duration={r.randrange(900)}ms"),
        ("E5", 60, lambda r: f"job j-{r.randrange(10**6)} from queue {r.choice(QUEUES)} done in "
                             f"{r.randrange(1, 99)}.{r.randrange(100):02d}s"),
        ("E6", 40, lambda r: f"GC pause {r.randrange(1, 300)}ms, heap {r.randrange(100, 4000)} MB of 4096 MB"),
        ("E7", 30, lambda r: f"cache hit ratio {r.randrange(100)}% over {r.randrange(10**6)} keys"),
        ("E8", 20, lambda r: f"disk /var/lib/app{r.randrange(4)}/data is {r.randrange(80, 100)}% full"),
        ("E9", 15, lambda r: f"payment {r.getrandbits(64):016x} declined: insufficient funds"),
        ("E10", 15, lambda r: f"payment {r.getrandbits(64):016x} captured: {r.randrange(1, 999)}.{r.randrange(100):02d} EUR"),
        ("E11", 10, lambda r: f"worker v2 started with {r.randrange(1, 32)} threads (pid {r.randrange(100, 99999)})"),
        ("E12", 5, lambda r: "connection pool exhausted"),
    ],
    "GenHadoop": [
        ("E1", 200, lambda r: f"Progress of TaskAttempt attempt_{r.randrange(10**12)}_{r.randrange(10**4):04d}"
                              f"_m_{r.randrange(10**6):06d}_{r.randrange(3)} is : 0.{r.randrange(10**6)}"),
        ("E2", 60, lambda r: f"Task attempt_{r.randrange(10**12)}_{r.randrange(10**4):04d}_m_"
                             f"{r.randrange(10**6):06d}_0 is done. And is in the process of committing"),
        ("E3", 80, lambda r: f"Received completed container container_{r.randrange(10**12)}_{r.randrange(10**4):04d}"
                             f"_01_{r.randrange(10**6):06d}"),
        ("E4", 40, lambda r: f"Address change detected. Old: host-{r.randrange(99)}/{ip(r)}:{port(r)} "
                             f"New: host-{r.randrange(99)}:{port(r)}"),
        ("E5", 40, lambda r: f"Retrying connect to server: host-{r.randrange(99)}:{port(r)}. Already tried "
                             f"{r.randrange(10)} time(s); maxRetries={r.randrange(10, 50)}"),
        ("E6", 30, lambda r: f"Num completed Tasks: {r.randrange(10**3)}"),
        ("E7", 10, lambda r: f"KILLING attempt_{r.randrange(10**12)}_{r.randrange(10**4):04d}_m_{r.randrange(10**6):06d}_0"),
        ("E8", 10, lambda r: f"Diagnostics report from attempt_{r.randrange(10**12)}_{r.randrange(10**4):04d}_m_"
                             f"{r.randrange(10**6):06d}_0: Error: java.net.NoRouteToHostException: No Route to Host"),
    ],
}


def generate(system: str, seed: int, n: int) -> list[tuple[str, str]]:
    """``n`` (message, event id) of ``system``: events drawn by weight, every event at least once."""
    r = random.Random(f"{system}-{seed}")
    events = SYSTEMS[system]
    out = [(make(r), event) for event, _, make in events]  # every event (and variant) at least once
    weights = [w for _, w, _ in events]
    for event, _, make in r.choices(events, weights=weights, k=n - len(out)):
        out.append((make(r), event))
    r.shuffle(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--messages", type=int, default=2000)
    args = ap.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    for system in SYSTEMS:
        with open(args.folder / f"{system}_2k.log_structured.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["LineId", "Content", "EventId"])
            for i, (message, event) in enumerate(generate(system, args.seed, args.messages), 1):
                writer.writerow([i, message, event])
        print(args.folder / f"{system}_2k.log_structured.csv")


if __name__ == "__main__":
    main()
