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

pytestmark = pytest.mark.slow  # the query CLI as processes, one per case

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
    result = cli(corpus_url, "level:ERROR | stats count() as n by service", *WINDOW, "-o", "table")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("service" in line and "n" in line for line in lines[:4])
    checkout = next(line for line in lines if "checkout" in line)
    assert [cell.strip() for cell in checkout.strip("│ ").split("│")] == ["checkout", "2"]
    assert "4 rows" in result.stdout


def test_records_table_shows_message(corpus_url: str) -> None:
    result = cli(corpus_url, '"payment declined"', *WINDOW, "-o", "table", "--tz", "utc")
    assert result.returncode == 0, result.stderr
    assert "payment declined for order o-42" in result.stdout
    assert "timestamp (UTC)" in result.stdout and "2026-11-01 12:15:00.000" in result.stdout


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
    table = ["-o", "table", "--tz", "utc"]
    wide = cli(corpus_url, q, *WINDOW, *table)
    middle = cli(corpus_url, q, *WINDOW, *table, env={"COLUMNS": "40"})  # fits once `first` wraps
    narrow = cli(corpus_url, q, *WINDOW, *table, env={"COLUMNS": "30"})  # does not fit
    assert wide.returncode == middle.returncode == narrow.returncode == 0, narrow.stderr
    for out in (wide.stdout, middle.stdout):
        header = next(line for line in out.splitlines() if "level" in line)
        assert [c.strip() for c in header.strip("┃ ").split("┃")] == ["level", "n", "services", "first (UTC)"]
        assert "│ ERROR │ " in out  # short columns keep their width
    assert all(len(line) <= 40 for line in middle.stdout.splitlines())
    assert "┏" not in narrow.stdout
    blocks = [line for line in narrow.stdout.splitlines() if line.startswith("── ")]
    assert len(blocks) == 6 and "6 rows" in narrow.stdout
    assert any(line.split() == ["level", "ERROR"] for line in narrow.stdout.splitlines())
    assert all(len(line) <= 30 for line in narrow.stdout.splitlines())


# --- issue #26 item 9: output modes, the "shown of matched" footer, --limit 0, numbers, time zone


def test_a_pipe_gets_one_line_per_record_and_the_footer_on_stderr(corpus_url: str) -> None:
    """Without ``-o``, a pipe gets raw lines (as ``logcli``): ``| wc -l`` counts records even
    when a message has a newline, and the footer says "5 of 20" on stderr, out of the data."""
    result = cli(corpus_url, "*", *WINDOW, "--limit", "5", "--tz", "utc")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 5 and "┃" not in result.stdout
    assert lines[0] == "2026-11-01T12:19:00.000000Z INFO  worker job done in 42ms"
    assert result.stderr.startswith("5 of 20 records in ") and "--limit 0 for all of them" in result.stderr
    everything = cli(corpus_url, "*", *WINDOW, "--limit", "100", "--tz", "utc")
    assert len(everything.stdout.splitlines()) == 20  # a multi-line message stays one line
    assert everything.stderr.startswith("20 records in ")
    quiet = cli(corpus_url, "*", *WINDOW, "--limit", "5", "-q")
    assert quiet.stderr == "" and len(quiet.stdout.splitlines()) == 5


def test_limit_0_streams_every_match(corpus_url: str) -> None:
    raw = cli(corpus_url, "*", *WINDOW, "--limit", "0")
    assert raw.returncode == 0, raw.stderr
    assert len(raw.stdout.splitlines()) == 20 and raw.stderr.startswith("20 records in ")
    ndjson = cli(corpus_url, "*", *WINDOW, "--limit", "0", "-o", "ndjson")
    assert sorted(json.loads(line)["rid"] for line in ndjson.stdout.splitlines()) == \
        sorted(f"r{n:02}" for n in range(1, 21))
    rows = list(csv.DictReader(io.StringIO(cli(corpus_url, "*", *WINDOW, "--limit", "0", "-o", "csv").stdout)))
    assert len(rows) == 20 and {json.loads(r["attributes"])["rid"] for r in rows} == {f"r{n:02}" for n in range(1, 21)}
    refused = cli(corpus_url, "*", *WINDOW, "--limit", "0", "-o", "json")
    assert refused.returncode == 2 and "-o ndjson" in refused.stderr
    negative = cli(corpus_url, "*", *WINDOW, "--limit", "-1")
    assert negative.returncode == 2 and "--limit must be 0" in negative.stderr


def test_a_closed_pipe_is_not_an_error(corpus_url: str) -> None:
    """``logharbor query … | head -1`` exits 0 and prints nothing on stderr, streamed or not."""
    for limit in ("0", "10"):
        for output in ("raw", "csv", "ndjson", "table"):
            proc = subprocess.Popen([sys.executable, "-m", "logharbor.cli.query", "*", *WINDOW, "--limit", limit,
                                     "-o", output, "-q", "--server", corpus_url],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            assert proc.stdout is not None and proc.stderr is not None
            proc.stdout.readline()
            proc.stdout.close()  # as `head -1` does
            err = proc.stderr.read()
            assert proc.wait(timeout=60) == 0, (limit, output, err)
            assert err == b"", (limit, output, err)


def test_numbers_right_aligned_and_rounded_per_column(corpus_url: str) -> None:
    result = cli(corpus_url, "* | stats count() as n, avg(n) as mean by service", *WINDOW, "-o", "table")
    assert result.returncode == 0, result.stderr
    worker = next(line for line in result.stdout.splitlines() if "worker" in line)
    cells = worker.strip("│").split("│")
    assert cells[1] == " 3 " and cells[2] == " 8.17 "  # 24.5 / 3, two decimals, right-aligned
    api = next(line for line in result.stdout.splitlines() if "│ api " in line)
    assert api.split("│")[2].endswith(" 3 ")
    raw = cli(corpus_url, "* | stats avg(n) as mean by service", *WINDOW, "-o", "raw")
    assert "service=worker mean=8.166666666666666" in raw.stdout  # raw lines round nothing


def test_times_in_the_chosen_zone(corpus_url: str) -> None:
    paris = cli(corpus_url, "*", *WINDOW, "--limit", "1", "--tz", "Europe/Paris")
    assert paris.stdout.startswith("2026-11-01T13:19:00.000000+01:00 INFO")
    table = cli(corpus_url, "*", *WINDOW, "--limit", "1", "-o", "table", env={"LOGHARBOR_TZ": "America/New_York"})
    assert "timestamp (America/New_York)" in table.stdout and "2026-11-01 07:19:00.000" in table.stdout
    data = cli(corpus_url, "*", *WINDOW, "--limit", "1", "-o", "ndjson", "--tz", "Europe/Paris")
    assert json.loads(data.stdout)["timestamp"] == "2026-11-01T12:19:00.000000Z"  # data stays UTC
    wrong = cli(corpus_url, "*", *WINDOW, "--tz", "Mars/Olympus")
    assert wrong.returncode == 2 and "not a time zone" in wrong.stderr


@pytest.mark.parametrize("columns", [80, 200])
def test_a_terminal_gets_a_table_that_fits(corpus_url: str, columns: int) -> None:
    from tests.cli.terminal import in_terminal

    run = in_terminal("query", "*", *WINDOW, "--limit", "5", "--tz", "utc", "--server", corpus_url,
                      columns=columns)
    assert run.code == 0, run.out
    text = run.text
    assert "┃ timestamp (UTC)" in text and "│ 2026-11-01 12:19:00.000 │ INFO" in text
    assert all(len(line) <= columns for line in text.splitlines()), text
    assert "5 of 20 records in " in text
