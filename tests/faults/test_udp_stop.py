"""SIGTERM while datagrams wait in the server's UDP syslog socket: every datagram the kernel
accepted into the socket's receive queue is stored, once.

UDP has no acknowledgement, so "acknowledged" here means *accepted by the kernel*: queued in the
listening socket's receive buffer, which ``/proc/net/udp`` shows (its ``rx_queue`` grows and its
``drops`` counter stays 0). A datagram the kernel dropped (buffer full) was never the server's to
lose; the test sizes its burst to fit the buffer and checks that ``drops`` stayed 0, so every
datagram it sent counts.

The server's reading is held back by the test, not by luck: it is stopped with SIGSTOP before
the datagrams are sent, so all of them wait in the kernel; then SIGTERM and SIGCONT together.
Before, the listener closed its socket at the stop and the kernel discarded whatever it still
held (uvloop reads a few dozen datagrams per loop turn, and the stop came first: 1,632 of 3,000
lost in one run). How many the loop reads before the stop is up to the machine, so this end-to-end
run can pass on the old code on a fast machine; ``tests/ingest/test_syslog_stop.py`` holds the
same case without timing (the datagrams are sent from the loop's own thread right before the
stop). Counted in the store after a restart.
"""

from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

from tests.conftest import ServerProcess, free_port
from tests.faults.conftest import Tally, wait_for
from tests.server.store_probe import query_stopped_store

BURST = 3000  # ~80-byte datagrams: a few MB of kernel memory, inside the 8 MB buffer asked for


def udp_socket_state(port: int) -> tuple[int, int] | None:
    """``(rx_queue bytes, drops)`` of the UDP socket bound to ``port`` on 127.0.0.1, from /proc."""
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        local = fields[1]
        if local == f"0100007F:{port:04X}":
            rx_queue = int(fields[4].split(":")[1], 16)
            return rx_queue, int(fields[-1])
    return None


def test_sigterm_stores_datagrams_waiting_in_the_udp_socket(tmp_path: Path) -> None:
    port = free_port()
    server = ServerProcess(tmp_path / "data", "--batch-max-age", "60", "--shutdown-timeout", "60",
                           "--syslog-udp", f"127.0.0.1:{port}").start()
    tally = Tally("SIGTERM with syslog UDP datagrams queued in the kernel (acknowledged = accepted "
                  "by the kernel into the socket's receive queue)")
    before = udp_socket_state(port)
    assert before is not None, "the server's UDP socket is not in /proc/net/udp"
    assert server.proc is not None
    server.proc.send_signal(signal.SIGSTOP)  # nothing is read from here on
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            ids = [f"udp-{i}" for i in range(BURST)]
            for rid in ids:
                sender.sendto(f"<14>1 2026-12-07T12:00:00Z h app - - - {rid}".encode(), ("127.0.0.1", port))
        state = udp_socket_state(port)
        assert state is not None
        wait_for("the kernel to queue the burst", lambda: (udp_socket_state(port) or (0, 0))[0] > 0,
                 timeout=10)
        rx_queue, drops = udp_socket_state(port) or (0, 0)
        assert drops == before[1], f"the kernel dropped {drops - before[1]} datagrams: the burst is too big"
        tally.ack(ids)  # the kernel took every one of them
        tally.extra["kernel_queued_bytes"] = rx_queue
        server.proc.send_signal(signal.SIGTERM)
    finally:
        server.proc.send_signal(signal.SIGCONT)
    server.proc.wait(timeout=180)  # (uvicorn ends by the signal it caught: -15)
    server.start()  # what the deadline left in the WAL (if anything) is stored now
    deadline = time.monotonic() + 120
    while server.store_rows() < len(tally.acknowledged) and time.monotonic() < deadline:
        time.sleep(0.2)
    server.stop()
    rows = query_stopped_store(server.data_dir, "SELECT message FROM logs")
    tally.saw(r["message"] for r in rows)
    tally.extra["lost_by_the_stop"] = len(tally.lost)
    tally.report()
