"""The web UI: built front-end assets (``dist/``, made by ``scripts/install.sh``) and their routes."""

from logharbor.server.ui.routes import DIST_DIR, SECURITY_HEADERS, ui_router

__all__ = ["DIST_DIR", "SECURITY_HEADERS", "ui_router"]
