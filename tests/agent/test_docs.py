"""docs/agent.md and docs/reliability.md name only metrics the agent exposes, and the state files
table names the files the agent writes."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import generate_latest

from logharbor.agent import telemetry

ROOT = Path(__file__).resolve().parents[2]


def test_every_agent_metric_in_the_docs_exists() -> None:
    m = telemetry.METRICS  # touch every labelled family once so it is exposed
    for family in (m.buffer_corrupt_entries, m.buffer_corrupt_bytes, m.buffer_torn_bytes,
                   m.buffer_quarantine_files, m.buffer_bytes, m.buffer_events, m.records_sent,
                   m.batches_sent, m.bytes_sent, m.retries, m.rejected, m.dropped):
        family.labels("docs")
    for family in (m.lines_read, m.bytes_read, m.files_open, m.checkpoints, m.alb_objects, m.alb_late,
                   m.alb_failed, m.alb_known, m.connections_refused, m.lines_truncated):
        family.labels("docs")
    m.state_damaged.labels("checkpoint")
    m.filtered.labels("grep")
    m.file_lag.labels("docs", "/x")
    m.rotations.labels("docs", "copytruncate")
    m.dropped_bytes.labels("docs", "rotate_wait")
    exposed = set(re.findall(r"^(logharbor_agent_\w+?)(?:\{| )", generate_latest(m.registry).decode(), re.M))
    for doc in ("agent.md", "reliability.md"):
        named = set(re.findall(r"logharbor_agent_\w+", (ROOT / "docs" / doc).read_text()))
        named = {n for n in named if not n.endswith("_")}
        counters = {n.removesuffix("_total") for n in exposed}  # a counter may be named without it
        missing = named - exposed - counters
        assert not missing, f"docs/{doc} names metrics the agent does not expose: {sorted(missing)}"
