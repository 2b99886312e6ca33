"""A Flask app on the sdk, served by a real waitress: ``python flask_app.py PORT``."""

from __future__ import annotations

import sys
import time

import waitress
from flask import Flask, jsonify, request

from logharbor import sdk

sdk.configure(service="shop-web", env="test", version="1.0.0", instance="shop-web-1")
log = sdk.get_logger("web")

app = Flask(__name__)
app.wsgi_app = sdk.WSGIMiddleware(app.wsgi_app, trusted_proxies=[], exclude_paths=["/healthz"])


@app.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    return jsonify(ok=True)


@app.get("/orders/<order_id>")
def get_order(order_id: str):  # type: ignore[no-untyped-def]
    user = request.args.get("user", "anon")
    with sdk.context(user_id=user):
        log.info("order looked up", extra={"order_id": order_id, "items": 3})
        time.sleep(float(request.args.get("delay", "0")))
        log.info("order done", extra={"order_id": order_id})
    return jsonify(order_id=order_id, context=sdk.get_context())


@app.get("/stream")
def stream():  # type: ignore[no-untyped-def]
    def chunks():  # type: ignore[no-untyped-def]
        for i in range(3):
            log.info("chunk", extra={"i": i})
            yield f"part{i}\n"
    return app.response_class(chunks(), mimetype="text/plain")


@app.get("/boom")
def boom():  # type: ignore[no-untyped-def]
    raise KeyError("missing")


if __name__ == "__main__":
    waitress.serve(app, host="127.0.0.1", port=int(sys.argv[1]), threads=8, _quiet=True)
