"""The REST paths beyond the two reference documents: changing a session (title,
metadata, expiry), deleting one run, forking a session, searching messages. Each runs
one GraphQL operation, as every other path does."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agent_sessions.resolvers.search import OFFSET_MAX, SEARCH_MAX, search_cursor
from agent_sessions.resolvers.validation import describe

from .routes import (
    SESSION_NOT_FOUND,
    RestError,
    _json,
    endpoint,
    execute,
    int_param,
    path_session_id,
    query_filter,
)
from .shapes_beyond import ForkRequest, SessionChange

SESSION_FIELDS = (
    "id userId agentId title metadata createdAt updatedAt expiresAt messageCount runCount "
    "forkedFrom { sessionId messageId }"
)
_CHANGE_TYPES = {"title": "String", "metadata": "JSON", "expiresAt": "DateTime"}


def update_document(keys: list[str]) -> str:
    """The updateSession operation for the keys a body gives: a key left out is not an
    argument at all, so it stays as it is (a null one clears it)."""
    declared = "".join(f", ${k}: {_CHANGE_TYPES[k]}" for k in keys)
    arguments = "".join(f", {k}: ${k}" for k in keys)
    return (
        f"mutation UpdateSession($id: ID!{declared}) "
        f"{{ updateSession(id: $id{arguments}) {{ {SESSION_FIELDS} }} }}"
    )


def session_shape(s: dict[str, Any]) -> dict[str, Any]:
    """A session as the paths beyond the references answer it (camelCase, as the list)."""
    return {
        "sessionId": s["id"],
        "userId": s["userId"],
        "agentId": s["agentId"],
        "title": s["title"],
        "metadata": s["metadata"],
        "createdAt": s["createdAt"],
        "updatedAt": s["updatedAt"],
        "expiresAt": s["expiresAt"],
        "messageCount": s["messageCount"],
        "runCount": s["runCount"],
        "forkedFrom": s["forkedFrom"],
    }


async def json_body(request: Request, model: Any) -> Any:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise RestError(415, {"error": "send the body as application/json"})
    try:
        return model.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RestError(400, {"error": describe(exc, model)}) from None


@endpoint
async def update_session(request: Request) -> Response:
    session_id = path_session_id(request)
    body = await json_body(request, SessionChange)
    variables = body.variables(session_id)
    keys = [k for k in _CHANGE_TYPES if k in variables]
    if not keys:
        raise RestError(400, {"error": "give at least one of title, metadata, expiresAt"})
    document = update_document(keys)
    data = await execute(request, document, variables)
    if data["updateSession"] is None:
        raise RestError(404, {"error": SESSION_NOT_FOUND})
    return _json(session_shape(data["updateSession"]))


DELETE_RUN = """
mutation DeleteRun($id: ID!, $runId: ID!) { deleteRun(sessionId: $id, runId: $runId) }"""

FORK_SESSION = f"""
mutation ForkSession($id: ID!, $at: ID!, $title: String) {{
  forkSession(sessionId: $id, atMessageId: $at, title: $title) {{ {SESSION_FIELDS} }}
}}"""


@endpoint
async def delete_run(request: Request) -> Response:
    variables = {"id": path_session_id(request), "runId": request.path_params["run_id"]}
    data = await execute(request, DELETE_RUN, variables)
    if not data["deleteRun"]:
        raise RestError(404, {"error": "no such session (or not yours), or no such run in it"})
    return Response(status_code=204)


@endpoint
async def fork_session(request: Request) -> Response:
    body = await json_body(request, ForkRequest)
    variables = {"id": path_session_id(request), "at": body.at(), "title": body.title}
    data = await execute(request, FORK_SESSION, variables)
    return _json(session_shape(data["forkSession"]), 201)


SEARCH = """
query Search($q: String!, $filter: SessionFilter, $first: Int!, $after: String,
             $order: SearchOrder!) {
  search(query: $q, filter: $filter, first: $first, after: $after, order: $order) {
    pageInfo { hasNextPage }
    nodes { sessionId messageId runId role snippet score createdAt }
  }
}"""
SEARCH_PARAMETERS = ("q", "userId", "user_id", "agentId", "agent_id", "order", "page", "size")


@endpoint(query=SEARCH_PARAMETERS)
async def search(request: Request) -> Response:
    q = request.query_params.get("q")
    if not q:
        raise RestError(400, {"error": "q is required: the words to search for"})
    user_id, user_conflict = query_filter(request, "userId", "user_id")
    agent_id, agent_conflict = query_filter(request, "agentId", "agent_id")
    order = request.query_params.get("order", "best")
    if order not in ("best", "newest"):
        raise RestError(400, {"error": f"order must be best or newest, got {order!r}"})
    page, size = int_param(request, "page", 0), int_param(request, "size", 20)
    if not 1 <= size <= SEARCH_MAX or not 0 <= page <= OFFSET_MAX // SEARCH_MAX:
        raise RestError(
            400,
            {"error": f"size must be 1-{SEARCH_MAX} and page 0-{OFFSET_MAX // SEARCH_MAX}"},
        )
    filt = {k: v for k, v in (("userId", user_id), ("agentId", agent_id)) if v is not None}
    variables = {
        "q": q, "filter": filt or None, "first": size, "order": order.upper(),
        "after": search_cursor(page * size) if page else None,
    }  # fmt: skip
    found = (await execute(request, SEARCH, variables))["search"]
    content = [] if user_conflict or agent_conflict else found["nodes"]
    for hit in content:
        hit["role"] = hit["role"].lower()
    more = bool(found["pageInfo"]["hasNextPage"]) and bool(content)
    return _json({"content": content, "page": page, "size": size, "hasNext": more})


routes = [
    Route("/api/sessions/search", search, methods=["GET"]),
    Route("/api/sessions/{session_id}/runs/{run_id}", delete_run, methods=["DELETE"]),
    Route("/api/sessions/{session_id}/fork", fork_session, methods=["POST"]),
]
