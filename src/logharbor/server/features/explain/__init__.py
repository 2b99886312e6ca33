"""``explain`` (issue #28 part 1): what sets a query's records apart from a baseline.

``POST /api/v1/explain`` (:mod:`.routes`), the statistics (:mod:`.stats`), the two sets as SQL
(:mod:`.sets`), the passes over them (:mod:`.passes`) and the answer (:mod:`.engine`).
"""

from .engine import ExplainRequest, explain
from .routes import explain_router

__all__ = ["ExplainRequest", "explain", "explain_router"]
