"""The handler :func:`logharbor.sdk.configure` installed: one per process, or none.

Why a module of its own: ``configure``/``flush``/``shutdown`` set and read it, and
:func:`logharbor.sdk.testing.capture_logs` builds records with its formatter; both import this
module, so the testing helper never imports the package that exports it.
"""

from __future__ import annotations

from logharbor.sdk.handlers import AsyncHandler

__all__ = ["current", "install"]

_handler: AsyncHandler | None = None


def current() -> AsyncHandler | None:
    """The handler of the last ``configure()``, or None (never configured, or shut down)."""
    return _handler


def install(handler: AsyncHandler | None) -> None:
    """Record ``handler`` as the configured one (None after ``shutdown()``)."""
    global _handler
    _handler = handler
