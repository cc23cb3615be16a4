"""What each client method sends and how it reads the answer, written once for both clients.

A method is a ``Call`` (one request and the function that reads its answer), a
``Page`` chain (calls that each return some items and the next call), or a ``Flow``: a
generator that yields calls and is sent their results, for what takes several requests.
``Client`` and ``AsyncClient`` only send them (sans-I/O, as in h11 or httpx's own core).

Which API each method uses:

- GraphQL for the reads, because one request brings exactly the fields wanted: session
  lists page by keyset cursor with the server's maximum page (100; the REST list pages by
  offset, which skips or repeats sessions updated while you page, and has neither title,
  metadata nor counts); messages with their chunks and every run field (REST's runs lack
  input, started_at and diagnostics); a whole conversation in one request.
- GraphQL for ``run_agent``, because it answers the whole stored run (usage, reasoning,
  timestamps), where REST answers four fields.
- REST for a run's retrieved context (its documented shape, diagnostics first), delete
  (204 / 404) and streamed runs (server-sent events exist on REST only).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx
from httpx_sse import ServerSentEvent
from pydantic import ValidationError

from .errors import AgentSessionsError, graphql_error, invalid_answer, rest_error
from .events import EventError, RunEvent, UnknownEvent, parse_event
from .models import Conversation, Message, RetrievedContext, Run, SearchHit, Session

T = TypeVar("T")
R = TypeVar("R")

SESSIONS_PAGE = 100  # the server's maximum `first` for sessions
ITEMS_PAGE = 1000  # … and for messages and runs

SESSION_FIELDS = (
    "id userId agentId title metadata createdAt updatedAt messageCount runCount expiresAt "
    "forkedFrom { sessionId messageId }"
)
CHUNK_FIELDS = (
    "id text score retrievalScore rerankerScore sourceId sourceName knowledgeBaseId kbName "
    "indexingStrategy meta includedInContext"
)
MESSAGE_FIELDS = "id role content runId createdAt name toolCallId toolCalls { id name arguments }"
RUN_FIELDS = (
    "id sessionId agentId status input content error createdAt startedAt completedAt "
    "retrievalDiagnostics reasoning { enabled effort budgetTokens } "
    "usage { inputTokens outputTokens reasoningTokens totalTokens }"
)
PAGE_INFO = "pageInfo { hasNextPage endCursor }"

SESSIONS = f"""
query Sessions($filter: SessionFilter, $first: Int!, $after: String) {{
  sessions(filter: $filter, first: $first, after: $after) {{
    {PAGE_INFO} nodes {{ {SESSION_FIELDS} }}
  }}
}}"""
SESSION = f"query Session($id: ID!) {{ session(id: $id) {{ {SESSION_FIELDS} }} }}"
MESSAGES = f"""
query Messages($id: ID!, $first: Int!, $after: String) {{
  session(id: $id) {{
    messages(first: $first, after: $after) {{
      {PAGE_INFO} nodes {{ {MESSAGE_FIELDS} retrievedContext {{ {CHUNK_FIELDS} }} }}
    }}
  }}
}}"""
RUNS = f"""
query Runs($id: ID!, $first: Int!, $after: String) {{
  session(id: $id) {{
    runs(first: $first, after: $after) {{ {PAGE_INFO} nodes {{ {RUN_FIELDS} }} }}
  }}
}}"""
RUNS_WITH_CONTEXT = f"""
query RunsWithContext($id: ID!, $first: Int!, $after: String) {{
  session(id: $id) {{
    runs(first: $first, after: $after) {{
      {PAGE_INFO} nodes {{ {RUN_FIELDS} retrievedContext {{ {CHUNK_FIELDS} }} }}
    }}
  }}
}}"""
# Messages without chunks: a conversation's chunks come once, with their runs.
MESSAGES_ONLY = f"""
query MessagesOnly($id: ID!, $first: Int!, $after: String) {{
  session(id: $id) {{
    messages(first: $first, after: $after) {{ {PAGE_INFO} nodes {{ {MESSAGE_FIELDS} }} }}
  }}
}}"""
CONVERSATION = f"""
query Conversation($id: ID!, $first: Int!) {{
  session(id: $id) {{
    {SESSION_FIELDS}
    messages(first: $first) {{ {PAGE_INFO} nodes {{ {MESSAGE_FIELDS} }} }}
    runs(first: $first) {{
      {PAGE_INFO} nodes {{ {RUN_FIELDS} retrievedContext {{ {CHUNK_FIELDS} }} }}
    }}
  }}
}}"""
RUN_AGENT = f"""
mutation RunAgent(
  $agentId: String!, $message: String!, $sessionId: ID, $reasoning: ReasoningInput, $userId: String
) {{
  runAgent(
    agentId: $agentId, message: $message, sessionId: $sessionId,
    reasoning: $reasoning, userId: $userId
  ) {{ {RUN_FIELDS} retrievedContext {{ {CHUNK_FIELDS} }} }}
}}"""


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request, and how its answer becomes a result."""

    method: str
    path: str
    read: Callable[[httpx.Response], T]
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    next: Call[Page[T]] | None


# A generator that yields calls, is sent each call's result, and returns the outcome.
Flow = Generator[Call[Any], Any, T]


def collect(call: Call[Page[T]] | None) -> Flow[list[T]]:
    """Every item of a page chain."""
    items: list[T] = []
    while call is not None:
        page = yield call
        items += page.items
        call = page.next
    return items


def _segment(value: str) -> str:
    return quote(value, safe="")


def _model(response: httpx.Response, build: Callable[[], R]) -> R:
    try:
        return build()
    except (ValidationError, KeyError, TypeError) as exc:
        raise invalid_answer(response, f"the answer is not the documented shape: {exc}") from None


# --- GraphQL --------------------------------------------------------------------------------


def graphql(
    query: str, variables: dict[str, Any], read: Callable[[httpx.Response, dict[str, Any]], T]
) -> Call[T]:
    def read_answer(response: httpx.Response) -> T:
        try:
            body = response.json()
        except ValueError:
            raise rest_error(response) from None
        if isinstance(body, dict) and body.get("errors"):
            raise graphql_error(response.status_code, body["errors"][0])
        if response.status_code != 200 or not isinstance(body, dict) or "data" not in body:
            raise rest_error(response)
        return _model(response, lambda: read(response, body["data"]))

    return Call("POST", "/graphql", read_answer, json={"query": query, "variables": variables})


def not_found(what: str) -> AgentSessionsError:
    return AgentSessionsError(404, "NOT_FOUND", f"{what} not found")


def _found(data: dict[str, Any], key: str = "session") -> dict[str, Any]:
    if data.get(key) is None:
        raise not_found(key)
    return data[key]


def _timestamp(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("give an aware datetime (e.g. datetime(..., tzinfo=UTC))")
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sessions(
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    updated_after: datetime | str | None = None,
    updated_before: datetime | str | None = None,
    metadata: Mapping[str, Any] | None = None,
    after: str | None = None,
) -> Call[Page[Session]]:
    """A page of sessions (newest ``updated_at`` first) and the call for the next one."""
    filt = {
        "userId": user_id,
        "agentId": agent_id,
        "updatedAfter": _timestamp(updated_after),
        "updatedBefore": _timestamp(updated_before),
        "metadata": dict(metadata) if metadata else None,
    }
    filt = {k: v for k, v in filt.items() if v is not None}

    def read(_: httpx.Response, data: dict[str, Any]) -> Page[Session]:
        connection = data["sessions"]
        items = [Session.model_validate(n) for n in connection["nodes"]]
        info = connection["pageInfo"]
        next_call = None
        if info["hasNextPage"] and items:
            next_call = sessions(
                user_id=user_id, agent_id=agent_id, updated_after=updated_after,
                updated_before=updated_before, metadata=metadata, after=info["endCursor"],
            )  # fmt: skip
        return Page(items, next_call)

    variables = {"filter": filt or None, "first": SESSIONS_PAGE, "after": after}
    return graphql(SESSIONS, variables, read)


def session(session_id: str) -> Call[Session]:
    return graphql(
        SESSION, {"id": session_id}, lambda _, data: Session.model_validate(_found(data))
    )


def _messages(session_id: str, nodes: Iterable[dict[str, Any]]) -> list[Message]:
    return [Message.model_validate({**n, "sessionId": session_id}) for n in nodes]


def _items_page(
    query: str, session_id: str, key: str, build: Callable[[list[dict[str, Any]]], list[T]]
) -> Callable[[str | None], Call[Page[T]]]:
    """The page chain of a session's messages or runs, from a cursor on."""

    def page_from(after: str | None) -> Call[Page[T]]:
        def read(_: httpx.Response, data: dict[str, Any]) -> Page[T]:
            connection = _found(data)[key]
            info = connection["pageInfo"]
            more = page_from(info["endCursor"]) if info["hasNextPage"] else None
            return Page(build(connection["nodes"]), more)

        return graphql(query, {"id": session_id, "first": ITEMS_PAGE, "after": after}, read)

    return page_from


def messages(session_id: str, *, retrieved_context: bool = True) -> Flow[list[Message]]:
    query = MESSAGES if retrieved_context else MESSAGES_ONLY
    pages = _items_page(query, session_id, "messages", lambda n: _messages(session_id, n))
    return collect(pages(None))


def runs(session_id: str, *, retrieved_context: bool = False) -> Flow[list[Run]]:
    query = RUNS_WITH_CONTEXT if retrieved_context else RUNS
    pages = _items_page(query, session_id, "runs", lambda n: [Run.model_validate(r) for r in n])
    return collect(pages(None))


def conversation(session_id: str) -> Flow[Conversation]:
    """A session with all its messages and runs (and chunks): one request, unless it has
    more than a page of either."""

    def read(_: httpx.Response, data: dict[str, Any]) -> dict[str, Any]:
        return _found(data)

    doc = yield graphql(CONVERSATION, {"id": session_id, "first": ITEMS_PAGE}, read)
    message_nodes, run_nodes = doc["messages"]["nodes"], doc["runs"]["nodes"]
    for key, query, nodes in (
        ("messages", MESSAGES_ONLY, message_nodes),
        ("runs", RUNS_WITH_CONTEXT, run_nodes),
    ):
        info = doc[key]["pageInfo"]
        if info["hasNextPage"]:
            rest = _items_page(query, session_id, key, list)(info["endCursor"])
            nodes += yield from collect(rest)
    run_list = [Run.model_validate(r) for r in run_nodes]
    chunks = {r["id"]: r.get("retrievedContext") or [] for r in run_nodes}
    # An assistant message's retrieved context is its run's (the server's rule too).
    for m in message_nodes:
        if m.get("role") == "ASSISTANT" and m.get("runId") in chunks:
            m["retrievedContext"] = chunks[m["runId"]]
    return Conversation(
        session=Session.model_validate(doc),
        messages=_messages(session_id, message_nodes),
        runs=run_list,
    )


def _reasoning(reasoning: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if reasoning is None:
        return None
    r = dict(reasoning)
    if "budget_tokens" in r:
        r["budgetTokens"] = r.pop("budget_tokens")
    return r


def run_agent(
    agent_id: str,
    message: str,
    *,
    session_id: str | None = None,
    user_id: str | None = None,
    reasoning: Mapping[str, Any] | None = None,
) -> Call[Run]:
    variables = {"agentId": agent_id, "message": message, "sessionId": session_id,
                 "userId": user_id, "reasoning": _reasoning(reasoning)}  # fmt: skip
    return graphql(RUN_AGENT, variables, lambda _, data: Run.model_validate(data["runAgent"]))


# --- REST -----------------------------------------------------------------------------------


def _rest_json(response: httpx.Response) -> Any:
    if not response.is_success:
        raise rest_error(response)
    try:
        return response.json()
    except ValueError:
        raise invalid_answer(response, "the answer is not JSON") from None


def retrieved_context(session_id: str, run_id: str) -> Call[RetrievedContext]:
    def read(response: httpx.Response) -> RetrievedContext:
        body = _rest_json(response)

        def build() -> RetrievedContext:
            entries = body["retrieved_context"]
            diagnostics = None
            if entries and entries[0].get("_type") == "retrieval_diagnostics":
                diagnostics = {k: v for k, v in entries[0].items() if k != "_type"}
                entries = entries[1:]
            return RetrievedContext(
                session_id=body["session_id"],
                run_id=body["run_id"],
                retrieval_diagnostics=diagnostics,
                chunks=entries,
            )

        return _model(response, build)

    path = f"/api/sessions/{_segment(session_id)}/runs/{_segment(run_id)}/retrieved-context"
    return Call("GET", path, read)


def delete(session_id: str) -> Call[None]:
    def read(response: httpx.Response) -> None:
        if response.status_code != 204:
            raise rest_error(response)

    return Call("DELETE", f"/api/sessions/{_segment(session_id)}", read)


_UNSET: Any = object()
_CHANGE_TYPES = {"title": "String", "metadata": "JSON", "expiresAt": "DateTime"}


def update_session(
    session_id: str, *, title: Any = _UNSET, metadata: Any = _UNSET, expires_at: Any = _UNSET
) -> Call[Session]:
    """Change what is given (``None`` clears it): one updateSession."""
    given = {"title": title, "metadata": metadata, "expiresAt": expires_at}
    variables: dict[str, Any] = {k: v for k, v in given.items() if v is not _UNSET}
    if "expiresAt" in variables:
        variables["expiresAt"] = _timestamp(variables["expiresAt"])
    declared = "".join(f", ${k}: {_CHANGE_TYPES[k]}" for k in variables)
    arguments = "".join(f", {k}: ${k}" for k in variables)
    query = (f"mutation UpdateSession($id: ID!{declared}) "
             f"{{ updateSession(id: $id{arguments}) {{ {SESSION_FIELDS} }} }}")  # fmt: skip
    return graphql(
        query,
        {"id": session_id, **variables},
        lambda _, data: Session.model_validate(_found(data, "updateSession")),
    )


def fork(session_id: str, at_message_id: str, *, title: str | None = None) -> Call[Session]:
    query = (
        "mutation Fork($id: ID!, $at: ID!, $title: String) "
        f"{{ forkSession(sessionId: $id, atMessageId: $at, title: $title) {{ {SESSION_FIELDS} }} }}"
    )
    variables = {"id": session_id, "at": at_message_id, "title": title}
    return graphql(query, variables, lambda _, d: Session.model_validate(d["forkSession"]))


def delete_run(session_id: str, run_id: str) -> Call[None]:
    def read(response: httpx.Response) -> None:
        if response.status_code != 204:
            raise rest_error(response)

    return Call("DELETE", f"/api/sessions/{_segment(session_id)}/runs/{_segment(run_id)}", read)


SEARCH = """
query Search($q: String!, $filter: SessionFilter, $first: Int!, $after: String,
             $order: SearchOrder!) {
  search(query: $q, filter: $filter, first: $first, after: $after, order: $order) {
    pageInfo { hasNextPage endCursor }
    nodes { sessionId messageId runId role snippet score createdAt }
  }
}"""


def search(
    query: str,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    newest: bool = False,
    limit: int = 20,
) -> Call[list[SearchHit]]:
    """The best (or newest) ``limit`` hits, at most 100."""
    filt = {k: v for k, v in (("userId", user_id), ("agentId", agent_id)) if v is not None}
    variables = {"q": query, "filter": filt or None, "first": limit, "after": None,
                 "order": "NEWEST" if newest else "BEST"}  # fmt: skip
    return graphql(
        SEARCH,
        variables,
        lambda _, data: [SearchHit.model_validate(n) for n in data["search"]["nodes"]],
    )


def stream_run(
    agent_id: str,
    message: str,
    *,
    session_id: str | None = None,
    user_id: str | None = None,
    reasoning: Mapping[str, Any] | None = None,
) -> Call[None]:
    """The request of a streamed run; its answer is read as events (``events.parse_event``)
    by the client, once ``check_stream`` passed."""
    body: dict[str, Any] = {"message": message}
    if session_id is not None:
        body["sessionId"] = session_id
    if user_id is not None:
        body["userId"] = user_id
    if reasoning is not None:
        body["reasoning"] = _reasoning(reasoning)
    headers = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
    return Call("POST", f"/api/agents/{_segment(agent_id)}/runs", lambda _: None, body, headers)


def check_stream(response: httpx.Response) -> None:
    """Raise unless the answer is an event stream (an error answer must have been read)."""
    if not response.is_success:
        raise rest_error(response)
    media = response.headers.get("content-type", "").partition(";")[0].strip()
    if media != "text/event-stream":
        # e.g. a server from before streamed runs, answering the run as one JSON object
        raise invalid_answer(response, f"expected text/event-stream, got {media or 'nothing'}")


def event(response: httpx.Response, sse: ServerSentEvent) -> RunEvent | UnknownEvent:
    """One server-sent event of a streamed run, typed."""
    try:
        return parse_event(sse.event, sse.data, sse.id or None)
    except EventError as exc:
        raise invalid_answer(response, str(exc)) from None
