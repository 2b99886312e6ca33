"""Live tail against a real server process: filtering, transports, slow clients, many clients."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from tests.conftest import ROOT, ServerProcess

from .clients import SseClient, StalledSse, WsClient, http_error, post, wait_until

FILTER = "service:checkout AND level:ERROR"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("tail") / "data", "--batch-max-age", "0.2").start()
    yield proc
    proc.stop()


def mixed(tag: str, n: int) -> tuple[list[dict[str, Any]], list[str]]:
    """n records of three kinds, only one of which matches FILTER; and the matching messages."""
    records, matching = [], []
    for i in range(n):
        kind = i % 3
        message = f"{tag} {i}"
        if kind == 0:
            records.append({"service": "checkout", "level": "ERROR", "message": message, "order_id": f"o-{i}"})
            matching.append(message)
        elif kind == 1:
            records.append({"service": "checkout", "level": "INFO", "message": message})
        else:
            records.append({"service": "search", "level": "ERROR", "message": message})
    return records, matching


def test_sse_client_sees_only_matching_records_written_after_it_subscribed(server: ServerProcess) -> None:
    post(server, [{"service": "checkout", "level": "ERROR", "message": "sse before subscribing"}])
    client = SseClient(server, FILTER)
    client.wait_subscribed()
    records, matching = mixed("sse", 60)
    post(server, records[:30])
    post(server, records[30:])
    post(server, [{"service": "checkout", "level": "ERROR", "message": "sse end"}])
    got, dropped = client.records_until("sse end")
    client.close()
    assert [r["message"] for r in got] == [*matching, "sse end"]
    assert dropped == 0
    assert all(r["service"] == "checkout" and r["level"] == "ERROR" for r in got)
    first = got[0]
    assert first["order_id"] == "o-0" and first["timestamp"].endswith("Z")  # the wire form of a search


def test_websocket_client_sees_only_matching_records_written_after_it_subscribed(server: ServerProcess) -> None:
    post(server, [{"service": "checkout", "level": "ERROR", "message": "ws before subscribing"}])
    client = WsClient(server, FILTER)
    try:
        assert client.next() == {"subscribed": {"q": FILTER}}
        records, matching = mixed("ws", 45)
        post(server, records)
        post(server, [{"service": "checkout", "level": "ERROR", "message": "ws end"}])
        got = []
        while not got or got[-1].get("message") != "ws end":
            got.append(client.next())
        assert [r["message"] for r in got] == [*matching, "ws end"]
    finally:
        client.close()


@pytest.mark.slow
def test_a_stalled_client_does_not_delay_another(server: ServerProcess) -> None:
    q = "service:bulk"
    stalled = StalledSse(server, q)
    fast = SseClient(server, q)
    fast.wait_subscribed()
    pad = "x" * 900
    posts, per_post = 12, 1000
    for p in range(posts):
        batch = [{"service": "bulk", "message": f"bulk {p} {i} {pad}"} for i in range(per_post)]
        batch[-1]["message"] = f"bulk end {p}"
        post(server, batch)
        # the fast client gets each write in full while the other one reads nothing at all
        got, dropped = fast.records_until(f"bulk end {p}")
        assert (len(got), dropped) == (per_post, 0)
    total = posts * per_post
    records, dropped = stalled.drain(total)
    assert metric(server, "logharbor_tail_clients") >= 2
    stalled.close()
    fast.close()
    assert dropped > 0, "the stalled client's queue never overflowed; the test did not stall it"
    assert records + dropped == total  # every record is either delivered or counted in a marker
    assert metric(server, "logharbor_tail_dropped_records_total") >= dropped
    assert metric(server, "logharbor_tail_delivered_records_total") >= total + records


def metric(server: ServerProcess, name: str) -> float:
    with server.client() as client:
        text = client.get("/metrics").text
    (value,) = [line.split()[1] for line in text.splitlines() if line.startswith(name + " ")]
    return float(value)


def test_many_clients_with_different_filters(server: ServerProcess) -> None:
    filters = {"level:ERROR AND service:many": lambda r: r["level"] == "ERROR",
               "service:many AND status:>=500": lambda r: r["http"]["status"] >= 500,
               'service:many AND "needle"': lambda r: "needle" in r["message"],
               "service:many": lambda r: True,
               "service:many AND shard:1": lambda r: r["shard"] == 1}  # inside attributes
    clients = [(q, SseClient(server, q)) for q in filters for _ in range(6)]
    for _, client in clients:
        client.wait_subscribed()
    records = [{"service": "many", "level": ("ERROR", "INFO", "WARN")[i % 3],
                "message": f"many {i}" + (" needle" if i % 4 == 0 else ""),
                "http": {"status": (200, 404, 503, 500, 201)[i % 5]}, "shard": i % 3} for i in range(200)]
    records.append({"service": "many", "level": "ERROR", "message": "many end needle", "http": {"status": 599},
                    "shard": 1})
    post(server, records)
    for q, client in clients:
        got, dropped = client.records_until("many end needle")
        expected = [r["message"] for r in records if filters[q](r)]
        assert [r["message"] for r in got] == expected, q
        assert all(r["shard"] in (0, 1, 2) for r in got)  # attributes arrive as values either way
        assert dropped == 0
        client.close()


def test_a_scoped_key_tails_only_its_services(server: ServerProcess) -> None:
    key = server.create_key("reader", services=["scoped-a"])
    client = SseClient(server, "*", key=key)
    client.wait_subscribed()
    post(server, [{"service": s, "message": f"{s} {i}"} for i in range(4) for s in ("scoped-a", "scoped-b")])
    post(server, [{"service": "scoped-a", "message": "scoped end"}])
    got, _ = client.records_until("scoped end")
    client.close()
    assert [r["message"] for r in got] == [f"scoped-a {i}" for i in range(4)] + ["scoped end"]


@pytest.mark.parametrize(("q", "code"), [("service:", "query_syntax"),
                                         ("* | stats count() by service", "tail_filter_only"),
                                         ("level:ERROR | limit 5", "tail_filter_only")])
def test_bad_queries_are_refused_before_streaming(server: ServerProcess, q: str, code: str) -> None:
    response = http_error(server, q)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


def test_websocket_bad_query_gets_an_error_message_and_a_close(server: ServerProcess) -> None:
    from websockets.exceptions import ConnectionClosed

    client = WsClient(server, "* | stats count()")
    try:
        assert client.next()["error"]["code"] == "tail_filter_only"
        with pytest.raises(ConnectionClosed) as info:
            client.next(timeout=30)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
    finally:
        client.close()


@pytest.mark.parametrize("transport", [[], ["--ws"]], ids=["sse", "websocket"])
def test_cli_prints_matching_lines_as_they_arrive(server: ServerProcess, transport: list[str]) -> None:
    tag = "cli-ws" if transport else "cli-sse"
    env = dict(os.environ, LOGHARBOR_API_KEY=server.api_key, LOGHARBOR_SERVER=server.url)
    proc = subprocess.Popen([sys.executable, "-m", "logharbor.cli.main", "tail", *transport, "-o", "json",
                             f"service:{tag} AND level:ERROR"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, cwd=ROOT)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert "tailing" in proc.stderr.readline().decode()
        post(server, [{"service": tag, "level": lvl, "message": f"{tag} {i} {lvl}"}
                      for i, lvl in enumerate(["ERROR", "INFO", "ERROR", "DEBUG", "ERROR"])])
        lines: list[dict[str, Any]] = []
        reader = threading.Thread(target=lambda: lines.extend(
            orjson.loads(proc.stdout.readline()) for _ in range(3)), daemon=True)  # type: ignore[union-attr]
        reader.start()
        assert wait_until(lambda: not reader.is_alive(), timeout=60)
        assert [r["message"] for r in lines] == [f"{tag} 0 ERROR", f"{tag} 2 ERROR", f"{tag} 4 ERROR"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.e2e
def test_cli_pretty_output_colours_levels() -> None:
    from rich.console import Console

    from logharbor.cli.tail import format_record

    console = Console(record=True, force_terminal=True, color_system="standard", width=200)
    console.print(format_record({"timestamp": "2026-11-01T12:34:56.789123Z", "level": "ERROR",
                                 "service": "checkout", "message": "payment declined",
                                 "http": {"status": 502, "duration_ms": 12.5}, "trace_id": "ab" * 16}))
    text = console.export_text(styles=True, clear=False)
    assert "12:34:56.789 ERROR checkout payment declined  502 12.5 ms" in console.export_text()
    assert "\x1b[1;31mERROR" in text  # bold red


@pytest.mark.e2e
def test_cli_reconnects_after_a_server_restart(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = ServerProcess(tmp_path / "data", "--batch-max-age", "0.2").start()
    env = dict(os.environ, LOGHARBOR_API_KEY=server.api_key, LOGHARBOR_SERVER=server.url)
    proc = subprocess.Popen([sys.executable, "-m", "logharbor.cli.main", "tail", "-o", "json", "service:again"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT, text=True)
    try:
        assert proc.stderr is not None and proc.stdout is not None
        assert "tailing" in proc.stderr.readline()
        server.stop()  # SIGTERM: the server ends its tail streams and exits
        assert "reconnecting" in proc.stderr.readline()
        server.start()
        for line in proc.stderr:  # more "reconnecting" lines while the server was starting
            if "tailing" in line:
                break
        else:
            raise AssertionError("logharbor tail exited instead of reconnecting")
        post(server, [{"service": "again", "message": "after the restart"}])
        assert orjson.loads(proc.stdout.readline())["message"] == "after the restart"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        server.stop()


@pytest.mark.e2e
def test_the_tail_client_limit_is_a_server_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = ServerProcess(tmp_path / "data", "--batch-max-age", "0.2", "--tail-max-clients", "2").start()
    clients = [SseClient(proc, FILTER), SseClient(proc, "service:search")]
    try:
        for c in clients:
            c.wait_subscribed()
        refused = http_error(proc, "*")
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "too_many_tail_clients" and "2 tail clients" in refused.text
        clients.pop().close()
        # the freed place is taken by the next client
        assert wait_until(lambda: http_error(proc, "bad(").status_code == 400, 30)
    finally:
        for c in clients:
            c.close()
        proc.stop()
