"""The exception tree of the query language; the HTTP route turns these into 400 answers."""

from __future__ import annotations

__all__ = [
    "FilterOnlyError",
    "InvalidRegexError",
    "QueryError",
    "QuerySyntaxError",
    "QueryTooLargeError",
    "QueryTypeError",
    "UnknownFieldError",
    "UnknownFunctionError",
]


class QueryError(ValueError):
    """A query that cannot run: ``code`` for programs, ``message`` for people, ``position`` (0-based)."""

    code = "query_error"

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        #: machine-readable facts for the answer (the limit a query went over), or None
        self.detail: dict[str, object] | None = None

    def to_dict(self) -> dict[str, object]:
        """The ``error`` object of a 400 answer."""
        out: dict[str, object] = {"code": self.code, "message": self.message, "position": self.position}
        if self.detail is not None:
            out["detail"] = self.detail
        return out


class QuerySyntaxError(QueryError):
    """The text does not parse; the message names what was expected and where."""

    code = "query_syntax"


class UnknownFunctionError(QueryError):
    """A ``stats``/``timechart`` function that does not exist."""

    code = "unknown_function"


class UnknownFieldError(QueryError):
    """A name after ``stats`` that is not one of its output columns, or an unusable field name."""

    code = "unknown_field"


class QueryTypeError(QueryError):
    """A value that does not fit its field (``status:abc``), or a function on the wrong type."""

    code = "type_mismatch"


class InvalidRegexError(QueryError):
    """A ``/regex/`` the engine (RE2) cannot compile: unbalanced, or lookaround/backreferences."""

    code = "invalid_regex"


class QueryTooLargeError(QueryError):
    """A query whose SQL would be over the engine's size limit (thousands of terms)."""

    code = "query_too_large"


class FilterOnlyError(QueryError):
    """Pipes other than ``where`` where only a filter can run (live tail, pre-filters)."""

    code = "filter_only"
