"""A real agent on NGINX combined (and JSON) lines ships the same bytes with its compiled chunk path
(``formats/nginx_chunk.py``) as with the Python path (``LOGHARBOR_PURE_PYTHON=1``).

Two agent processes read the same file — clean lines, lines the C code hands back to Python
(UTF-8, ``\\x22``, a status of 19 digits) and a line that does not match — to receivers, which
keep every line as received. Every record must arrive, and both sets must be equal byte for byte
(but for the receive time an unparsed line gets).
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
