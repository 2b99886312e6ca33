"""The lab's application: a small FastAPI shop run as two instances (ports 9092 and 9093).

It logs through the logharbor sdk and its ASGI middleware, the way an app author would: one
``sdk.configure`` call, one middleware line, plain ``logging`` calls with ``extra=``. Checkout
talks to a flaky payment provider (simulated in-process: slow sometimes, failing sometimes,
now and then raising an exception with a real stack trace).

Run one instance: ``python -m logharbor.demo.apps --port 9092 --log-file app-9092.log``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from logharbor import sdk

__all__ = ["PaymentDeclined", "build_app"]

PRODUCTS = {"espresso-machine": 449.0, "grinder": 129.0, "kettle": 59.0, "mug": 12.0,
            "filter-papers": 4.5, "scale": 39.0, "tamper": 19.0}
log = logging.getLogger("shop.api")
payments_log = logging.getLogger("shop.payments")


class PaymentDeclined(Exception):
    """The provider said no; the order answers 502."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


async def charge(order_id: str, amount: float, rng: random.Random, failure_rate: float) -> str:
    """The payment provider: usually 30–120 ms, sometimes slow, sometimes failing."""
    delay = rng.uniform(0.03, 0.12) * (15 if rng.random() < 0.03 else 1)
    await asyncio.sleep(delay)
    roll = rng.random()
    if roll < failure_rate:
        raise PaymentDeclined(rng.choice(("PAY_001", "PAY_002")))
    if roll < failure_rate * 1.3:
        raise ConnectionResetError(104, "Connection reset by peer")
    return f"rcpt-{rng.getrandbits(40):010x}"


def build_app(*, failure_rate: float = 0.08, seed: int | None = None) -> FastAPI:
    """The shop; ``failure_rate`` is the share of payments the provider declines."""
    app = FastAPI(title="lab shop")
    app.add_middleware(sdk.ASGIMiddleware)
    rng = random.Random(seed)

    @app.get("/products")
    async def products() -> dict:  # type: ignore[type-arg]
        await asyncio.sleep(rng.uniform(0.002, 0.01))
        return {"products": sorted(PRODUCTS)}

    @app.get("/products/{slug}")
    async def product(slug: str) -> dict:  # type: ignore[type-arg]
        if slug not in PRODUCTS:
            log.warning("unknown product", extra={"slug": slug})
            raise HTTPException(404, "no such product")
        return {"slug": slug, "price": PRODUCTS[slug]}

    @app.get("/search")
    async def search(q: str = "") -> dict:  # type: ignore[type-arg]
        await asyncio.sleep(rng.uniform(0.01, 0.05))
        hits = [p for p in PRODUCTS if q.lower() in p]
        log.debug("search ran", extra={"query": q, "hits": len(hits)})
        return {"hits": hits}

    @app.post("/api/cart")
    async def cart(request: Request) -> dict:  # type: ignore[type-arg]
        body = await request.json()
        sdk.bind(user_id=body.get("user_id"))
        log.info("item added to cart", extra={"sku": body.get("sku"), "qty": body.get("qty", 1)})
        return {"ok": True}

    @app.post("/api/orders")
    async def orders(request: Request) -> JSONResponse:
        body = await request.json()
        order_id = f"o-{rng.randrange(10**6)}"
        amount = round(float(body.get("amount", 10.0)), 2)
        with sdk.context(user_id=body.get("user_id"), order_id=order_id):
            try:
                receipt = await charge(order_id, amount, rng, failure_rate)
            except PaymentDeclined as exc:
                payments_log.error("payment declined by provider",
                                   extra={"error_code": exc.code, "amount": amount})
                return JSONResponse({"error": "payment declined", "code": exc.code}, status_code=502)
            except ConnectionResetError:
                log.exception("unhandled exception in POST /api/orders")
                return JSONResponse({"error": "payment provider unreachable"}, status_code=503)
            logging.getLogger("shop.orders").info("order placed", extra={"amount": amount,
                                                                         "receipt": receipt})
        return JSONResponse({"order_id": order_id, "receipt": receipt}, status_code=201)

    @app.get("/healthz")
    async def healthz() -> dict:  # type: ignore[type-arg]
        return {"ok": True}

    return app


def shift_clock(offset_ms: float) -> None:
    """Stamp every log record ``offset_ms`` later (earlier when negative), as an instance whose
    clock is off would: the lab's clock-skew estimate must find it (issue 28)."""
    if not offset_ms:
        return
    make = logging.getLogRecordFactory()
    offset_s = offset_ms / 1000

    def skewed(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make(*args, **kwargs)
        record.created += offset_s
        return record

    logging.setLogRecordFactory(skewed)


def serve(app: object, host: str, port: int, fd: int | None, **options: object) -> None:
    """Run ``app`` with uvicorn on ``port``, or on the listening socket ``fd`` handed over by the
    parent (the lab's stack binds it, so no other process takes the port in between)."""
    import socket

    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, **options)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    server.run(sockets=[socket.socket(fileno=fd)] if fd is not None else None)


def main() -> None:
    ap = argparse.ArgumentParser(description="one instance of the lab shop")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--fd", type=int, default=None, help="serve on this inherited listening socket")
    ap.add_argument("--log-file", required=True)
    ap.add_argument("--failure-rate", type=float, default=0.08)
    ap.add_argument("--clock-offset-ms", type=float, default=0.0,
                    help="stamp the logs this many ms ahead of the real time (a skewed clock)")
    args = ap.parse_args()
    shift_clock(args.clock_offset_ms)
    sdk.configure(service="checkout", env="prod", version="1.4.2", instance=f"checkout-{args.port}",
                  output=args.log_file, level="DEBUG")
    # log_config=None: the sdk owns logging; uvicorn's own dictConfig would replace its setup
    serve(build_app(failure_rate=args.failure_rate), "127.0.0.1", args.port, args.fd,
          log_config=None, access_log=False)


if __name__ == "__main__":
    main()
