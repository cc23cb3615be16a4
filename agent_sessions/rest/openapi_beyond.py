"""The OpenAPI entries of the paths beyond the reference documents (``rest.beyond``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agent_sessions.resolvers.search import OFFSET_MAX, SEARCH_MAX
from agent_sessions.storage.search import MAX_QUERY_CHARS, WORD_CLASS

from . import shapes_beyond as shapes

PAGE_MAX = OFFSET_MAX // SEARCH_MAX

MODELS: list[type[BaseModel]] = [
    shapes.SessionInfo, shapes.SessionChange, shapes.ForkRequest, shapes.SearchResults,
]  # fmt: skip


def _query(name: str, schema: dict[str, Any], description: str, required: bool = False) -> Any:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema}  # fmt: skip


def paths(
    ref: Any, json: Any, error: Any, session_id: dict[str, Any], common: dict[str, Any]
) -> dict[str, Any]:
    """The paths, built with ``openapi``'s helpers (passed in, to keep one spelling)."""
    not_found = error("No session exists with the given ID, or it belongs to another user.")
    run_path = [session_id, {"name": "run_id", "in": "path", "required": True,
                             "description": "Run ID", "schema": {"type": "string"}}]  # fmt: skip
    return {
        "/api/sessions/search": {
            "get": {
                "operationId": "searchMessages",
                "summary": 'Messages matching words or "phrases", case- and accent-insensitive.',
                "parameters": [
                    _query(
                        "q",
                        {"type": "string", "pattern": WORD_CLASS, "maxLength": MAX_QUERY_CHARS},
                        'Words and "quoted phrases"; every one must match.',
                        required=True,
                    ),
                    _query("userId", {"type": "string"}, "This user's sessions (also user_id)."),
                    _query("user_id", {"type": "string"}, "Same as userId."),
                    _query("agentId", {"type": "string"}, "This agent's sessions (also agent_id)."),
                    _query("agent_id", {"type": "string"}, "Same as agentId."),
                    _query("order", {"enum": ["best", "newest"], "default": "best"}, "Hit order."),
                    _query(
                        "page",
                        {"type": "integer", "minimum": 0, "maximum": PAGE_MAX, "default": 0},
                        "0-based.",
                    ),
                    _query(
                        "size",
                        {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                        "Hits per page.",
                    ),
                ],
                "responses": {
                    "200": json(ref(shapes.SearchResults), "A page of hits."),
                    "400": error("No q, a query without words, or a bad parameter."),
                    **common,
                },
            }
        },
        "/api/sessions/{session_id}/runs/{run_id}": {
            "delete": {
                "operationId": "deleteRun",
                "summary": "Delete one run with its messages and retrieved context.",
                "parameters": run_path,
                "responses": {
                    "204": {"description": "Deleted."},
                    "400": error("The run is QUEUED or RUNNING: cancel it first."),
                    "404": error("No such session (or not yours), or no such run in it."),
                    **common,
                },
            }
        },
        "/api/sessions/{session_id}/fork": {
            "post": {
                "operationId": "forkSession",
                "summary": "A new session with the messages up to one, their runs and context.",
                "parameters": [session_id],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref(shapes.ForkRequest)}},
                },
                "responses": {
                    "201": json(ref(shapes.SessionInfo), "The new session (forkedFrom set)."),
                    "400": error("No messageId, or a wrong value."),
                    "404": error("No such session (or not yours), or no such message in it."),
                    "415": error("The body is not sent as application/json."),
                    **common,
                },
            }
        },
        "/api/sessions/{session_id}": {
            "patch": {
                "operationId": "updateSession",
                "summary": "Change a session's title, metadata or expiry (keys given change).",
                "parameters": [session_id],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref(shapes.SessionChange)}},
                },
                "responses": {
                    "200": json(ref(shapes.SessionInfo), "The session as it is now."),
                    "400": error("A key that is not one of these, or a wrong value."),
                    "404": not_found,
                    "415": error("The body is not sent as application/json."),
                    **common,
                },
            }
        },
    }


# Not a parameter of its own: OpenAPI has no name pattern for query parameters.
LIST_METADATA = (
    "Also metadata.<key>=<value> (any top-level key, such as metadata.team=finance): sessions "
    "whose metadata has that value; repeat a key for any of several values; a number or "
    "boolean matches as itself too; every key given must match."
)
