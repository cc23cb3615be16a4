"""Typed business errors, shared by every layer.

Each error knows the GraphQL ``extensions.code`` and the REST status it maps to, so the
two surfaces translate it in one place each. Anything that is not a ``ServiceError`` is
an internal error: masked for clients, logged with the request id.
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    code = "INTERNAL"
    status = 500
    # The first class to declare a code is that code's status (``TooLarge`` shares
    # ``BAD_USER_INPUT`` with ``BadInput`` but is 413 only where the class is at hand).
    by_code: ClassVar[dict[str, type[ServiceError]]] = {}

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        ServiceError.by_code.setdefault(cls.code, cls)

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code}


class BadInput(ServiceError):
    code = "BAD_USER_INPUT"
    status = 400


class TooLarge(BadInput):
    """One message, or one write, past its bound: 413 in REST, ``BAD_USER_INPUT`` in GraphQL."""

    status = 413


class Unauthenticated(ServiceError):
    code = "UNAUTHENTICATED"
    status = 401


class Forbidden(ServiceError):
    code = "FORBIDDEN"
    status = 403


class NotFound(ServiceError):
    code = "NOT_FOUND"
    status = 404


class SessionTooLarge(ServiceError):
    """A document the database refused as too large. Sessions grow without a ceiling (old
    turns move into pages), so only a deployment that cannot move them (a standalone
    mongod, without transactions) meets it."""

    code = "SESSION_TOO_LARGE"
    status = 413

    def __init__(self, message: str = "the session would exceed the 16 MB document limit") -> None:
        super().__init__(message)


class AgentFailed(ServiceError):
    """The agent backend failed; the run is stored as FAILED and can be found by its ids."""

    code = "AGENT_ERROR"
    status = 502

    def __init__(self, message: str, *, run_id: str, session_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.session_id = session_id

    @property
    def extensions(self) -> dict[str, object]:
        return {"code": self.code, "runId": self.run_id, "sessionId": self.session_id}


class DatabaseUnavailable(ServiceError):
    code = "DATABASE_UNAVAILABLE"
    status = 503

    def __init__(self, message: str = "the database is unavailable") -> None:
        super().__init__(message)


class ShuttingDown(ServiceError):
    """The server is stopping: it finishes the runs it has and starts no new ones."""

    code = "SHUTTING_DOWN"
    status = 503

    def __init__(self, message: str = "the server is shutting down; try again shortly") -> None:
        super().__init__(message)


def status_of(error: BaseException | None, code: str | None = None) -> int:
    """The HTTP status for an error: its class's, or for an error known only by its
    ``code`` (an answer from GraphQL), the class that declares that code; else 500."""
    if isinstance(error, ServiceError):
        return error.status
    known = ServiceError.by_code.get(code) if code is not None else None
    return known.status if known is not None else ServiceError.status


FORBIDDEN_ACT_FOR_OTHERS = "only administrators may act for another user"
