"""What is measured: each surface's request, and the floor route that answers the same
bytes with the driver's find_one and orjson."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agent_sessions.storage.layout import DEFAULT_BOUNDS, PAGES, SESSIONS
from agent_sessions.storage.sessions import message_document, now, run_document

CHUNK_FIELDS = (
    "id text score retrievalScore rerankerScore sourceId sourceName knowledgeBaseId kbName "
    "indexingStrategy meta includedInContext"
)

CHAT_VIEW = """
query Chat($id: ID!) {
  session(id: $id) {
    messages(last: 50) { nodes { role content createdAt retrievedContext { id sourceName score } } }
  }
}"""

SESSION_LIST = """
query List($user: String!) {
  sessions(first: 20, filter: {userId: $user}) {
    totalCount
    nodes { id userId agentId createdAt updatedAt }
  }
}"""

RUN_INSPECTOR = f"""
query Run($session: ID!, $run: ID!) {{
  run(sessionId: $session, runId: $run) {{
    id status retrievalDiagnostics retrievedContext {{ {CHUNK_FIELDS} }}
  }}
}}"""

NOTEBOOK_DUMP = f"""
query Dump($id: ID!) {{
  session(id: $id) {{
    id userId agentId title metadata createdAt updatedAt messageCount runCount
    messages(first: 1000) {{
      totalCount
      pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
      edges {{
        cursor
        node {{
          id role content createdAt runId name toolCallId
          toolCalls {{ id name arguments }}
          retrievedContext {{ {CHUNK_FIELDS} }}
        }}
      }}
    }}
    runs(first: 1000) {{
      totalCount
      nodes {{
        id sessionId agentId status input content error createdAt startedAt completedAt
        retrievalDiagnostics
        reasoning {{ enabled effort budgetTokens }}
        usage {{ inputTokens outputTokens reasoningTokens totalTokens }}
      }}
    }}
  }}
}}"""

NESTED_LIST = """
query Nested($n: Int!) {
  sessions(first: $n) {
    nodes {
      messages(last: 5) { nodes { content retrievedContext { score } } }
      runs(last: 3) { nodes { status } }
    }
  }
}"""

RECORD_RUN = """
mutation Append($input: RecordRunInput!) { recordRun(input: $input) { id status } }"""

ONE_FIELD = "{ __typename }"

CHUNK_PROJECTION = {f"runs.retrieved_context.{f}": 1 for f in ("id", "source_name", "score")}

# The floors read the stored documents with the bare driver: the head, and the pages
# (``session_pages``, by session id and first message seq) where the bytes live there.
# They know the layout (storage.layout) on purpose: they are what storage's reads are
# measured against.


def _heads(request: Request) -> Any:
    storage = request.app.state.services.storage
    return storage.client[storage.database][SESSIONS]


def _pages(request: Request) -> Any:
    storage = request.app.state.services.storage
    return storage.client[storage.database][PAGES]


def _orjson(doc: Any) -> Response:
    return Response(orjson.dumps(doc), media_type="application/json")


async def floor_chat(request: Request) -> Response:
    """The chat view's bytes: the last 50 messages and the cited fields of the chunks."""
    sid = request.path_params["id"]
    head = await _heads(request).find_one(
        {"_id": sid},
        {"_id": 0, "m_cut": 1, "pages": 1, "messages": {"$slice": -50}, "runs.id": 1,
         **CHUNK_PROJECTION},
    )  # fmt: skip
    need = 50 - len(head["messages"])
    older = []
    if need > 0 and head["pages"]:
        cut = head["m_cut"]
        older = await _pages(request).find(
            {"session_id": sid, "m_lo": {"$gt": cut - need - DEFAULT_BOUNDS.page_seqs,
                                          "$lt": cut}},
            {"_id": 0, "messages": {"$slice": -need}, "runs.id": 1, **CHUNK_PROJECTION},
        ).to_list()  # fmt: skip
    return _orjson({"head": head, "pages": older})


async def _whole(request: Request, projection: dict[str, Any]) -> dict[str, Any]:
    sid = request.path_params["id"]
    head = await _heads(request).find_one({"_id": sid}, projection)
    pages = await _pages(request).find({"session_id": sid}, projection, sort=[("n", 1)]).to_list()
    return {"head": head, "pages": pages}


async def floor_messages(request: Request) -> Response:
    """REST /messages' bytes: every message and every run's chunks."""
    projection = {"_id": 0, "messages": 1, "runs.id": 1, "runs.retrieved_context": 1}
    return _orjson(await _whole(request, projection))


async def floor_run(request: Request) -> Response:
    """The run inspector's bytes: one run with its diagnostics and chunks."""
    sid, run_id = request.path_params["id"], request.path_params["run"]
    doc = await _heads(request).find_one({"_id": sid, "runs.id": run_id}, {"_id": 0, "runs.$": 1})
    if doc is None:
        doc = await _pages(request).find_one(
            {"session_id": sid, "runs.id": run_id}, {"_id": 0, "runs.$": 1}
        )
    return _orjson(doc)


async def floor_list(request: Request) -> Response:
    """The session list's bytes: 20 summaries of one user, and their count."""
    col = _heads(request)
    user = request.path_params["user"]
    docs = await col.find(
        {"user_id": user},
        {"user_id": 1, "agent_id": 1, "created_at": 1, "updated_at": 1},
        sort=[("updated_at", -1), ("_id", 1)],
        limit=20,
    ).to_list()
    return _orjson({"content": docs, "total": await col.count_documents({"user_id": user})})


async def floor_dump(request: Request) -> Response:
    """The notebook dump's bytes: the session's documents, whole."""
    return _orjson(await _whole(request, {"_id": 0}))


async def floor_append(request: Request) -> Response:
    """recordRun's write without HTTP parsing of GraphQL: storage's own append (one update
    of the head, and a move of older turns into a page when the head is full)."""
    t = now()
    run_id = uuid.uuid4().hex
    pair = [
        message_document(role="user", content="One more question?", run_id=run_id, created_at=t),
        message_document(role="assistant", content="One more answer.", run_id=run_id, created_at=t),
    ]
    run = run_document(run_id=run_id, agent_id="finance_agent", status="COMPLETED", created_at=t)
    await request.app.state.services.storage.sessions.record_run(
        session_id=request.path_params["id"], owner=None,
        new_session={"user_id": "bench-user", "agent_id": "finance_agent"},
        run=run, messages=pair,
    )  # fmt: skip
    return _orjson({"id": run_id, "status": "COMPLETED"})


FLOOR_ROUTES = [
    Route("/floor/chat/{id}", floor_chat),
    Route("/floor/messages/{id}", floor_messages),
    Route("/floor/run/{id}/{run}", floor_run),
    Route("/floor/list/{user}", floor_list),
    Route("/floor/dump/{id}", floor_dump),
    Route("/floor/append/{id}", floor_append, methods=["POST"]),
]
