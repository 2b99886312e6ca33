"""The agent's data directory fills up while its disk buffer delivers, then frees again.

Fault: the disk buffer's data writes met a full disk well (nothing half-written, retried each
second), but its delivered position (``ack.json``) did not: written after every delivered batch
from the delivery thread, an ``ENOSPC`` there ended that thread (or, when it came while a batch
was being noted, stranded the batch at the head of the buffer). With the threads gone nothing was
delivered again, even once the disk had room: the buffer filled, the sources stopped, and every
line written after that point sat unread until someone restarted the agent.

Here a real agent (file source, disk buffer on a real small filesystem) buffers lines while the
server is down; the filesystem is filled to the last byte, the server comes back, the ballast
goes, and more lines are written. Every line written (*acknowledged*: in the file the agent
watches) must be stored, once.
"""

from __future__ import annotations

from pathlib import Path

from tests.agent.conftest import AgentProcess, write_config
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally, fill_to, wait_for

FIRST, WHILE_DOWN, AFTER = 1000, 3000, 1000


def write_lines(path: Path, start: int, n: int) -> None:
    with path.open("a") as fh:
        fh.writelines(f'{{"seq":{i},"msg":"disk full line {i:06d}"}}\n' for i in range(start, start + n))


def stored(server: ServerProcess) -> list[str]:
    with server.client(timeout=60) as client:
        r = client.post("/api/v1/query", json={"q": "_exists_:seq | fields seq", "limit": 100_000,
                                               "since": "now-1d"})
        r.raise_for_status()
        return [str(row["seq"]) for row in r.json()["rows"]]


def buffered(buffer_dir: Path, seq: int) -> bool:
    """Whether the line ``seq`` is in the disk buffer's segment files."""
    needle = f'"seq":{seq},'.encode()
    return any(needle in p.read_bytes() for p in buffer_dir.glob("*") if p.is_file())


def test_a_full_agent_disk_while_delivering_stops_nothing_for_good(
        tmp_path: Path, small_fs: Path, server_factory) -> None:  # type: ignore[no-untyped-def]
    server: ServerProcess = server_factory("--batch-max-age", "0.2")
    logs = tmp_path / "logs"
    logs.mkdir()
    app = logs / "app.log"
    app.touch()
    cfg = write_config(tmp_path / "agent.yaml", {
        "data_dir": str(small_fs / "agent-data"), "metrics": {"port": 0},
        "sources": {"app": {"type": "file", "include": [str(app)], "parser": "json",
                            "checkpoint_interval_secs": 0.2, "poll_interval_secs": 0.05}},
        "sinks": {"srv": {"type": "logharbor", "url": server.url, "api_key": server.create_key("writer"),
                          # many small batches: deliveries (and position writes) go on after the fill
                          "batch": {"timeout_secs": 0.1, "max_events": 100},
                          "retry_initial_secs": 0.1, "retry_max_secs": 0.5,
                          "buffer": {"type": "disk", "max_bytes": 16 * 1024 * 1024}}}})
    log = tmp_path / "agent.log"
    agent = AgentProcess(cfg, log).start()
    tally = Tally("agent disk buffer: its disk full while delivering, then freed")
    try:
        write_lines(app, 0, FIRST)
        wait_for("the first lines stored", lambda: len(set(stored(server))) >= FIRST, 120, 0.3)
        server.kill9()
        write_lines(app, FIRST, WHILE_DOWN)
        buffer_dir = small_fs / "agent-data" / "buffer" / "srv"
        wait_for("the lines written while the server was down in the disk buffer",
                 lambda: buffered(buffer_dir, FIRST + WHILE_DOWN - 1), 120, 0.2)
        ballast = fill_to(small_fs, 0)
        server.start()
        # a delivery after the fill: it writes the buffer's position (and notes its batch) on a full disk
        wait_for("a delivery from the buffer on the full disk",
                 lambda: any(marker in log.read_text(errors="replace") for marker in
                     ("disk buffer position could not be written", "sink buffer could not be read",
                      "Exception in thread")), 120, 0.3)
        ballast.unlink()
        write_lines(app, FIRST + WHILE_DOWN, AFTER)
        total = FIRST + WHILE_DOWN + AFTER
        try:
            wait_for("every line stored", lambda: len(set(stored(server))) >= total, 120, 0.5)
        except AssertionError:
            print("agent log tail:\n" + log.read_text(errors="replace")[-4000:])
        assert agent.stop() == 0
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.proc.kill()
    tally.ack(str(i) for i in range(FIRST + WHILE_DOWN + AFTER))
    tally.saw(stored(server))
    tally.extra.update(position_write_failures=log.read_text(errors="replace").count(
        "disk buffer position could not be written"))
    figures = tally.report()
    assert figures["position_write_failures"], "the fault was not met: no position write failed"


def test_the_file_sink_cut_short_by_a_full_disk_writes_each_record_once_and_whole(
        tmp_path: Path, small_fs: Path) -> None:
    """The ``file`` sink's write cut short by a full disk left part of the batch and half a record in
    the file; the retry wrote the whole batch after it: the records before the cut came twice and
    the half record and the retry's first one made one line that is neither. Now the cut is undone
    before the retry."""
    import orjson
    from tests.agent.conftest import sink_retries

    from logharbor.agent.sinks.file import Config, FileSink
    from logharbor.agent.types import Ack, Encoded

    out = small_fs / "archive.ndjson"
    sink = FileSink("archive", Config.model_validate({
        "type": "file", "path": str(out), "retry_initial_secs": 0.05, "retry_max_secs": 0.2,
        "batch": {"timeout_secs": 0.05}}), tmp_path / "agent-data")
    sink.start()
    ballast = fill_to(small_fs, 64 * 1024)
    ids = [f"archived-{i}" for i in range(600)]  # ~120 KB: more than the disk has left
    payload = b"".join(orjson.dumps({"rid": rid, "message": "x" * 160}) + b"\n" for rid in ids)
    acks: list[Ack] = []
    ack = Ack(1, acks.append)
    before = sink_retries("archive")
    sink.submit(Encoded(payload, len(ids), ack))
    wait_for("a write cut short by the full disk", lambda: sink_retries("archive") > before, 60)
    ballast.unlink()
    wait_for("the batch written once there is room", lambda: ack.finished, 60)
    sink.close(5)
    tally = Tally("file sink: a write cut short by a full disk, then room again")
    tally.ack(ids)
    lines = out.read_bytes().split(b"\n")
    assert lines.pop() == b""
    whole = []
    for line in lines:
        try:
            whole.append(orjson.loads(line)["rid"])
        except orjson.JSONDecodeError:
            tally.extra["broken_lines"] = int(tally.extra.get("broken_lines", 0)) + 1  # type: ignore[call-overload]
    tally.saw(whole)
    tally.report()
    assert "broken_lines" not in tally.extra
