"""``logharbor server``'s settings have one source, ServerConfig: one flag per field (the older
names and units kept), ``LOGHARBOR_*`` variables, ``--config server.yaml``, one precedence rule
(flags > environment > file > defaults), cross-field checks wherever a value came from, clear
errors (exit 2, no traceback), and docs/server.md's table in step with all of it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from tests.conftest import ROOT, ServerProcess
from typer.testing import CliRunner

from logharbor.cli import server as server_cli
from logharbor.cli.main import app
from logharbor.server.config import ServerConfig

MiB = 1024 * 1024
COMMAND: Any = typer.main.get_command(app).commands["server"]  # type: ignore[attr-defined]
#: the flags `logharbor server` had before its options were generated (tests, docs and deploy
#: files use them): every one must keep working
OLD_FLAGS = """--data-dir --host --port --wal-max-mb --wal-segment-mb --batch-max-age --shutdown-timeout
--max-body-mb --max-line-kb --pause-batcher --no-fsync --no-patterns --patterns-max-clusters
--patterns-backfill-rate --ingest-workers --encryption-key-file --secrets-key-file --tls-cert --tls-key
--no-auth --metrics-public --meta-url --meta --store --ingest-rate --syslog-udp --syslog-tcp --syslog-tls
--syslog-timezone --syslog-timezones --forward --forward-tls --forward-shared-key --listener-allow
--listener-tls-cert --listener-tls-key --cold-storage --cold-endpoint --retention-interval --disk-max-mb
--disk-min-free-mb --channel-allow-hosts --channel-deny-hosts --tail-max-clients --tail-max-pending-mb
--query-timeout --query-max-memory-mb --query-export-timeout --query-concurrency
--query-per-key-concurrency --query-per-key-queue --query-max-clauses --max-request-kb --max-header-kb
--max-headers --header-timeout --body-timeout --hsts-max-age --no-api-docs --idempotency-window
--idempotency-max-keys --log-level""".split()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[ServerConfig]:
    """The configs ``logharbor server`` would serve with (the server itself is not started here;
    test_a_real_server_takes_its_settings_from_all_three_sources does that)."""
    seen: list[ServerConfig] = []
    monkeypatch.setattr(server_cli, "run_server", seen.append)
    for name in list(__import__("os").environ):
        if name.startswith("LOGHARBOR_"):
            monkeypatch.delenv(name)
    return seen


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, ["server", *args], env=env)


def test_every_field_has_exactly_one_flag_and_the_old_names_still_work() -> None:
    options = [p for p in COMMAND.params if p.param_type_name == "option" and p.name not in ("help",)]
    fields = [p.name for p in options if p.name != "config"]
    assert sorted(fields) == sorted(ServerConfig.model_fields), "one option per field, no other"
    names = [n for p in options for n in (*p.opts, *p.secondary_opts)]
    assert len(names) == len(set(names))
    missing = [flag for flag in OLD_FLAGS if flag not in names]
    assert not missing, missing


def test_flags_beat_the_environment_which_beats_the_file(tmp_path: Path, started: list[ServerConfig]) -> None:
    file = tmp_path / "server.yaml"
    file.write_text("port: 9001\nhost: 0.0.0.0\nwal_max_bytes: 2GiB\nmax_records_per_request: 7\n"
                    "listener_allow: [10.0.0.0/8, 192.168.0.0/16]\nidempotency_window_s: 90m\n"
                    "auth: false\nquery_timeout_s: 45\n")
    env = {"LOGHARBOR_PORT": "9002", "LOGHARBOR_MAX_RECORDS_PER_REQUEST": "8",
           "LOGHARBOR_LISTENER_ALLOW": "10.1.0.0/16,::1/128", "LOGHARBOR_AUTH": "true"}
    done = invoke("--config", str(file), "--port", "9003", "--no-auth", env=env)
    assert done.exit_code == 0, done.output
    (config,) = started
    assert config.port == 9003  # flag > env > file
    assert config.auth is False  # a --no-x flag beats LOGHARBOR_AUTH=true
    assert config.max_records_per_request == 8  # env > file
    assert config.listener_allow == ["10.1.0.0/16", "::1/128"]  # env lists are comma-separated
    assert config.host == "0.0.0.0" and config.wal_max_bytes == 2 * 1024**3  # file > default
    assert config.idempotency_window_s == 5400 and config.query_timeout_s == 45
    assert config.batch_max_age_s == 0.5  # default
    started.clear()
    done = invoke("--config", str(file), "--auth", env={"LOGHARBOR_CONFIG": ""})
    assert done.exit_code == 0 and started[0].auth is True and started[0].port == 9001, done.output


def test_unit_flags_keep_their_units(started: list[ServerConfig]) -> None:
    done = invoke("--wal-max-mb", "3", "--wal-segment-mb", "2", "--max-body-mb", "5", "--max-line-kb", "7",
                  "--tail-max-pending-mb", "9", "--disk-max-mb", "11", "--disk-min-free-mb", "0",
                  "--query-max-memory-mb", "32", "--max-request-kb", "4", "--max-header-kb", "8",
                  "--batch-max-bytes", "1MiB", "--max-field-bytes", "100", "--idempotency-window", "0",
                  "--query-timeout", "1.5", "--hsts-max-age", "1d", "--syslog-timezones",
                  "10.0.0.0/8=Europe/Berlin, 10.2.0.0/16=UTC", "--meta", "sqlite:////tmp/x.db")
    assert done.exit_code == 0, done.output
    (c,) = started
    assert (c.wal_max_bytes, c.wal_segment_bytes, c.max_body_bytes, c.max_line_bytes) == (3 * MiB, 2 * MiB,
                                                                                       5 * MiB, 7 * 1024)
    assert (c.tail_max_pending_bytes, c.disk_max_bytes, c.disk_min_free_bytes) == (9 * MiB, 11 * MiB, 0)
    assert (c.query_max_memory_bytes, c.max_request_bytes, c.max_header_bytes) == (32 * MiB, 4096, 8192)
    assert (c.batch_max_bytes, c.max_field_bytes, c.idempotency_window_s) == (MiB, 100, 0)
    assert (c.query_timeout_s, c.hsts_max_age_s) == (1.5, 86400)
    assert c.syslog_timezones == ["10.0.0.0/8=Europe/Berlin", "10.2.0.0/16=UTC"]
    assert c.meta_url == "sqlite:////tmp/x.db"
    started.clear()
    assert invoke("--disk-max-mb", "0").exit_code == 0 and started[0].disk_max_bytes is None  # 0: no limit


@pytest.mark.parametrize(("args", "env", "file", "words"), [
    (["--tls-cert", "/c.pem"], {}, "", ["tls_cert and tls_key", "--tls-key", "go together"]),
    ([], {"LOGHARBOR_TLS_KEY": "/k.pem"}, "", ["tls_cert and tls_key"]),  # checked whatever the source
    (["--forward-tls", "--forward", ":24224"], {}, "", ["--listener-tls-cert"]),
    ([], {}, "syslog_tls: ':6514'\n", ["syslog_tls", "listener_tls_cert"]),
    (["--port", "70000"], {}, "", ["port (--port, LOGHARBOR_PORT)", "less than or equal to 65535"]),
    ([], {"LOGHARBOR_WAL_MAX_BYTES": "lots"}, "", ["wal_max_bytes (--wal-max-mb, LOGHARBOR_WAL_MAX_BYTES)"]),
    (["--idempotency-window", "5x"], {}, "", ["idempotency_window_s (--idempotency-window", "no duration"]),
    ([], {}, "portt: 1\n", ["portt: no such setting"]),
    ([], {}, "- a list\n", ["--config", "must be a mapping of settings"]),
    ([], {}, "port: [\n", ["--config", "not valid YAML"]),
    (["--syslog-timezones", "10.0.0.0/8=Mars/Base"], {}, "", ["Mars/Base"]),
    (["--channel-deny-hosts", "not a host!"], {}, "", ["--channel-deny-hosts"]),
    (["--store", "mysql://x"], {}, "", ["store (--store, LOGHARBOR_STORE)"]),
    (["--log-level", "loud"], {}, "", ["log_level (--log-level"]),
])
def test_bad_settings_are_refused_naming_them(tmp_path: Path, started: list[ServerConfig], args: list[str],
                                              env: dict[str, str], file: str, words: list[str]) -> None:
    if file:
        (tmp_path / "s.yaml").write_text(file)
        args = ["--config", str(tmp_path / "s.yaml"), *args]
    done = invoke(*args, env=env)
    assert done.exit_code == 2 and not started, done.output
    assert done.output.startswith("logharbor server: "), done.output
    assert ("Traceback" not in done.output and done.exception is None) or isinstance(done.exception, SystemExit)
    for word in words:
        assert word in done.output, (word, done.output)


def test_a_missing_config_file_is_an_error(started: list[ServerConfig], tmp_path: Path) -> None:
    done = invoke("--config", str(tmp_path / "nope.yaml"))
    assert done.exit_code == 2 and "no such file" in done.output and not started


def test_docs_table_has_every_field_with_its_flag() -> None:
    """docs/server.md's configuration table: a row per field whose flag column names exactly
    the flag(s) --help has for it (a --x/--no-x switch: either spelling)."""
    text = (ROOT / "docs" / "server.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {m[1]: m[2] for m in re.finditer(r"^\| `([a-z_0-9]+)` \|([^|]*)\|", text, re.M)}
    for name, spec in server_cli.FLAGS.items():
        assert name in rows, f"docs/server.md has no row for {name}"
        shown = re.findall(r"`(--[a-z0-9-]+)`", rows[name])
        assert shown and set(shown) <= set(spec.names), (name, shown, spec.names)
    assert set(rows) <= set(ServerConfig.model_fields), set(rows) - set(ServerConfig.model_fields)


def test_the_documented_config_file_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (ROOT / "docs" / "server.md").read_text()
    (block,) = re.findall(r"```yaml\n(# server.yaml\n.*?)```", text, re.S)
    (tmp_path / "server.yaml").write_text(block)
    for name in list(__import__("os").environ):
        if name.startswith("LOGHARBOR_"):
            monkeypatch.delenv(name)
    config = ServerConfig.load({}, tmp_path / "server.yaml")
    assert config.wal_max_bytes == 4 * 1024**3 and config.idempotency_window_s == 12 * 3600
    assert config.listener_allow == ["10.0.0.0/8", "::1/128"] and config.syslog_udp == "0.0.0.0:514"


@pytest.mark.e2e
def test_a_real_server_takes_its_settings_from_all_three_sources(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A file sets a limit that had no flag before, the environment another, a flag the third;
    the running server answers by all three."""
    (tmp_path / "server.yaml").write_text("max_records_per_request: 3\nmax_fields_per_record: 3\n")
    monkeypatch.setenv("LOGHARBOR_MAX_FIELDS_PER_RECORD", "4")  # beats the file's 3
    server = ServerProcess(tmp_path / "data", "--config", str(tmp_path / "server.yaml"),
                           "--max-line-kb", "1").start()
    try:
        url, headers = server.url + "/api/v1/logs", {**server.headers, "content-type": "application/x-ndjson"}
        four = b'{"message":"a"}\n{"message":"b"}\n{"message":"c"}\n{"message":"d"}'
        assert httpx.post(url, content=four, headers=headers, timeout=30).status_code == 413
        wide = b'{"message":"a","b":1,"c":2,"d":3}\n{"message":"a","b":1,"c":2,"d":3,"e":4}'
        answer = httpx.post(url, content=wide, headers=headers, timeout=30)
        assert answer.status_code == 200 and answer.json()["accepted"] == 1, answer.text  # 4 fields: kept
        long = b'{"message":"' + b"x" * 2000 + b'"}\n'
        answer = httpx.post(url, content=long, headers=headers, timeout=30)
        assert answer.json().get("accepted", 0) == 0, answer.text  # --max-line-kb 1: refused
    finally:
        server.stop()


@pytest.mark.parametrize(("file", "words"), [
    ('forward_shared_key: 987654321\n', ["forward_shared_key (--forward-shared-key", "valid string"]),
    ('forward_shared_key: ["hunter2"]\n', ["forward_shared_key"]),
    ('store: ["clickhouse://u:hunter2@h/db"]\n', ["store (--store"]),
    ('meta_url: {url: "postgresql://u:hunter2@h/db"}\n', ["meta_url (--meta-url"]),
    ('cold_endpoint: ["http://AKIA:hunter2@h"]\n', ["cold_endpoint"]),
    ('port: 1\nmeta_url: postgresql://u:hunter2@h/db: x\n', ["not valid YAML", "line 2"]),
    ('forward_shared_key: "hunter2\n', ["not valid YAML", "at line "]),
    ('port: !!python/object/apply:os.system ["echo hunter2"]\n', ["not valid YAML", "line 1"]),
])
def test_a_refused_setting_never_echoes_a_secret(tmp_path: Path, started: list[ServerConfig], file: str,
                                                 words: list[str]) -> None:
    """Passwords in URLs and shared keys are refused naming the setting, never quoting its value
    (the message goes to the terminal and the service manager's log)."""
    (tmp_path / "s.yaml").write_text(file)
    done = invoke("--config", str(tmp_path / "s.yaml"))
    assert done.exit_code == 2 and not started, done.output
    assert "hunter2" not in done.output and "987654321" not in done.output, done.output
    for word in words:
        assert word in done.output, (word, done.output)
