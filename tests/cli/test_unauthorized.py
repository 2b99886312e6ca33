"""Issue #26 item 10: a refused key is named (by its public prefix, never the secret) with where
it came from, and the message says how to set ``LOGHARBOR_API_KEY``; through a pipe and a terminal,
for every way the CLI talks to a server (query, tail, trace, an admin call). Each command's cases
run in this process (``in_process``); a real process into a pipe shows the same for one command."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.conftest import ServerProcess

from .terminal import in_pipe, in_process, in_terminal

BOGUS = "lh_0123456789ab_" + "s" * 32  # well formed, unknown to the server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("unauthorized") / "data").start()
    try:
        yield server
    finally:
        server.stop()


COMMANDS = [["query", "*"], ["tail", "*", "--no-reconnect"], ["tail", "*", "--no-reconnect", "--ws"],
            ["trace", "r-1"], ["keys", "list"]]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_refused_key_is_named_with_how_to_set_one(served: ServerProcess, command: list[str]) -> None:
    flag = in_process(*command, "--server", served.url, "--api-key", BOGUS)
    assert flag.code == 1, flag.err
    assert "the key lh_0123456789ab_… (from --api-key)" in flag.err, flag.err
    assert "export LOGHARBOR_API_KEY=" in flag.err and "s" * 32 not in flag.err
    env = in_process(*command, "--server", served.url, env={"LOGHARBOR_API_KEY": BOGUS})
    assert env.code == 1 and "(from LOGHARBOR_API_KEY)" in env.err, env.err
    none = in_process(*command, "--server", served.url)
    assert none.code == 1 and "LOGHARBOR_API_KEY" in none.err, none.err
    if command[0] != "keys":  # `keys` asks for an admin key before it calls the server
        assert "no API key was sent" in none.err, none.err
    other = in_process(*command, "--server", served.url, "--api-key", "not-a-key")
    assert other.code == 1 and "the key sha256:" in other.err and "not-a-key" not in other.err, other.err


def test_a_real_process_into_a_pipe_names_the_refused_key(served: ServerProcess) -> None:
    """The same message and exit code from the installed command's own process (stderr a pipe)."""
    run = in_pipe("query", "*", "--server", served.url, env={"LOGHARBOR_API_KEY": BOGUS}, timeout=60)
    assert run.code == 1 and "the key lh_0123456789ab_… (from LOGHARBOR_API_KEY)" in run.err, run.err
    assert "export LOGHARBOR_API_KEY=" in run.err and "s" * 32 not in run.err and "Traceback" not in run.err


def test_a_key_without_the_role_says_so(served: ServerProcess) -> None:
    reader = served.create_key("reader")
    run = in_process("keys", "list", "--server", served.url, "--api-key", reader)
    assert run.code == 1
    assert f"the key {reader[:15]}_… (from --api-key) lacks the role or scope" in run.err, run.err
    assert reader[16:] not in run.err


@pytest.mark.parametrize("columns", [80, 200])
@pytest.mark.slow
def test_in_a_terminal(served: ServerProcess, columns: int) -> None:
    run = in_terminal("query", "*", "--server", served.url, "--api-key", BOGUS, columns=columns, timeout=60)
    assert run.code == 1
    assert "lh_0123456789ab_…" in run.text and "export LOGHARBOR_API_KEY=lh_…" in run.text, run.text
