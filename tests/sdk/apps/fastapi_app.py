"""A FastAPI app on the sdk, served by a real uvicorn: ``python fastapi_app.py PORT``."""

from __future__ import annotations

import asyncio
import os
import sys

import httpx
import uvicorn
from fastapi import FastAPI, Request

from logharbor import sdk

sdk.configure(service="shop-api", env="test", version="9.9.9", instance="shop-api-1")
log = sdk.get_logger("shop")

app = FastAPI()
app.add_middleware(sdk.ASGIMiddleware, trusted_proxies=["127.0.0.1", "10.0.0.0/8"],
                   exclude_paths=["/healthz"])


@app.get("/healthz")
async def healthz() -> dict[str, bool]:
    return {"ok": True}


@app.get("/orders/{order_id}")
async def get_order(order_id: str, user: str = "anon", delay: float = 0.0) -> dict[str, object]:
    with sdk.context(user_id=user):
        log.info("order looked up", extra={"order_id": order_id, "items": 3, "total": 12.5})
        await asyncio.sleep(delay)
        log.info("order done", extra={"order_id": order_id, "paid": True})
    return {"order_id": order_id, "context": sdk.get_context()}


@app.post("/pay")
async def pay(request: Request) -> dict[str, str]:
    body = await request.json()
    log.warning("payment declined for %s", body["email"],
                extra={"card": body["card"], "password": body["password"], "tags": ["a", "b"]})
    return {"status": "declined"}


@app.get("/checkout")
async def checkout() -> dict[str, object]:
    """Calls the service named in DOWNSTREAM_URL; the ids travel with the call."""
    log.info("calling inventory")
    async with sdk.propagate_httpx(httpx.AsyncClient()) as client:
        response = await client.get(os.environ["DOWNSTREAM_URL"] + "/orders/from-api")
    return {"downstream_status": response.status_code}


@app.get("/boom")
async def boom() -> None:
    raise ValueError("kaput")


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, proxy_headers=False)
