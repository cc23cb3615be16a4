"""What the REST tests share: the documented keys and errors, a recorded conversation and
builders of sessions with known times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from agent_sessions.storage import Storage

from .helpers import GraphQLClient, record

T0 = datetime(2026, 5, 6, 10, 0, 0, tzinfo=UTC)

SESSION_NOT_FOUND = {"error": "session not found"}

RUN_NOT_FOUND = {"error": "run not found in this session"}

SESSION_KEYS = {"sessionId", "userId", "agentId", "createdAt", "updatedAt"}

CHUNK_KEYS = {
    "id",
    "text",
    "score",
    "retrieval_score",
    "reranker_score",
    "source_id",
    "source_name",
    "knowledge_base_id",
    "kb_name",
    "indexing_strategy",
    "meta",
    "included_in_context",
}

RUN_KEYS = {
    "runId",
    "sessionId",
    "agentId",
    "status",
    "content",
    "createdAt",
    "completedAt",
    "reasoning",
    "usage",
    "error",
}


def iso(t: datetime) -> str:
    """How the service writes a timestamp: RFC 3339 UTC with Z, milliseconds when any."""
    t = t.astimezone(UTC).replace(tzinfo=None)
    if t.microsecond:
        return t.isoformat(timespec="milliseconds") + "Z"
    return t.isoformat(timespec="seconds") + "Z"


def assert_error(response: httpx.Response, status: int) -> str:
    """An error answer: the status, JSON, exactly ``{"error": "<message>"}``, no trace."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].split(";")[0].strip() == "application/json"
    assert "Traceback" not in response.text
    assert "<html" not in response.text.lower()
    body = response.json()
    assert isinstance(body, dict)
    assert set(body) == {"error"}, body
    assert isinstance(body["error"], str)
    assert body["error"].strip() != ""
    return body["error"]


async def set_times(
    storage: Storage, session_id: str, *, updated: datetime, created: datetime | None = None
) -> None:
    """Pin a session's timestamps so the list's order and values are exact."""
    fields: dict[str, Any] = {"updated_at": updated}
    if created is not None:
        fields["created_at"] = created
    result = await storage.sessions.heads.update_one({"_id": session_id}, {"$set": fields})
    assert result.matched_count == 1


async def make_session(
    gql: GraphQLClient,
    storage: Storage,
    session_id: str,
    *,
    user: str = "user-1",
    agent: str = "finance_agent",
    created: datetime = T0,
    updated: datetime = T0,
) -> None:
    await record(
        gql,
        sessionId=session_id,
        userId=user,
        agentId=agent,
        createdAt=iso(created),
        messages=[{"role": "USER", "content": f"hello from {session_id}"}],
    )
    await set_times(storage, session_id, updated=updated, created=created)


def listed(session_id: str, user: str, agent: str, created: datetime, updated: datetime) -> dict:
    return {
        "sessionId": session_id,
        "userId": user,
        "agentId": agent,
        "createdAt": iso(created),
        "updatedAt": iso(updated),
    }


async def _three_sessions(gql: GraphQLClient, storage: Storage) -> list[dict]:
    """Three sessions whose updatedAt order differs from their creation and id order."""
    specs = [
        # id, user, agent, created, updated
        ("s-a", "user-1", "finance_agent", T0, T0 + timedelta(hours=1)),
        ("s-b", "user-1", "support_agent", T0 + timedelta(minutes=1), T0 + timedelta(hours=3)),
        ("s-c", "user-2", "finance_agent", T0 + timedelta(minutes=2), T0 + timedelta(hours=2)),
    ]
    for sid, user, agent, created, updated in specs:
        await make_session(
            gql, storage, sid, user=user, agent=agent, created=created, updated=updated
        )
    by_id = {s[0]: listed(*s) for s in specs}
    return [by_id["s-b"], by_id["s-c"], by_id["s-a"]]  # newest updatedAt first


TOOL_CALLS_INPUT = [
    {"id": "call_1", "name": "get_revenue", "arguments": '{"quarter": "Q1", "year": 2026}'},
    {"id": "call_2", "name": "get_costs", "arguments": "{}"},
]

TOOL_CALLS_OPENAI = [
    {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_revenue", "arguments": '{"quarter": "Q1", "year": 2026}'},
    },
    {"id": "call_2", "type": "function", "function": {"name": "get_costs", "arguments": "{}"}},
]

CHUNKS_INPUT = [
    # rank order as recorded; deliberately not sorted by any score
    {
        "id": "chunk-b",
        "text": "Revenue for Q1 was $4.2M.",
        "score": 0.5,
        "retrievalScore": 0.61,
        "rerankerScore": 0.5,
        "sourceId": "src-1",
        "sourceName": "Q1-2026.pdf",
        "knowledgeBaseId": "kb-1",
        "kbName": "Finance docs",
        "indexingStrategy": "chunk_embed",
        "meta": {"page": 3, "tags": ["q1", "revenue"]},
        "includedInContext": True,
    },
    {
        "id": "chunk-a",
        "text": "Costs for Q1 were $1.1M.",
        "score": 0.9,
        "retrievalScore": 0.42,
        "rerankerScore": 0.9,
        "sourceId": "src-2",
        "sourceName": "Costs.xlsx",
        "knowledgeBaseId": "kb-1",
        "kbName": "Finance docs",
        "indexingStrategy": "late_chunking",
        "meta": {},
        "includedInContext": False,
    },
    {"id": "chunk-c", "text": "bare chunk"},
]

CHUNKS_OUT = [
    {
        "id": "chunk-b",
        "text": "Revenue for Q1 was $4.2M.",
        "score": 0.5,
        "retrieval_score": 0.61,
        "reranker_score": 0.5,
        "source_id": "src-1",
        "source_name": "Q1-2026.pdf",
        "knowledge_base_id": "kb-1",
        "kb_name": "Finance docs",
        "indexing_strategy": "chunk_embed",
        "meta": {"page": 3, "tags": ["q1", "revenue"]},
        "included_in_context": True,
    },
    {
        "id": "chunk-a",
        "text": "Costs for Q1 were $1.1M.",
        "score": 0.9,
        "retrieval_score": 0.42,
        "reranker_score": 0.9,
        "source_id": "src-2",
        "source_name": "Costs.xlsx",
        "knowledge_base_id": "kb-1",
        "kb_name": "Finance docs",
        "indexing_strategy": "late_chunking",
        "meta": {},
        "included_in_context": False,
    },
    {
        "id": "chunk-c",
        "text": "bare chunk",
        "score": None,
        "retrieval_score": None,
        "reranker_score": None,
        "source_id": None,
        "source_name": None,
        "knowledge_base_id": None,
        "kb_name": None,
        "indexing_strategy": None,
        "meta": {},
        "included_in_context": True,
    },
]

DIAGNOSTICS = {
    "query": "Q1 revenue and costs",
    "latency_ms": 42,
    "top_k": 3,
    "filters": {"kb": ["kb-1"]},
}

SID = "sess-conversation"

RUN_1 = "run-1"

RUN_2 = "run-2"

T_RUN1 = T0

T_RUN2 = T0 + timedelta(minutes=5)


async def _conversation(gql: GraphQLClient) -> None:
    """Two runs: the first with a system prompt, tool calls, tool results, chunks and
    diagnostics; the second a plain question and answer with no retrieval."""
    await record(
        gql,
        sessionId=SID,
        runId=RUN_1,
        userId="user-7",
        agentId="finance_agent",
        createdAt=iso(T_RUN1),
        completedAt=iso(T_RUN1 + timedelta(seconds=30)),
        messages=[
            {"role": "SYSTEM", "content": "You answer finance questions."},
            {"role": "USER", "content": "What were Q1 revenue and costs?"},
            {"role": "ASSISTANT", "content": None, "toolCalls": TOOL_CALLS_INPUT},
            {
                "role": "TOOL",
                "content": "4.2",
                "toolCallId": "call_1",
                "name": "get_revenue",
                "createdAt": iso(T_RUN1 + timedelta(seconds=10)),
            },
            {
                "role": "TOOL",
                "content": "1.1",
                "toolCallId": "call_2",
                "name": "get_costs",
                "createdAt": iso(T_RUN1 + timedelta(seconds=11)),
            },
            {
                "role": "ASSISTANT",
                "content": "Revenue $4.2M, costs $1.1M.",
                "createdAt": iso(T_RUN1 + timedelta(seconds=20)),
            },
        ],
        retrievalDiagnostics=DIAGNOSTICS,
        retrievedContext=CHUNKS_INPUT,
        reasoning={"effort": "high", "budgetTokens": 2048},
        usage={"inputTokens": 120, "outputTokens": 30, "reasoningTokens": 12, "totalTokens": 162},
    )
    await record(
        gql,
        sessionId=SID,
        runId=RUN_2,
        agentId="finance_agent",
        createdAt=iso(T_RUN2),
        completedAt=iso(T_RUN2 + timedelta(seconds=2)),
        messages=[
            {"role": "USER", "content": "And the margin?"},
            {"role": "ASSISTANT", "content": "About 74%."},
        ],
    )


async def _message_ids(gql: GraphQLClient, session_id: str) -> list[str]:
    data = await gql.data(
        "query($id: ID!) { session(id: $id) { messages(first: 1000) { nodes { id } } } }",
        {"id": session_id},
    )
    return [m["id"] for m in data["session"]["messages"]["nodes"]]
