"""The REST shim: each documented path runs one GraphQL operation against the schema and
reshapes the result. No database code, no second copy of loading or permission logic."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from agent_sessions.errors import ServiceError, status_of
from agent_sessions.resolvers import fields
from agent_sessions.resolvers.validation import describe, is_client_id

from . import events
from .openapi import served_document
from .responses import JSONResponse
from .shapes import AgentRunRequest, Chunk, RunSummary, SessionSummary

Handler = Callable[[Request], Awaitable[Response]]

SESSION_NOT_FOUND = "session not found"
RUN_NOT_FOUND = "run not found in this session"
PAGE = 1000  # messages/runs read per operation when a path serves all of them, streamed

# What REST shows of each object, selected and renamed from the field map.
CHUNK_FIELDS = fields.selection("RetrievedChunk")
SESSION_FIELDS = fields.selection("Session")
RUN_FIELDS = fields.selection("Run")

SESSION_LIST = f"""
query SessionList($filter: SessionFilter, $page: Int!, $size: Int!) {{
  sessionPage(filter: $filter, page: $page, size: $size) {{
    content {{ {SESSION_FIELDS} }}
    totalElements totalPages page size
  }}
}}"""

SESSION_DETAIL = f"""
query SessionDetail($id: ID!, $first: Int!, $after: String) {{
  session(id: $id) {{
    {SESSION_FIELDS}
    messages(first: $first, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{ role content name toolCallId toolCalls {{ id name arguments }} }}
    }}
  }}
}}"""

SESSION_MESSAGES = f"""
query SessionMessages($id: ID!, $first: Int!, $after: String) {{
  session(id: $id) {{
    messages(first: $first, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{
        id role content runId createdAt name toolCallId
        toolCalls {{ id name arguments }}
        retrievedContext {{ {CHUNK_FIELDS} }}
      }}
    }}
  }}
}}"""

SESSION_RUNS = f"""
query SessionRuns($id: ID!, $first: Int!, $after: String) {{
  session(id: $id) {{
    runs(first: $first, after: $after) {{
      pageInfo {{ hasNextPage endCursor }}
      nodes {{
        {RUN_FIELDS} sessionId
        reasoning {{ {fields.selection("ReasoningConfig")} }}
        usage {{ {fields.selection("TokenUsage")} }}
      }}
    }}
  }}
}}"""

RUN_CONTEXT = f"""
query RunContext($id: ID!, $runId: ID!) {{
  session(id: $id) {{
    run(id: $runId) {{ id retrievalDiagnostics retrievedContext {{ {CHUNK_FIELDS} }} }}
  }}
}}"""

DELETE_SESSION = """
mutation DeleteSession($id: ID!) { deleteSession(id: $id) }"""

RUN_AGENT = """
mutation RunAgent(
  $agentId: String!, $message: String!, $sessionId: ID, $reasoning: ReasoningInput, $userId: String
) {
  runAgent(
    agentId: $agentId, message: $message, sessionId: $sessionId,
    reasoning: $reasoning, userId: $userId
  ) { id sessionId content status }
}"""


class RestError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("error"))
        self.status = status
        self.body = body


def _json(content: Any, status: int = 200) -> Response:
    return JSONResponse(content, status_code=status)


def endpoint(handler: Handler | None = None, *, query: tuple[str, ...] = ()) -> Any:
    """A path's handler (``@endpoint``, or ``@endpoint(query=...)`` naming the query
    parameters it accepts): any other parameter is a 400 that lists them, since a misspelt
    ``limit`` must not silently mean "everything"; every failure becomes ``{"error": ...}``
    with its status."""
    if handler is None:
        return lambda h: endpoint(h, query=query)

    async def run(request: Request) -> Response:
        try:
            unknown = [
                name
                for name in request.query_params
                if name not in query and not (METADATA_PARAMETER in query and _metadata_key(name))
            ]
            if unknown:
                raise RestError(400, {"error": _unknown_parameters(unknown, query)})
            return await handler(request)
        except RestError as exc:
            return _json(exc.body, exc.status)
        except ServiceError as exc:
            return _json({"error": exc.message}, exc.status)

    return run


METADATA_PARAMETER = "metadata.<key>"


def _metadata_key(name: str) -> str | None:
    """The key of a ``metadata.<key>`` query parameter."""
    return name.removeprefix("metadata.") if name.startswith("metadata.") else None


def metadata_parameters(request: Request) -> dict[str, Any] | None:
    """``?metadata.team=finance&metadata.tier=2`` as a metadata filter: each key matches its
    values (a repeated parameter: any of them) as strings, or as the number or boolean
    the text reads as (``2``, ``true``)."""
    out: dict[str, list[Any]] = {}
    for name, raw in request.query_params.multi_items():
        key = _metadata_key(name)
        if key is None:
            continue
        values = out.setdefault(key, [])
        values.append(raw)
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(parsed, bool | int | float):
            values.append(parsed)
    return out or None


def _unknown_parameters(unknown: list[str], accepted: tuple[str, ...]) -> str:
    names = ", ".join(repr(n) for n in dict.fromkeys(unknown))
    plural = "s" if len(set(unknown)) > 1 else ""
    if not accepted:
        return f"unknown query parameter{plural} {names}: this path takes none"
    return f"unknown query parameter{plural} {names}; this path accepts {', '.join(accepted)}"


async def execute(request: Request, document: str, variables: dict[str, Any]) -> dict[str, Any]:
    """Run one operation as the request's caller; raise ``RestError`` for its first error."""
    services = request.app.state.services
    if "context" not in request.scope:
        request.scope["context"] = await services.context(request)  # one caller per request
    result = await services.schema.execute(
        document, variable_values=variables, context_value=request.scope["context"]
    )
    if result.errors:
        error = result.errors[0]
        extensions = error.extensions or {}
        code = extensions.get("code", "INTERNAL")
        body: dict[str, Any] = {"error": error.message}
        if code == "AGENT_ERROR":
            body |= {"runId": extensions.get("runId"), "sessionId": extensions.get("sessionId")}
        raise RestError(status_of(error.original_error, code), body)
    return result.data or {}


def path_session_id(request: Request) -> str:
    """The session id in the path; one that cannot be an id is simply not found."""
    session_id = request.path_params["session_id"]
    if not is_client_id(session_id):
        raise RestError(404, {"error": SESSION_NOT_FOUND})
    return session_id


def query_filter(request: Request, camel: str, snake: str) -> tuple[str | None, bool]:
    """A filter given in either spelling, and whether both were given and disagree (filters
    combine, so nothing can match both)."""
    a, b = request.query_params.get(camel), request.query_params.get(snake)
    return (a if a is not None else b), (a is not None and b is not None and a != b)


def int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RestError(400, {"error": f"{name} must be an integer, got {raw!r}"}) from None
    if not -(2**31) <= value < 2**31:
        raise RestError(400, {"error": f"{name} is out of range: {raw}"})
    return value


async def _session_pages(
    request: Request, document: str, session_id: str, key: str
) -> tuple[dict[str, Any], AsyncIterator[list[dict[str, Any]]]]:
    """The session (as the document selects it) and an iterator over its ``key``
    connection, one operation of ``PAGE`` items at a time: a session of any length is
    served without ever being in memory whole. The first page is read before anything
    is sent, so a missing session is a 404."""
    data = await execute(request, document, {"id": session_id, "first": PAGE, "after": None})
    session = data["session"]
    if session is None:
        raise RestError(404, {"error": SESSION_NOT_FOUND})

    async def pages() -> AsyncIterator[list[dict[str, Any]]]:
        connection = session[key]
        while True:
            yield connection["nodes"]
            if not connection["pageInfo"]["hasNextPage"]:
                return
            after = connection["pageInfo"]["endCursor"]
            variables = {"id": session_id, "first": PAGE, "after": after}
            # Fresh loaders for each page: their caches would otherwise keep every page.
            request.scope["context"] = dataclasses.replace(request.scope["context"])
            following = (await execute(request, document, variables))["session"]
            if following is None:  # deleted while it was being sent
                return
            connection = following[key]

    return session, pages()


def _json_array(
    pages: AsyncIterator[list[dict[str, Any]]],
    shape: Callable[[dict[str, Any]], dict[str, Any]],
    prefix: bytes = b"",
    suffix: bytes = b"",
) -> StreamingResponse:
    """``prefix [items…] suffix``, sent page by page as it is read."""

    async def body() -> AsyncIterator[bytes]:
        yield prefix + b"["
        first = True
        async for items in pages:
            if not items:
                continue
            chunk = b",".join(orjson.dumps(shape(item)) for item in items)
            yield chunk if first else b"," + chunk
            first = False
        yield b"]" + suffix

    return StreamingResponse(body(), media_type="application/json")


# --- reshaping --------------------------------------------------------------------------


def _renaming(shape: type[BaseModel], type_name: str) -> list[tuple[str, str]]:
    """(GraphQL name, REST name) in the shape's key order: REST's names are the field
    map's, and a REST key the map does not give (nor the shim) fails here, at import."""
    by_rest = {rest: name for name, rest in fields.rest_names(type_name)}
    return [(by_rest[key], key) for key in shape.model_fields if key in by_rest]


CHUNK_NAMES = _renaming(Chunk, "RetrievedChunk")
SESSION_NAMES = _renaming(SessionSummary, "Session")
RUN_NAMES = _renaming(RunSummary, "Run")


def _shaped(names: list[tuple[str, str]], data: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL object in REST's names, in one step."""
    return {rest: data[name] for name, rest in names}


def _chunk(c: dict[str, Any]) -> dict[str, Any]:
    return _shaped(CHUNK_NAMES, c)


def _tool_calls(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "id": c["id"],
            "type": "function",
            "function": {"name": c["name"], "arguments": c["arguments"]},
        }
        for c in calls
    ]


def _openai_extras(m: dict[str, Any], out: dict[str, Any]) -> dict[str, Any]:
    """The keys that make a message replayable to an OpenAI-style chat API."""
    role = out["role"]
    if role == "assistant" and m["toolCalls"]:
        out["tool_calls"] = _tool_calls(m["toolCalls"])
    if role == "tool":
        out["tool_call_id"] = m["toolCallId"]
        out["name"] = m["name"]
    return out


def _history(m: dict[str, Any]) -> dict[str, Any]:
    return _openai_extras(m, {"role": m["role"].lower(), "content": m["content"]})


def _chat(m: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": m["id"],
        "role": m["role"].lower(),
        "content": m["content"],
        "run_id": m["runId"],
        "created_at": m["createdAt"],
    }
    _openai_extras(m, out)
    if out["role"] == "assistant":
        out["retrieved_context"] = [_chunk(c) for c in m["retrievedContext"]]
    return out


def _run(r: dict[str, Any]) -> dict[str, Any]:
    # Reasoning and usage are spelled in REST as in GraphQL: they pass as they are.
    out = _shaped(RUN_NAMES, r) | {
        "sessionId": r["sessionId"],
        "reasoning": r["reasoning"],
        "usage": r["usage"],
    }
    return {key: out[key] for key in RunSummary.model_fields}


# --- paths ------------------------------------------------------------------------------


LIST_PARAMETERS = (
    "userId", "user_id", "agentId", "agent_id", "page", "size", METADATA_PARAMETER
)  # fmt: skip


@endpoint(query=LIST_PARAMETERS)
async def list_sessions(request: Request) -> Response:
    user_id, user_conflict = query_filter(request, "userId", "user_id")
    agent_id, agent_conflict = query_filter(request, "agentId", "agent_id")
    filt = {"userId": user_id, "agentId": agent_id, "metadata": metadata_parameters(request)}
    variables = {
        "filter": {k: v for k, v in filt.items() if v is not None} or None,
        "page": int_param(request, "page", 0),
        "size": int_param(request, "size", 20),
    }
    page = (await execute(request, SESSION_LIST, variables))["sessionPage"]
    if user_conflict or agent_conflict:
        page |= {"content": [], "totalElements": 0, "totalPages": 0}
    content = [_shaped(SESSION_NAMES, s) for s in page["content"]]
    return _json({**page, "content": content})


@endpoint
async def get_session(request: Request) -> Response:
    session, pages = await _session_pages(
        request, SESSION_DETAIL, path_session_id(request), "messages"
    )
    summary = _shaped(SESSION_NAMES, session)
    head = {k: summary[k] for k in ("sessionId", "userId", "agentId")}
    tail = {k: summary[k] for k in ("createdAt", "updatedAt")}
    # {"sessionId": …, "agentId": …, "messages": [ … ], "createdAt": …, "updatedAt": …}
    prefix = orjson.dumps(head)[:-1] + b',"messages":'
    suffix = b"," + orjson.dumps(tail)[1:]
    return _json_array(pages, _history, prefix, suffix)


@endpoint
async def session_messages(request: Request) -> Response:
    _, pages = await _session_pages(request, SESSION_MESSAGES, path_session_id(request), "messages")
    return _json_array(pages, _chat)


@endpoint
async def session_runs(request: Request) -> Response:
    _, pages = await _session_pages(request, SESSION_RUNS, path_session_id(request), "runs")
    return _json_array(pages, _run)


@endpoint
async def run_retrieved_context(request: Request) -> Response:
    session_id = path_session_id(request)
    variables = {"id": session_id, "runId": request.path_params["run_id"]}
    data = await execute(request, RUN_CONTEXT, variables)
    if data["session"] is None:
        raise RestError(404, {"error": SESSION_NOT_FOUND})
    run = data["session"]["run"]
    if run is None:
        raise RestError(404, {"error": RUN_NOT_FOUND})
    entries: list[dict[str, Any]] = []
    if run["retrievalDiagnostics"] is not None:
        # The marker comes first and is not overridden by a stored "_type" key.
        stored = {k: v for k, v in run["retrievalDiagnostics"].items() if k != "_type"}
        entries.append({"_type": "retrieval_diagnostics", **stored})
    entries += [_chunk(c) for c in run["retrievedContext"]]
    return _json({"session_id": session_id, "run_id": run["id"], "retrieved_context": entries})


@endpoint
async def delete_session(request: Request) -> Response:
    deleted = await execute(request, DELETE_SESSION, {"id": path_session_id(request)})
    if not deleted["deleteSession"]:
        raise RestError(404, {"error": SESSION_NOT_FOUND})
    return Response(status_code=204)


@endpoint
async def run_agent(request: Request) -> Response:
    # A JSON content type also keeps browsers from sending this cross-site without asking.
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise RestError(415, {"error": "send the body as application/json"})
    try:
        body = AgentRunRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RestError(400, {"error": describe(exc, AgentRunRequest)}) from None
    variables = body.variables(request.path_params["agentId"])
    if events.wants_stream(request, body.stream):
        # Bad input, an unknown agent, another user's session: errors before any event.
        started = (await execute(request, events.START_RUN, variables))["startRun"]
        runs = events.context_of(request).runs
        return events.event_stream(runs, started["sessionId"], started["id"])
    run = (await execute(request, RUN_AGENT, variables))["runAgent"]
    response = {
        "runId": run["id"],
        "sessionId": run["sessionId"],
        "content": run["content"],
        "status": run["status"],
    }
    return _json(response, 201)


async def _visible_run(request: Request) -> tuple[str, str]:
    session_id = path_session_id(request)
    run_id = request.path_params["run_id"]
    data = await execute(request, events.RUN_STATUS, {"id": session_id, "runId": run_id})
    if data["session"] is None:
        raise RestError(404, {"error": SESSION_NOT_FOUND})
    if data["session"]["run"] is None:
        raise RestError(404, {"error": RUN_NOT_FOUND})
    return session_id, run_id


@endpoint
async def run_events(request: Request) -> Response:
    after = events.last_event_id(request.headers.get("last-event-id"))
    if after is None:
        raise RestError(400, {"error": "Last-Event-ID must be the id of an event of this run"})
    session_id, run_id = await _visible_run(request)
    return events.event_stream(events.context_of(request).runs, session_id, run_id, after)


@endpoint
async def cancel_run(request: Request) -> Response:
    session_id, run_id = await _visible_run(request)
    data = await execute(request, events.CANCEL_RUN, {"id": session_id, "runId": run_id})
    run = data["cancelRun"]
    # 202: the run's server has the cancel but had not ended the run when this answered.
    return _json(_run(run), 202 if run["status"] == "RUNNING" else 200)


async def session_resource(request: Request) -> Response:
    # One route for every method, so a 405 on this path names them all in Allow.
    if request.method == "PATCH":
        from .beyond import update_session  # the paths beyond the references import these

        return await update_session(request)
    return await (delete_session if request.method == "DELETE" else get_session)(request)


async def openapi(request: Request) -> Response:
    return _json(served_document(str(request.base_url).rstrip("/")))


routes = [
    Route("/api/sessions", list_sessions, methods=["GET"]),
    Route("/api/sessions/{session_id}", session_resource, methods=["GET", "DELETE", "PATCH"]),
    Route("/api/sessions/{session_id}/messages", session_messages, methods=["GET"]),
    Route("/api/sessions/{session_id}/runs", session_runs, methods=["GET"]),
    Route(
        "/api/sessions/{session_id}/runs/{run_id}/retrieved-context",
        run_retrieved_context,
        methods=["GET"],
    ),
    Route("/api/sessions/{session_id}/runs/{run_id}/events", run_events, methods=["GET"]),
    Route("/api/sessions/{session_id}/runs/{run_id}/cancel", cancel_run, methods=["POST"]),
    Route("/api/agents/{agentId}/runs", run_agent, methods=["POST"]),
    Route("/api/openapi.json", openapi, methods=["GET"]),
]
