"""The encoder, the transforms, and a whole agent in-process with its /metrics."""

from __future__ import annotations

import threading
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.agent.conftest import free_port, wait_for
from tests.conftest import examples

from logharbor.agent.config import parse_config
from logharbor.agent.pipeline import Agent, encode
from logharbor.agent.transforms import enrich, grep, redact, sample
from logharbor.agent.types import Ack, Chunk

META = {"source": "file", "host": "h", "file": "/var/log/a.log"}


def chunk(lines: list[str], records: list[dict[str, Any]] | None = None, **meta: Any) -> Chunk:
    return Chunk(list(lines), Ack(1), 0, {**META, **meta}, records, 1_700_000_000_000_000_000)


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"),
                        min_size=1), min_size=1, max_size=20))
def test_fast_path_encoding_is_exactly_one_json_object_per_line(lines: list[str]) -> None:
    out = encode(chunk(lines))
    decoded = [orjson.loads(x) for x in out.payload.split(b"\n")[:-1]]
    assert out.count == len(lines) and out.payload.endswith(b"\n")
    assert decoded == [{"timestamp": 1_700_000_000_000_000_000, **META, "message": line} for line in lines]


_keys = st.sampled_from(["source", "host", "file", "service", "message", "n", "env", "ts"])
_values = st.one_of(st.integers(-5, 5), st.text(max_size=5), st.none(), st.booleans())


@settings(max_examples=examples(300), deadline=None)
@given(st.dictionaries(_keys, _values), st.lists(st.dictionaries(_keys, _values), max_size=6))
def test_record_path_equals_merging_shared_fields_under_each_record(meta: dict[str, Any],
                                                                     records: list[dict[str, Any]]) -> None:
    c = Chunk([], Ack(1), 0, dict(meta), [dict(r) for r in records], 7)
    out = encode(c)
    decoded = [orjson.loads(x) for x in out.payload.split(b"\n")[:-1]] if records else []
    want = []
    for r in records:
        merged = {**meta, **r}
        if "ts" not in r:
            merged["timestamp"] = 7
        for key in meta.keys() & r.keys() - {"source"}:  # a shared value the record overrode: kept
            if r[key] != meta[key] or type(r[key]) is not type(meta[key]):
                merged[f"{key}_agent"] = meta[key]
        want.append(merged)
    assert decoded == want and out.count == len(records)


def test_record_path_keeps_the_records_own_fields_over_shared_ones() -> None:
    out = encode(chunk([], [{"message": "x", "source": "nginx", "time": "2026-01-01T00:00:00Z", "host": "pod-7"},
                            {"message": "y", "host": "h"}]))
    a, b = (orjson.loads(x) for x in out.payload.splitlines())
    assert a["source"] == "nginx" and "timestamp" not in a and a["host"] == "pod-7"
    assert a["host_agent"] == "h"  # the shared value the record overrode, kept beside it
    assert "source_agent" not in a  # the source type is a default a parser's source replaces
    assert b["source"] == "file" and b["timestamp"] == 1_700_000_000_000_000_000
    assert b["host"] == "h" and "host_agent" not in b  # equal: one copy


def test_grep_include_exclude_on_raw_lines_and_on_fields() -> None:
    g = grep.Grep(grep.Config(type="grep", include={"message": "ERROR|WARN"}, exclude={"message": "healthz"}))
    c = g(chunk(["ERROR a", "INFO b", "WARN /healthz", "WARN c"]))
    assert c.records is None and c.lines == ["ERROR a", "WARN c"]  # raw lines stay raw
    g2 = grep.Grep(grep.Config(type="grep", include={"http.status": "^5"}))
    c2 = g2(chunk([], [{"http": {"status": 502}}, {"http": {"status": 200}}, {"message": "no http"}]))
    assert c2.records == [{"http": {"status": 502}}]
    g3 = grep.Grep(grep.Config(type="grep", include={"file": "a\\.log$"}))
    assert len(g3(chunk(["x", "y"])).records or []) == 2  # shared fields are visible


def test_redact_masks_text_and_records() -> None:
    r = redact.Redact(redact.Config(type="redact", ip=True))
    c = r(chunk(["mail bob@example.com from 10.1.2.3 card 4111 1111 1111 1111", "clean"]))
    assert "bob@example.com" not in c.lines[0] and "10.1.2.3" not in c.lines[0]
    assert "4111 1111 1111 1111" not in c.lines[0] and c.lines[1] == "clean"
    c2 = r(chunk([], [{"message": "x", "password": "hunter2", "user": {"email": "a@b.co"}}]))
    rec = (c2.records or [])[0]
    assert rec["password"] != "hunter2" and "a@b.co" not in str(rec)


def test_sample_is_consistent_by_trace_id_and_per_level() -> None:
    s = sample.Sample(sample.Config(type="sample", rates={"DEBUG": 0.5, "info": 0.0}))
    traces = [f"{i:032x}" for i in range(2000)]
    records = [{"level": "debug", "trace_id": t} for t in traces] + [{"level": "ERROR"}, {"level": "INFO"}]
    kept = s(chunk([], [dict(r) for r in records])).records or []
    kept_traces = {r["trace_id"] for r in kept if "trace_id" in r}
    assert 800 < len(kept_traces) < 1200
    assert {"level": "ERROR"} in kept and {"level": "INFO"} not in kept
    again = s(chunk([], [dict(r) for r in records])).records or []
    assert {r["trace_id"] for r in again if "trace_id" in r} == kept_traces  # same decision every time


def test_sample_reads_levels_as_the_server_does() -> None:
    """pino's numbers, another level key, a logger dialect's own key (issue #22): the sampler and
    the server agree on a record's level, so DEBUG sampling drops pino's 20, not its 50."""
    s = sample.Sample(sample.Config(type="sample", rates={"DEBUG": 0.0}, default_level="INFO"))
    dropped = [{"level": 20, "pid": 1, "hostname": "h", "msg": "pino debug"}, {"severity": "debug"},
               {"@t": "2026-11-25T10:00:00Z", "@mt": "x", "@l": "Debug"}, {"levelname": "DEBUG"},
               {"MESSAGE": "m", "PRIORITY": "7", "PROGRAM": "app"}, {"severity_number": 5}]
    kept = [{"level": 50, "pid": 1, "hostname": "h", "msg": "pino error"}, {"level": 30}, {"message": "none"},
            {"severity": "error"}]
    out = s(chunk([], [dict(r) for r in dropped + kept])).records or []
    assert out == kept


def test_enrich_static_host_and_env(monkeypatch: Any) -> None:
    monkeypatch.setenv("POD_NAME", "api-7d9f")
    e = enrich.Enrich(enrich.Config(type="enrich", fields={"env": "prod", "service": "api"},
                                    env_vars={"k8s.pod": "POD_NAME", "missing": "NOPE_NOT_SET"}))
    c = e(chunk(["a"]))
    assert c.records is None  # stays on the fast path
    rec = orjson.loads(encode(c).payload)
    assert rec["env"] == "prod" and rec["k8s.pod"] == "api-7d9f" and "missing" not in rec
    c2 = e(chunk([], [{"message": "b", "service": "own"}]))
    own = orjson.loads(encode(c2).payload)
    assert own["service"] == "own" and own["service_agent"] == "api"  # the record's wins, both kept


def test_agent_in_process_ships_a_file_and_exposes_metrics(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("".join(f"user=u{i} level=info msg=hello{i}\n" for i in range(1000)))
    port = free_port()
    cfg = parse_config({
        "data_dir": str(tmp_path / "data"), "metrics": {"port": port},
        "sources": {"app": {"type": "file", "include": [str(log)], "parser": "logfmt",
                            "checkpoint_interval_secs": 0.1}},
        "transforms": [{"type": "grep", "exclude": {"msg": "^hello1"}}],
        "sinks": {"out": {"type": "file", "path": str(tmp_path / "out.ndjson"), "batch": {"timeout_secs": 0.1}}},
    })
    agent = Agent(cfg)
    stop = threading.Event()
    agent.start(stop)
    out = tmp_path / "out.ndjson"
    expected = 1000 - 111  # hello1, hello10-19, hello100-199
    assert wait_for(lambda: out.exists() and len(out.read_bytes().splitlines()) >= expected, 20)
    names = ('logharbor_agent_lines_read_total{source="app"}', 'logharbor_agent_batches_sent_total{sink="out"}',
             "logharbor_agent_file_lag_bytes", 'logharbor_agent_buffer_bytes{sink="out"}',
             "logharbor_agent_retries_total", 'logharbor_agent_records_filtered_total{transform="grep"}')

    def metrics() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return r.read().decode()

    assert wait_for(lambda: all(name in metrics() for name in names), 20), [n for n in names if n not in metrics()]
    stop.set()
    agent.shutdown()
    records = [orjson.loads(x) for x in out.read_bytes().splitlines()]
    assert len(records) == expected and records[0]["user"] == "u0"
    ckpt = orjson.loads((tmp_path / "data" / "checkpoints" / "app.json").read_bytes())
    assert ckpt["files"][0]["offset"] == log.stat().st_size


def test_stdin_source_in_a_real_process_until_end_of_input(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.agent.conftest import ROOT, write_config

    out = tmp_path / "out.ndjson"
    cfg = write_config(tmp_path / "agent.yaml", {
        "data_dir": str(tmp_path / "data"), "metrics": {"port": 0},
        "sources": {"in": {"type": "stdin", "parser": "json"}},
        "sinks": {"f": {"type": "file", "path": str(out), "batch": {"timeout_secs": 0.1}}}})
    proc = subprocess.Popen([sys.executable, "-m", "logharbor.agent", "-c", str(cfg)], cwd=ROOT,
                            stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    proc.stdin.write(b"".join(b'{"n": %d}\n' % i for i in range(500)) + b'{"n": 500}')
    proc.stdin.close()
    assert wait_for(lambda: out.exists() and len(out.read_bytes().splitlines()) == 501, 20)
    assert proc.wait(60) == 0  # it exits by itself at the end of its input, everything delivered
    assert [orjson.loads(x)["n"] for x in out.read_bytes().splitlines()] == list(range(501))


def test_stdin_joins_cri_partial_lines_from_a_container_runtime(tmp_path: Path) -> None:
    import subprocess
    import sys

    from tests.agent.conftest import ROOT, write_config

    out = tmp_path / "out.ndjson"
    cfg = write_config(tmp_path / "agent.yaml", {
        "data_dir": str(tmp_path / "data"), "metrics": {"port": 0},
        "sources": {"pod": {"type": "stdin", "multiline": {"cri": True}}},
        "sinks": {"f": {"type": "file", "path": str(out), "batch": {"timeout_secs": 0.1}}}})
    proc = subprocess.Popen([sys.executable, "-m", "logharbor.agent", "-c", str(cfg)], cwd=ROOT,
                            stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    t = "2026-11-25T01:00:00.000000001Z"
    proc.stdin.write(f"{t} stdout P first half, \n{t} stdout F second half\n{t} stderr F alone\n".encode())
    proc.stdin.close()
    assert wait_for(lambda: out.exists() and len(out.read_bytes().splitlines()) == 2, 20)
    assert proc.wait(60) == 0  # it exits by itself at the end of its input, everything delivered
    assert [orjson.loads(x)["message"] for x in out.read_bytes().splitlines()] == [
        "first half, second half", "alone"]


@pytest.mark.parametrize("lines", [[","], ["x", ","], ['a",', "b"], ['say "hi",', '","', "plain"]])
def test_regression_fast_path_with_a_comma_line_or_a_quote_before_a_comma(lines: list[str]) -> None:
    """The fast path split on '","', which a lone ',' line or a line ending in '",' also produce."""
    out = encode(chunk(lines))
    decoded = [orjson.loads(x) for x in out.payload.split(b"\n")[:-1]]
    assert [d["message"] for d in decoded] == lines and out.count == len(lines)
