"""A real agent on NGINX combined (and JSON) lines ships the same bytes with its compiled chunk path
(``formats/nginx_chunk.py``) as with the Python path (``LOGHARBOR_PURE_PYTHON=1``).

Two agent processes read the same file — clean lines, lines the C code hands back to Python
(UTF-8, ``\\x22``, a status of 19 digits) and a line that does not match — to receivers, which
keep every line as received. Every record must arrive, and both sets must be equal byte for byte
(but for the receive time an unparsed line gets). The same holds for a file of lines made to hurt
the C code (control bytes, invalid UTF-8, every prefix of a line, long fields, odd numbers and times).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.agent.conftest import log_events, wait_for

from logharbor.formats.nginx import format_nginx_line
from logharbor.formats.nginx_chunk import native_module

pytestmark = pytest.mark.skipif(native_module() is None,
                                reason="logharbor._native.nginx_encode is not built (scripts/build_native.py)")
LINES = 3000


def _lines(fmt: str) -> list[str]:
    out = []
    for i in range(LINES):
        status = (200, 404, 503)[i % 3]
        line = format_nginx_line({
            "remote_addr": f"10.0.{i % 256}.7", "remote_user": "bob" if i % 5 == 0 else None,
            "time_local": 1_793_534_400_000_000_000 + i * 250_000_000, "request": f"GET /p/{i} HTTP/1.1",
            "time_iso8601": 1_793_534_400_000_000_000 + i * 250_000_000, "request_time": i % 7 / 1000,
            "status": status, "body_bytes_sent": i, "http_referer": "-",
            "http_user_agent": "caf\u00e9/1.0" if i % 97 == 0 else 'a "q" b' if i % 89 == 0 else "curl/8.5.0",
        }, fmt)
        if i % 211 == 0:  # 19 digits: a parse_error (not JSON, in the JSON format)
            line = line.replace(f'" {status} ', '" 0200000000000000000 ').replace(
                f'"status":{status},', '"status":0200000000000000000,')
        out.append("not an access line" if i % 499 == 0 else line)
    return out


def _received(path: Path) -> list[bytes]:
    out = []
    for line in path.read_bytes().splitlines():
        rec = orjson.loads(line)
        if "parse_error" in rec:
            rec.pop("timestamp")  # the chunk's receive time: differs between the two agents
            line = orjson.dumps(rec)
        out.append(line)
    return sorted(out)


@pytest.mark.parametrize("fmt", ["combined", "json"])
def test_compiled_and_python_paths_ship_the_same_bytes(
        tmp_path: Path, receiver_factory: Any, agent_factory: Any, monkeypatch: pytest.MonkeyPatch,
        fmt: str) -> None:
    log = tmp_path / "logs" / "access.log"
    log.parent.mkdir()
    log.write_text("\n".join(_lines(fmt)) + "\n")
    outs = []
    for name, pure in (("compiled", ""), ("python", "1")):
        monkeypatch.setenv("LOGHARBOR_PURE_PYTHON", pure)
        rec = receiver_factory()
        agent = agent_factory({
            "data_dir": str(tmp_path / f"data-{name}"), "metrics": {"port": 0},
            "sources": {"nginx": {"type": "file", "include": [str(log)], "read_block_bytes": 65536,
                                  "parser": {"type": "nginx", "format": fmt}, "poll_interval_secs": 0.05}},
            "sinks": {"out": {"type": "logharbor", "url": rec.url, "batch": {"timeout_secs": 0.1}}}}, name=name)
        assert wait_for(lambda r=rec: r.stats()["lines"] >= LINES, 60), agent.log()[-2000:]
        assert agent.stop() == 0
        compiled_path = log_events(agent, "source parses and encodes in C (nginx chunk path)")
        assert bool(compiled_path) == (name == "compiled"), agent.log()[-2000:]
        assert rec.stats()["lines"] == LINES
        outs.append(_received(rec.out))
    assert outs[0] == outs[1]
    assert sum(b'"user_agent":"caf\xc3\xa9/1.0"' in line for line in outs[0]) == len(range(0, LINES, 97)) - 1
    unparsed = {i for i in range(LINES) if i % 499 == 0 or i % 211 == 0}  # no match, 19 digits
    assert sum(b"parse_error" in line for line in outs[0]) == len(unparsed)


def _hostile() -> bytes:
    """Clean lines between lines anyone can make NGINX write (a request path, a user agent, a
    referer are the client's): NUL, CR, quotes, backslashes, invalid UTF-8, a 32 KiB user
    agent (longer than a read block: joined by the source, up to max_line_bytes),
    every prefix of a line, numbers and times out of range."""
    good = _lines("combined")[1].encode()
    bad = [good.replace(b"curl/8.5.0", bytes([c])) for c in range(256) if c != 0x0A]
    bad += [good[:i] for i in range(len(good))]
    bad += [good.replace(b"curl/8.5.0", b"A" * (1 << 15)), good.replace(b"/p/1", b"/\xff\xfe\x00\\\"\r"),
            good.replace(b" 404 ", b" -404 "), good.replace(b" 404 ", b" " + b"9" * 40 + b" "),
            good.replace(b" 404 1 ", b" 404 -1 "), good.replace(b"12:00:00 +0000", b"24:60:61 +9999"),
            good.replace(b"01/Nov", b"31/Feb"), good.replace(b"01/Nov/2026:12", b"31/Dec/2026:23:59:60"),
            b'"', b"[", b"\xff"]
    return b"\n".join(x for line in bad for x in (good, line)) + b"\n" + good + b"\n"


def test_hostile_lines_ship_the_same_bytes(tmp_path: Path, receiver_factory: Any, agent_factory: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled path neither stops the agent nor changes a record on lines made to hurt it."""
    log = tmp_path / "logs" / "access.log"
    log.parent.mkdir()
    data = _hostile()
    log.write_bytes(data)
    outs = []
    for name, pure in (("python", "1"), ("compiled", "")):
        monkeypatch.setenv("LOGHARBOR_PURE_PYTHON", pure)
        rec = receiver_factory()
        agent = agent_factory({
            "data_dir": str(tmp_path / f"data-{name}"), "metrics": {"port": 0},
            "sources": {"nginx": {"type": "file", "include": [str(log)], "read_block_bytes": 65536,
                                  "parser": {"type": "nginx", "format": "combined"}, "poll_interval_secs": 0.05}},
            "sinks": {"out": {"type": "logharbor", "url": rec.url, "batch": {"timeout_secs": 0.1}}}}, name=name)
        # every line but the empty one (the file source skips blank lines)
        assert wait_for(lambda r=rec: r.stats()["lines"] >= data.count(b"\n") - 1, 60), agent.log()[-2000:]
        assert agent.stop() == 0
        assert bool(log_events(agent, "source parses and encodes in C (nginx chunk path)")) == (name == "compiled")
        assert rec.stats()["lines"] == data.count(b"\n") - 1
        outs.append(_received(rec.out))
    assert outs[0] == outs[1]
