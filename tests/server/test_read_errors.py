"""Every read API answers a store failure the same way: a query limit is a 4xx naming it, a
regex RE2 cannot compile a 400, a spill on a full disk a 507 with Retry-After, anything else a
500 without the engine's text. The Loki reads answered a full disk with a 500 and Services put
the engine's message (table names, SQL) into its 500."""

from __future__ import annotations

import asyncio
import errno

import httpx
import pytest
from fastapi import FastAPI

from logharbor.server.engine.store.base import StoreError
from logharbor.server.errors import ApiError, api_error_handler
from logharbor.server.features.health import routes as health_routes
from logharbor.server.features.loki.streams import Context
from logharbor.server.features.query.service import store_error

FULL = StoreError("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space. (NOT_ENOUGH_SPACE)")
OTHER = StoreError("Code: 60. DB::Exception: Unknown table expression identifier 'secret_table'")


class RefusingStore:
    """A store whose every read fails with ``exc`` (the failure is the input under test)."""

    table = "logs"
    table_name = "logs"
    patterns_name = "patterns"

    def __init__(self, exc: StoreError) -> None:
        self.exc = exc

    def query(self, *_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise self.exc


def test_the_query_api_mapping() -> None:
    full = store_error(FULL)
    assert (full.status, full.code) == (507, "insufficient_storage") and full.headers
    full.headers["Retry-After"]
    other = store_error(OTHER)
    assert (other.status, other.code) == (500, "store_error") and "secret_table" not in other.message


@pytest.mark.parametrize(("exc", "status"), [(FULL, 507), (OTHER, 500)])
def test_loki_reads_answer_as_the_query_api(exc: StoreError, status: int) -> None:
    context = Context(RefusingStore(exc), None, None, 100, {})  # type: ignore[arg-type]
    with pytest.raises(ApiError) as raised:
        context.run("SELECT 1", {})
    assert raised.value.status == status
    assert "secret_table" not in raised.value.message


def test_no_space_from_the_os_is_a_507() -> None:
    exc = StoreError("insert failed")
    exc.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert store_error(exc).status == 507


@pytest.mark.parametrize(("exc", "status"), [(FULL, 507), (OTHER, 500)])
def test_services_answer_as_the_query_api(exc: StoreError, status: int) -> None:
    app = FastAPI()
    app.add_exception_handler(ApiError, api_error_handler)
    app.include_router(health_routes.services_router())
    app.state.store = RefusingStore(exc)

    async def get() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return await client.get("/api/v1/services", params={"recording": "false"})

    response = asyncio.run(get())
    assert response.status_code == status, response.text
    assert "secret_table" not in response.text and "DB::Exception" not in response.text
