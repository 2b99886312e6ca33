"""Who the audit log names for retention: the key that asked (its prefix), or ``system`` for what
the server does by itself — its scheduled mover ticks, the disk guard, and every request on a
server without auth — never ``anonymous`` (which is kept for failed authentications)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from tests.conftest import ServerProcess
from tests.retention.helpers import insert, open_tiers, record, set_policy

from logharbor.server.features.retention.guard import DiskGuard


class Recorder:
    """Stands in for KeyStore.audit: keeps (actor, action, target, detail)."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str | None, str | None]] = []

    def __call__(self, actor: str, action: str, target: str | None = None, *, detail: str | None = None,
                 **_: Any) -> None:
        self.rows.append((actor, action, target, detail))


def test_a_scheduled_tick_that_deletes_is_audited_as_system(tmp_path: Path) -> None:
    audit = Recorder()
    store, _tiers, mover = open_tiers(tmp_path, audit=audit)
    try:
        insert(store, [record(age, n=i) for age in (1, 40) for i in range(5)])
        set_policy(mover, {"rules": [{"name": "short", "hot": "7d"}]})
        assert mover.tick()["deleted"] == 5  # an API run: its route audits it, with the key
        assert audit.rows == []
        assert mover.scheduled_tick()["deleted"] == 0  # nothing left to do: nothing audited
        assert audit.rows == []
        insert(store, [record(50, n=i) for i in range(3)])
        assert mover.scheduled_tick()["deleted"] == 3
        assert [(a, b) for a, b, _, _ in audit.rows] == [("system", "retention.run")]
        assert "'deleted': 3" in str(audit.rows[0][3])
    finally:
        store.close()


def test_the_disk_guard_is_audited_as_system(tmp_path: Path) -> None:
    audit = Recorder()
    store, _tiers, mover = open_tiers(tmp_path, audit=audit)
    try:
        insert(store, [record(age, level="DEBUG", n=i) for age in (1, 2) for i in range(20)])
        set_policy(mover, {"rules": [{"name": "debug", "match": {"level": "DEBUG"}, "hot": "30d"}]})
        guard = DiskGuard(tmp_path, mover, max_bytes=1024, exclude=tmp_path / "cold", reject_margin=10**6,
                          store_dir=tmp_path / "store")
        assert guard.check()
        assert [(a, b, c) for a, b, c, _ in audit.rows] == [("system", "retention.relieve", "debug")]
        assert "20 records freed" in str(audit.rows[0][3])
    finally:
        store.close()


def _audit(server: ServerProcess) -> list[dict[str, Any]]:
    with server.client() as client:
        entries = client.get("/api/v1/audit", params={"limit": 100}).json()["entries"]
    return [e for e in entries if e["action"].startswith(("retention.", "delete."))]


@pytest.mark.parametrize("auth", [True, False], ids=["key", "no-auth"])
def test_retention_requests_name_the_key_or_system(tmp_path: Path, auth: bool) -> None:
    server = ServerProcess(tmp_path / "data", "--batch-max-age", "0.2",
                           *(() if auth else ("--no-auth",))).start()
    try:
        server.ingest([{"message": "m", "service": "s", "user_id": "u-1"}])
        with server.client() as client:
            assert client.put("/api/v1/retention", json={"rules": [{"name": "all", "hot": "30d"}]}).status_code == 200
            assert client.post("/api/v1/retention/run").status_code == 200
            job = client.post("/api/v1/delete", json={"q": "user_id:u-1"})
            assert job.status_code == 202
        # the job's later rows (delete.done, delete.failed) name the actor stored with it at submit
        entries = _audit(server)
        assert {e["action"] for e in entries} >= {"retention.update", "retention.run", "delete.submit"}
        expected = server.api_key[3:15] if auth else "system"
        assert {e["actor"] for e in entries} == {expected}, entries
        # a key's entries also say its name (the server's first key is the "bootstrap admin")
        assert {e["actor_name"] for e in entries} == ({"bootstrap admin"} if auth else {None}), entries
    finally:
        server.stop()
