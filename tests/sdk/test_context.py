"""bind / unbind / context through contextvars: scoped to tasks and threads, never leaking."""

from __future__ import annotations

import asyncio
import logging
import threading

from logharbor import sdk


def test_bind_unbind_and_blocks() -> None:
    sdk.unbind()
    token = sdk.bind(user_id="u-1", order_id="o-1")
    assert sdk.get_context() == {"user_id": "u-1", "order_id": "o-1"}
    with sdk.context(order_id="o-2", cart=3) as ctx:
        assert dict(ctx) == {"user_id": "u-1", "order_id": "o-2", "cart": 3}
        sdk.bind(order_id=None)  # None removes
        assert "order_id" not in sdk.get_context()
    assert sdk.get_context() == {"user_id": "u-1", "order_id": "o-1"}
    sdk.unbind("order_id")
    assert sdk.get_context() == {"user_id": "u-1"}
    sdk.reset(token)
    assert sdk.get_context() == {}


def test_asyncio_tasks_are_isolated(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s")
    log = logging.getLogger("tasks")

    async def handle(i: int) -> None:
        sdk.bind(request_id=f"r-{i}", user_id=f"u-{i}")
        for step in range(3):
            await asyncio.sleep(0.001 * ((i * 7 + step) % 5))
            log.info("step", extra={"i": i, "step": step})

    async def main() -> None:
        await asyncio.gather(*(handle(i) for i in range(30)))

    asyncio.run(main())
    lines = cap.records()
    assert len(lines) == 90
    for line in lines:
        assert line["request_id"] == f"r-{line['i']}" and line["user_id"] == f"u-{line['i']}"
    assert sdk.get_context() == {}  # the tasks' bindings stayed in the tasks


def test_threads_start_empty_and_stay_separate(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s")
    log = logging.getLogger("threads")
    sdk.bind(user_id="main-thread")
    barrier = threading.Barrier(8)

    def worker(i: int) -> None:
        log.info("before", extra={"i": i})
        sdk.bind(user_id=f"t-{i}")
        barrier.wait()
        log.info("after", extra={"i": i})

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = cap.records()
    before = [line for line in lines if line["message"] == "before"]
    after = [line for line in lines if line["message"] == "after"]
    assert all("user_id" not in line for line in before)
    assert sorted(line["user_id"] for line in after) == sorted(f"t-{i}" for i in range(8))
    assert all(line["user_id"] == f"t-{line['i']}" for line in after)
    assert sdk.get_context() == {"user_id": "main-thread"}
    sdk.unbind()


def test_new_ids_are_w3c() -> None:
    ids = {sdk.new_trace_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 32 and int(i, 16) > 0 and i == i.lower() for i in ids)


def test_sdk_imports_neither_server_nor_agent() -> None:
    import subprocess
    import sys

    code = ("import sys, logharbor.sdk, logharbor.sdk.shipping, logharbor.sdk.structlogging;"
            "print([m for m in sys.modules if m.startswith(('logharbor.server', 'logharbor.agent'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
