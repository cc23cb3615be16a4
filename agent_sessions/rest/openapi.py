"""The OpenAPI 3.1 document of the REST shim, built from the shapes in ``rest.shapes``."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from agent_sessions import __version__
from agent_sessions.resolvers.reads import PAGE_MAX, PAGE_SIZE_MAX

from . import openapi_beyond, shapes

_REF = "#/components/schemas/{model}"


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str, model: type[BaseModel] = shapes.Error) -> dict[str, Any]:
    return _json(_ref(model), description)


def _event_stream(description: str) -> dict[str, Any]:
    """A text/event-stream response; ``schema`` describes one event (OpenAPI 3.1), its
    ``data`` a JSON document of the shape its name gives."""
    events = [
        {
            "type": "object",
            "required": ["event", "data", "id"],
            "properties": {
                "event": {"const": name},
                "id": {"type": "string", "pattern": "^[1-9][0-9]*$"},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": _ref(model),
                },
            },
        }
        for name, model in shapes.RUN_EVENTS.items()
    ]
    schema = {"oneOf": events, "description": "One event of the run (README: Live runs)."}
    return {"description": description, "content": {"text/event-stream": {"schema": schema}}}


_ID = {"type": "string", "minLength": 1}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": _ID}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


SESSION_ID = _path_param("session_id", "Session ID")
COMMON_ERRORS = {
    "401": _error("Missing, malformed, wrong or revoked API key (when keys are enabled)."),
    "503": _error("The database is unavailable."),
}
NOT_FOUND = _error("No session exists with the given ID, or it belongs to another user.")
UNKNOWN_PARAMETER = _error(
    "A query parameter this path does not take (the message lists those it does)."
)


def served_document(server_url: str) -> dict[str, Any]:
    """The document as one server serves it: ``servers`` names that server's root."""
    return {**openapi_document(), "servers": [{"url": server_url}]}


@cache
def openapi_document() -> dict[str, Any]:
    models = [
        shapes.Error,
        shapes.AgentError,
        shapes.SessionList,
        shapes.SessionDetail,
        shapes.ChatMessage,
        shapes.RunSummary,
        shapes.RetrievedContext,
        shapes.AgentRunRequest,
        shapes.AgentRunResponse,
        shapes.RunSummary,
        *shapes.RUN_EVENTS.values(),
        *openapi_beyond.MODELS,
    ]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    components = top.get("$defs", {})
    array_of = lambda model: {"type": "array", "items": _ref(model)}  # noqa: E731
    paths: dict[str, Any] = {
        "/api/sessions": {
            "get": {
                "operationId": "listSessions",
                "summary": "List sessions, newest updatedAt first; a user sees only their own.",
                "parameters": [
                    _query("userId", {"type": "string"}, "Sessions of this user (also user_id)."),
                    _query("user_id", {"type": "string"}, "Same as userId."),
                    _query(
                        "agentId", {"type": "string"}, "Sessions of this agent (also agent_id)."
                    ),
                    _query("agent_id", {"type": "string"}, "Same as agentId."),
                    _query(
                        "page",
                        {"type": "integer", "minimum": 0, "maximum": PAGE_MAX, "default": 0},
                        "0-based page.",
                    ),
                    _query(
                        "size",
                        {"type": "integer", "minimum": 1, "maximum": PAGE_SIZE_MAX, "default": 20},
                        "Page size.",
                    ),
                ],
                "responses": {
                    "200": _json(_ref(shapes.SessionList), "A page of sessions."),
                    "400": _error(
                        "Bad page or size, or an unknown query parameter (the message lists "
                        "those this path takes)."
                    ),
                    **COMMON_ERRORS,
                },
            }
        },
        "/api/sessions/{session_id}": {
            "get": {
                "operationId": "getSession",
                "summary": "A session with its stored message history.",
                "parameters": [SESSION_ID],
                "responses": {
                    "200": _json(_ref(shapes.SessionDetail), "The session."),
                    "400": UNKNOWN_PARAMETER,
                    "404": NOT_FOUND,
                    **COMMON_ERRORS,
                },
            },
            "delete": {
                "operationId": "deleteSession",
                "summary": "Delete a session with its messages, runs and retrieved context.",
                "parameters": [SESSION_ID],
                "responses": {
                    "204": {"description": "Deleted."},
                    "400": UNKNOWN_PARAMETER,
                    "404": NOT_FOUND,
                    **COMMON_ERRORS,
                },
            },
        },
        "/api/sessions/{session_id}/messages": {
            "get": {
                "operationId": "getSessionMessages",
                "summary": "Chat messages in order; assistant ones carry their run's chunks.",
                "parameters": [SESSION_ID],
                "responses": {
                    "200": _json(array_of(shapes.ChatMessage), "The messages in order."),
                    "400": UNKNOWN_PARAMETER,
                    "404": NOT_FOUND,
                    **COMMON_ERRORS,
                },
            }
        },
        "/api/sessions/{session_id}/runs": {
            "get": {
                "operationId": "getSessionRuns",
                "summary": "The runs of a session, oldest first.",
                "parameters": [SESSION_ID],
                "responses": {
                    "200": _json(array_of(shapes.RunSummary), "The runs."),
                    "400": UNKNOWN_PARAMETER,
                    "404": NOT_FOUND,
                    **COMMON_ERRORS,
                },
            }
        },
        "/api/sessions/{session_id}/runs/{run_id}/retrieved-context": {
            "get": {
                "operationId": "getRunRetrievedContext",
                "summary": "The chunks one run retrieved, after its diagnostics entry.",
                "parameters": [
                    SESSION_ID,
                    _path_param("run_id", "Run ID (a run belonging to this session)"),
                ],
                "responses": {
                    "200": _json(_ref(shapes.RetrievedContext), "The run's retrieved context."),
                    "400": UNKNOWN_PARAMETER,
                    "404": _error(
                        "No such session (or not yours), or the run is not in this session."
                    ),
                    **COMMON_ERRORS,
                },
            }
        },
        "/api/agents/{agentId}/runs": {
            "post": {
                "operationId": "runAgent",
                "summary": "Run an agent on a new message, after replaying the session's history.",
                "parameters": [_path_param("agentId", "An agent declared in the config file")],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(shapes.AgentRunRequest)}},
                },
                "responses": {
                    "200": _event_stream(
                        'With Accept: text/event-stream or "stream": true: the run\'s events '
                        "as server-sent events, start first, end or error last."
                    ),
                    "201": _json(_ref(shapes.AgentRunResponse), "The finished run."),
                    "400": _error(
                        "Malformed JSON, a field that is missing or wrong (the message names "
                        "it and says why), or a query parameter (this path takes none)."
                    ),
                    "403": _error("A userId naming another user, from a non-administrator."),
                    "404": _error("Unknown agent, or a session id that belongs to another user."),
                    "413": _error("The request body or the session would be too large."),
                    "415": _error("The body is not sent as application/json."),
                    "502": _error(
                        "The agent backend failed; the run is stored as FAILED.", shapes.AgentError
                    ),
                    **COMMON_ERRORS,
                },
            }
        },
    }
    run_path = [SESSION_ID, _path_param("run_id", "Run ID (a run belonging to this session)")]
    run_not_found = _error("No such session (or not yours), or the run is not in this session.")
    paths["/api/sessions/{session_id}/runs/{run_id}/events"] = {
        "get": {
            "operationId": "getRunEvents",
            "summary": "Join a run: its events so far, then each as it happens, to the last.",
            "parameters": [
                *run_path,
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "description": "Resume after this event id (what SSE clients send).",
                    "schema": {"type": "string", "pattern": "^[0-9]{0,9}$"},
                },
            ],
            "responses": {
                "200": _event_stream("The run's events; a finished run's end at once."),
                "400": _error("A Last-Event-ID that is not an event id."),
                "404": run_not_found,
                **COMMON_ERRORS,
            },
        }
    }
    paths["/api/sessions/{session_id}/runs/{run_id}/cancel"] = {
        "post": {
            "operationId": "cancelRun",
            "summary": "Cancel a run: it ends CANCELLED with what it produced so far.",
            "parameters": run_path,
            "responses": {
                "200": _json(
                    _ref(shapes.RunSummary), "The run, ended (a finished one is unchanged)."
                ),
                "202": _json(
                    _ref(shapes.RunSummary),
                    "The run, still RUNNING: the server running it has the cancel.",
                ),
                "404": run_not_found,
                **COMMON_ERRORS,
            },
        }
    }
    for path, methods in openapi_beyond.paths(
        _ref, _json, _error, SESSION_ID, COMMON_ERRORS
    ).items():
        paths.setdefault(path, {}).update(methods)
    paths["/api/sessions"]["get"]["description"] = openapi_beyond.LIST_METADATA
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "agent-sessions REST API",
            "version": __version__,
            "description": "The documented /api paths, served through the GraphQL resolvers.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
    }
