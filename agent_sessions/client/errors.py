"""The one exception the client raises for an answer that is not a success."""

from __future__ import annotations

from typing import Any

import httpx

# REST answers carry a status and a message; the code is the one GraphQL would give.
CODE_BY_STATUS = {
    400: "BAD_USER_INPUT",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    413: "SESSION_TOO_LARGE",
    502: "AGENT_ERROR",
    503: "DATABASE_UNAVAILABLE",
}
# GraphQL answers carry a code (often with status 200); the status is the one REST would give.
STATUS_BY_CODE = {code: status for status, code in CODE_BY_STATUS.items()} | {"INTERNAL": 500}


class AgentSessionsError(Exception):
    """The server refused or failed a request.

    ``status`` is the HTTP status (for a GraphQL error answered with 200, the status the
    REST shim gives that code), ``code`` the API's error code (``NOT_FOUND``,
    ``BAD_USER_INPUT``, ``AGENT_ERROR``, …) and ``message`` the server's message. An
    ``AGENT_ERROR`` also names the FAILED run: ``run_id`` and ``session_id``.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        run_id: str | None = None,
        session_id: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.run_id = run_id
        self.session_id = session_id


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def rest_error(response: httpx.Response) -> AgentSessionsError:
    """The error a REST answer ``{"error": ...}`` (or anything else that is not 2xx) means."""
    body = _body(response)
    status = response.status_code
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code = CODE_BY_STATUS.get(status, "INTERNAL" if status >= 500 else f"HTTP_{status}")
        return AgentSessionsError(
            status,
            code,
            body["error"],
            run_id=body.get("runId"),
            session_id=body.get("sessionId"),
        )
    if isinstance(body, dict) and body.get("errors"):  # GraphQL's shape, e.g. a 401 there
        return graphql_error(status, body["errors"][0])
    # Not the API's answer (a proxy's error page, say): say what came back.
    text = response.text.strip()[:300] or response.reason_phrase
    return AgentSessionsError(status, f"HTTP_{status}", text)


def graphql_error(status: int, error: Any) -> AgentSessionsError:
    """The error the first entry of a GraphQL ``errors`` list means."""
    if not isinstance(error, dict):
        return AgentSessionsError(status, "INTERNAL", str(error))
    extensions = error.get("extensions") or {}
    code = extensions.get("code") or "INTERNAL"
    if status == 200:
        status = STATUS_BY_CODE.get(code, 400)
    return AgentSessionsError(
        status,
        code,
        str(error.get("message", "")),
        run_id=extensions.get("runId"),
        session_id=extensions.get("sessionId"),
    )


def invalid_answer(response: httpx.Response, why: str) -> AgentSessionsError:
    """An answer the client cannot read (not JSON, not the documented shape)."""
    return AgentSessionsError(response.status_code, "INVALID_RESPONSE", why)
