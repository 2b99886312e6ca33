"""Delete-by-query on the ClickHouse store (over HTTP, the double: chDB behind ClickHouse's HTTP
interface): the same physical erasure as the embedded store, checked by a raw scan of the
server's data directory; on a cluster the delete is refused up front."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cluster.conftest import CLUSTER, start_double, stop_double
from tests.faults.rawscan import scan
from tests.retention.helpers import FakeClock, counts, insert, record, set_policy

from logharbor.server.engine.store.clickhouse import ClickHouseStore
from logharbor.server.engine.store.coldstore import LocalCold
from logharbor.server.engine.store.tiers import Tiers
from logharbor.server.features.retention.delete import DeleteJobs, DeleteUnsupported
from logharbor.server.features.retention.mover import Mover
from logharbor.server.meta.db import MetaStore

VALUE = "ch-erase-me-3141"


@pytest.mark.e2e
def test_a_delete_on_a_clickhouse_server_leaves_the_value_nowhere(tmp_path: Path) -> None:
    double = start_double(tmp_path / "ch")
    store = ClickHouseStore(double.url("erase_db"))
    try:
        store.open()
        tiers = Tiers(store, LocalCold(tmp_path / "cold"))
        tiers.open()
        meta = MetaStore.for_data_dir(tmp_path / "meta")
        meta.create()
        mover = Mover(tiers, meta, clock=FakeClock())
        insert(store, [record(age, n=i, user_id=VALUE if i % 10 == 4 else f"u-{i}")
                       for age in (0.5, 2, 10, 40) for i in range(30)])
        set_policy(mover, {"rules": [{"name": "all", "hot": "7d", "warm": "30d", "cold": "365d"}]})
        mover.tick()
        assert counts(tiers) == {"hot": 60, "warm": 30, "cold": 30}
        assert scan(tmp_path / "ch", [VALUE.encode()]).found, "the scan must see the value first"
        jobs = DeleteJobs(mover, meta, purge_timeout_s=120)
        job = jobs.submit(f"user_id:{VALUE}", "test")
        jobs.wait(300)
        done = jobs.get(job["id"])
        assert done is not None and done["state"] == "done", done
        assert done["deleted"] == 12
        assert counts(tiers) == {"hot": 54, "warm": 27, "cold": 27}
        assert scan(tmp_path / "ch", [VALUE.encode()]).found == {}
        assert scan(tmp_path / "cold", [VALUE.encode()]).found == {}
    finally:
        store.close()
        stop_double(double)


def test_a_cluster_store_refuses_a_delete(tmp_path: Path) -> None:
    store = ClickHouseStore(f"clickhouse://u:p@127.0.0.1:9/db?cluster={CLUSTER}")
    meta = MetaStore.for_data_dir(tmp_path)
    meta.create()
    jobs = DeleteJobs(Mover(Tiers(store, None), meta), meta)
    with pytest.raises(DeleteUnsupported, match="cluster"):
        jobs.submit("user_id:u-1", "test")
