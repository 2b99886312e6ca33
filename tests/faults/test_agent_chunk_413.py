"""One chunk of a source larger than the server takes in one request, through a real agent process.

Fault: the server answers 413 to a batch of more records than the key's ``ingest_rate`` lets
through at once (``batch_over_rate``, documented as "the agent and the sdk split a 413 batch"),
and to a body over ``--max-body-mb``. The agent split a 413 batch into halves of its *items* only:
a batch of one item — one read block of a file (256 KiB of short lines is thousands of records),
one ALB object's 5,000-line chunk — was refused whole and dead-lettered, its checkpoint moved
past it: every record of the block acknowledged by the agent and lost.

Here an application wrote numbered lines (*acknowledged*: in the file the agent watches, read from
the beginning) before the agent starts, so its first read block is one large chunk; the agent's key
may send 1,000 records a second. Every line must be stored once.
"""

from __future__ import annotations

from pathlib import Path

from tests.agent.conftest import AgentProcess, write_config
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally, wait_for

LINES = 6000  # ~40 bytes each: one 256 KiB read block, so one chunk of ~6,000 records
RATE = 1000


def stored_seqs(server: ServerProcess) -> list[str]:
    with server.client(timeout=60) as client:
        r = client.post("/api/v1/query", json={"q": "_exists_:seq | fields seq", "limit": 4 * LINES,
                                               "since": "now-1d"})
        r.raise_for_status()
        return [str(row["seq"]) for row in r.json()["rows"]]


def test_a_chunk_over_the_keys_ingest_rate_is_split_not_refused(tmp_path: Path, server: ServerProcess) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "app.log").write_text("".join(f'{{"seq":{i},"msg":"line {i:06d}"}}\n' for i in range(LINES)))
    cfg = write_config(tmp_path / "agent.yaml", {
        "data_dir": str(tmp_path / "agent-data"), "metrics": {"port": 0},
        "sources": {"app": {"type": "file", "include": [str(logs / "app.log")], "parser": "json"}},
        "sinks": {"srv": {"type": "logharbor", "url": server.url,
                          "api_key": server.create_key("writer", ingest_rate=RATE),
                          "batch": {"timeout_secs": 0.2}, "retry_initial_secs": 0.1, "retry_max_secs": 1.0,
                          "dead_letter_path": str(tmp_path / "dead.ndjson")}}})
    log = tmp_path / "agent.log"
    agent = AgentProcess(cfg, log).start()
    try:
        # done when everything is stored, or when the agent gave records up (the old code)
        wait_for("every line stored, or records refused",
                 lambda: len(set(stored_seqs(server))) >= LINES or '"records rejected"' in log.read_text(),
                 timeout=180, interval=0.5)
        assert agent.stop() == 0
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.proc.kill()
    tally = Tally("one file block of more records than the key's ingest_rate (413 batch_over_rate)")
    tally.ack(str(i) for i in range(LINES))
    tally.saw(stored_seqs(server))
    tally.extra.update(ingest_rate=RATE)
    tally.report()
    assert not (tmp_path / "dead.ndjson").exists()
