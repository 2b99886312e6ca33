"""A real HTTP process serving the query route over the golden corpus (for CLI tests).

``python tests/query/corpus_server.py DATA_DIR PORT``: loads the corpus into a chDB store and
serves ``POST /api/v1/query`` plus ``GET /readyz`` on 127.0.0.1 until killed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logharbor.record import normalize
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.errors import ApiError, api_error_handler
from logharbor.server.features.query.routes import query_router
from query.corpus import records


def build(data_dir: Path) -> FastAPI:
    store = EmbeddedStore(data_dir / "store")
    store.open()
    rows = b"\n".join(encode_row(normalize(r, received_ns=1_800_000_000_000_000_000)) for r in records())
    store.insert(rows, dedup_token="golden-corpus")
    app = FastAPI()
    app.add_exception_handler(ApiError, api_error_handler)
    app.include_router(query_router())
    app.state.store = store

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


if __name__ == "__main__":
    uvicorn.run(build(Path(sys.argv[1])), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
