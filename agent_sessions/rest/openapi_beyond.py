"""The OpenAPI entries of the paths beyond the reference documents (``rest.beyond``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from . import shapes_beyond as shapes

MODELS: list[type[BaseModel]] = [shapes.SessionInfo, shapes.SessionChange]


def paths(
    ref: Any, json: Any, error: Any, session_id: dict[str, Any], common: dict[str, Any]
) -> dict[str, Any]:
    """The paths, built with ``openapi``'s helpers (passed in, to keep one spelling)."""
    not_found = error("No session exists with the given ID, or it belongs to another user.")
    return {
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
