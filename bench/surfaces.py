"""What is measured: each surface's request, and the floor route that answers the same
bytes with the driver's find_one and orjson."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agent_sessions.storage.layout import SESSIONS
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


def _floor(request: Request) -> Any:
    storage = request.app.state.services.storage
    return storage.client[storage.database][SESSIONS]


def _orjson(doc: Any) -> Response:
    return Response(orjson.dumps(doc), media_type="application/json")


async def floor_chat(request: Request) -> Response:
    """The chat view's bytes: the last 50 messages and the cited fields of the chunks."""
    doc = await _floor(request).find_one(
        {"_id": request.path_params["id"]},
        {"_id": 0, "messages": {"$slice": -50}, "runs.id": 1, **CHUNK_PROJECTION},
    )
    return _orjson(doc)


async def floor_messages(request: Request) -> Response:
    """REST /messages' bytes: every message and every run's chunks."""
    doc = await _floor(request).find_one(
        {"_id": request.path_params["id"]},
        {"_id": 0, "messages": 1, "runs.id": 1, "runs.retrieved_context": 1},
    )
    return _orjson(doc)


async def floor_run(request: Request) -> Response:
    """The run inspector's bytes: one run with its diagnostics and chunks."""
    run_id = request.path_params["run"]
    doc = await _floor(request).find_one(
        {"_id": request.path_params["id"], "runs.id": run_id}, {"_id": 0, "runs.$": 1}
    )
    return _orjson(doc)


async def floor_list(request: Request) -> Response:
    """The session list's bytes: 20 summaries of one user, and their count."""
    col = _floor(request)
    user = request.path_params["user"]
    docs = await col.find(
        {"user_id": user},
        {"user_id": 1, "agent_id": 1, "created_at": 1, "updated_at": 1},
        sort=[("updated_at", -1), ("_id", 1)],
        limit=20,
    ).to_list()
    return _orjson({"content": docs, "total": await col.count_documents({"user_id": user})})


async def floor_dump(request: Request) -> Response:
    """The notebook dump's bytes: the whole session document."""
    return _orjson(await _floor(request).find_one({"_id": request.path_params["id"]}))


async def floor_append(request: Request) -> Response:
    """recordRun's write, bare: the same atomic update, through the driver, no GraphQL."""
    t = now()
    run_id = uuid.uuid4().hex
    pair = [
        message_document(role="user", content="One more question?", run_id=run_id, created_at=t),
        message_document(role="assistant", content="One more answer.", run_id=run_id, created_at=t),
    ]
    run = run_document(
        run_id=run_id, agent_id="finance_agent", status="COMPLETED", messages=pair, created_at=t
    )
    await _floor(request).update_one(
        {"_id": request.path_params["id"], "runs.id": {"$ne": run_id}},
        {"$push": {"runs": run, "messages": {"$each": pair}},
         "$inc": {"run_count": 1, "message_count": 2}, "$max": {"updated_at": t}},
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
