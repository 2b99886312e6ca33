"""``logharbor query`` as a real subprocess against a real HTTP process on loopback."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
WINDOW = ["--from", "2026-11-01T12:00:00Z", "--to", "2026-11-01T12:20:00Z"]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def corpus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = _free_port()
    data = tmp_path_factory.mktemp("cli")
    log = open(data / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, str(HERE / "corpus_server.py"), str(data), str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError((data / "server.log").read_text())
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("corpus server did not start")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def cli(url: str | None, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOGHARBOR_")}
    full_env.update({"COLUMNS": "200", **(env or {})})
    server = [] if url is None else ["--server", url]
    return subprocess.run([sys.executable, "-m", "logharbor.cli.query", *args, *server],
                          capture_output=True, text=True, env=full_env, timeout=120)


def test_table_output(corpus_url: str) -> None:
    result = cli(corpus_url, "level:ERROR | stats count() as n by service", *WINDOW)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("service" in line and "n" in line for line in lines[:4])
    checkout = next(line for line in lines if "checkout" in line)
    assert [cell.strip() for cell in checkout.strip("│ ").split("│")] == ["checkout", "2"]
    assert "4 rows" in result.stdout


def test_records_table_shows_message(corpus_url: str) -> None:
    result = cli(corpus_url, '"payment declined"', *WINDOW)
    assert result.returncode == 0, result.stderr
    assert "payment declined for order o-42" in result.stdout
    assert "2026-11-01T12:15:00.000000Z" in result.stdout


def test_json_output(corpus_url: str) -> None:
    result = cli(corpus_url, "service:worker | fields message, n", *WINDOW, "--output", "json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["columns"] == ["message", "n"]
    assert answer["rows"] == [{"message": "job done in 42ms", "n": 7.5}, {"message": "tick", "n": 12},
                              {"message": "tick", "n": 5}]


def test_ndjson_and_limit(corpus_url: str) -> None:
    result = cli(corpus_url, "*", *WINDOW, "--limit", "3", "-o", "ndjson")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["rid"] for r in rows] == ["r20", "r19", "r18"]


def test_csv_output(corpus_url: str) -> None:
    result = cli(corpus_url, "* | top 2 service", *WINDOW, "-o", "csv")
    assert result.returncode == 0, result.stderr
    assert list(csv.reader(io.StringIO(result.stdout))) == [["service", "count"], ["checkout", "4"],
                                                            ["api", "3"]]


def test_server_from_environment(corpus_url: str) -> None:
    result = cli(None, "* | stats count()", *WINDOW, "-o", "json", env={"LOGHARBOR_SERVER": corpus_url})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["rows"] == [{"count()": 20}]


def test_query_error_is_one_line_and_exit_1(corpus_url: str) -> None:
    result = cli(corpus_url, "status:")
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first == "logharbor query: query_syntax: expected a value after 'status:' at 7"
    assert result.stdout == ""


def test_unreachable_server_exit_2() -> None:
    result = cli(f"http://127.0.0.1:{_free_port()}", "*")
    assert result.returncode == 2
    assert result.stderr.startswith("logharbor query: cannot reach the server at http://127.0.0.1:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_narrow_terminal_never_crops_or_squeezes_columns(corpus_url: str) -> None:
    """Short values (ids, counts) keep their width; when the columns cannot fit, each row is a
    block of ``name  value`` lines rather than a table with columns cut off."""
    q = "* | stats count() as n, count_uniq(service) as services, min(timestamp) as first by level"
    wide = cli(corpus_url, q, *WINDOW)
    middle = cli(corpus_url, q, *WINDOW, env={"COLUMNS": "40"})  # fits once `first` wraps
    narrow = cli(corpus_url, q, *WINDOW, env={"COLUMNS": "30"})  # does not fit
    assert wide.returncode == middle.returncode == narrow.returncode == 0, narrow.stderr
    for out in (wide.stdout, middle.stdout):
        header = next(line for line in out.splitlines() if "level" in line)
        assert [c.strip() for c in header.strip("┃ ").split("┃")] == ["level", "n", "services", "first"]
        assert "│ ERROR │ " in out  # short columns keep their width
    assert all(len(line) <= 40 for line in middle.stdout.splitlines())
    assert "┏" not in narrow.stdout
    blocks = [line for line in narrow.stdout.splitlines() if line.startswith("── ")]
    assert len(blocks) == 6 and "6 rows" in narrow.stdout
    assert any(line.split() == ["level", "ERROR"] for line in narrow.stdout.splitlines())
    assert all(len(line) <= 30 for line in narrow.stdout.splitlines())
