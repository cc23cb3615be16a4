"""The REST shim's paths against the SPEC's "REST shim" table, with exact expected bodies:
the session list and its paging, filters and bad parameters; a session, its messages, runs
and a run's retrieved context; delete; ids that cannot be ids; 405, unknown paths, 413,
503; and the error shape every one of those answers with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_sessions.app import MAX_BODY_BYTES, build_app
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.embedded import start_embedded

from .conftest import BASE_URL, GraphQLClient, record

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


# --- GET /api/sessions --------------------------------------------------------------------


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


async def test_list_sessions_shape_and_newest_updated_first(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    expected = await _three_sessions(gql, storage)
    response = await client.get("/api/sessions")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert body == {
        "content": expected,
        "totalElements": 3,
        "totalPages": 1,
        "page": 0,
        "size": 20,
    }
    assert all(set(item) == SESSION_KEYS for item in body["content"])


async def test_list_sessions_millisecond_timestamps(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    created = datetime(2026, 5, 6, 10, 0, 0, 123000, tzinfo=UTC)
    updated = datetime(2026, 5, 6, 11, 30, 15, 7000, tzinfo=UTC)
    await make_session(gql, storage, "s-ms", created=created, updated=updated)
    body = (await client.get("/api/sessions")).json()
    assert body["content"] == [
        {
            "sessionId": "s-ms",
            "userId": "user-1",
            "agentId": "finance_agent",
            "createdAt": "2026-05-06T10:00:00.123Z",
            "updatedAt": "2026-05-06T11:30:15.007Z",
        }
    ]


async def test_list_sessions_paging(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    ids = [f"s-{n}" for n in range(5)]
    for n, sid in enumerate(ids):
        # s-4 is the newest; the ids' order is the reverse of the list's order
        await make_session(gql, storage, sid, updated=T0 + timedelta(minutes=n))
    newest_first = [
        listed(sid, "user-1", "finance_agent", T0, T0 + timedelta(minutes=n))
        for n, sid in reversed(list(enumerate(ids)))
    ]

    pages = []
    for page in range(4):
        response = await client.get("/api/sessions", params={"page": page, "size": 2})
        assert response.status_code == 200
        pages.append(response.json())
    assert pages == [
        {"content": newest_first[0:2], "totalElements": 5, "totalPages": 3, "page": 0, "size": 2},
        {"content": newest_first[2:4], "totalElements": 5, "totalPages": 3, "page": 1, "size": 2},
        {"content": newest_first[4:5], "totalElements": 5, "totalPages": 3, "page": 2, "size": 2},
        {"content": [], "totalElements": 5, "totalPages": 3, "page": 3, "size": 2},
    ]

    exact = (await client.get("/api/sessions", params={"size": 5})).json()
    assert exact == {
        "content": newest_first,
        "totalElements": 5,
        "totalPages": 1,
        "page": 0,
        "size": 5,
    }
    one = (await client.get("/api/sessions", params={"page": 4, "size": 1})).json()
    assert one == {
        "content": newest_first[4:5],
        "totalElements": 5,
        "totalPages": 5,
        "page": 4,
        "size": 1,
    }
    biggest = (await client.get("/api/sessions", params={"size": 100})).json()
    assert (biggest["content"], biggest["totalPages"], biggest["size"]) == (newest_first, 1, 100)


async def test_list_sessions_ties_keep_a_stable_order_across_pages(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    ids = ["t-1", "t-2", "t-3", "t-4"]
    for sid in ids:
        await make_session(gql, storage, sid, updated=T0)  # all the same updatedAt
    seen = []
    for page in range(2):
        body = (await client.get("/api/sessions", params={"page": page, "size": 2})).json()
        seen += [s["sessionId"] for s in body["content"]]
    assert sorted(seen) == ids
    assert len(set(seen)) == 4


@pytest.mark.parametrize(
    ("params", "expected_ids"),
    [
        ({"userId": "user-1"}, ["s-b", "s-a"]),
        ({"user_id": "user-1"}, ["s-b", "s-a"]),
        ({"userId": "user-2"}, ["s-c"]),
        ({"user_id": "user-2"}, ["s-c"]),
        ({"agentId": "finance_agent"}, ["s-c", "s-a"]),
        ({"agent_id": "finance_agent"}, ["s-c", "s-a"]),
        ({"agentId": "support_agent"}, ["s-b"]),
        ({"agent_id": "support_agent"}, ["s-b"]),
        ({"userId": "user-1", "agentId": "finance_agent"}, ["s-a"]),
        ({"user_id": "user-1", "agent_id": "finance_agent"}, ["s-a"]),
        ({"userId": "user-1", "agent_id": "support_agent"}, ["s-b"]),
        ({"user_id": "user-2", "agentId": "support_agent"}, []),
        ({"userId": "user-1", "user_id": "user-1"}, ["s-b", "s-a"]),
        ({"userId": "user-1", "user_id": "user-2"}, []),
        ({"userId": "nobody"}, []),
        ({"agent_id": "nobody"}, []),
    ],
)
async def test_list_sessions_filters_in_both_spellings(
    client: httpx.AsyncClient,
    gql: GraphQLClient,
    storage: Storage,
    params: dict[str, str],
    expected_ids: list[str],
) -> None:
    everything = {s["sessionId"]: s for s in await _three_sessions(gql, storage)}
    response = await client.get("/api/sessions", params=params)
    assert response.status_code == 200
    assert response.json() == {
        "content": [everything[sid] for sid in expected_ids],
        "totalElements": len(expected_ids),
        "totalPages": 1 if expected_ids else 0,
        "page": 0,
        "size": 20,
    }


async def test_list_sessions_filter_totals_across_pages(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    for n in range(3):
        await make_session(gql, storage, f"mine-{n}", user="u-x", updated=T0 + timedelta(minutes=n))
    await make_session(gql, storage, "other", user="u-y", updated=T0 + timedelta(hours=1))
    response = await client.get("/api/sessions", params={"user_id": "u-x", "page": 1, "size": 2})
    assert response.json() == {
        "content": [listed("mine-0", "u-x", "finance_agent", T0, T0)],
        "totalElements": 3,
        "totalPages": 2,
        "page": 1,
        "size": 2,
    }


async def test_list_sessions_empty(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/sessions")
    assert response.status_code == 200
    assert response.json() == {
        "content": [],
        "totalElements": 0,
        "totalPages": 0,
        "page": 0,
        "size": 20,
    }
    response = await client.get("/api/sessions", params={"page": 2, "size": 7})
    assert response.json() == {
        "content": [],
        "totalElements": 0,
        "totalPages": 0,
        "page": 2,
        "size": 7,
    }


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("page=", "page"),
        ("page=1.0", "page"),
        ("page=99999999999999999999", "page"),
        ("size=0", "size"),
        ("size=101", "size"),
        ("size=1.5", "size"),
        ("size=-5", "size"),
        ("size=ten", "size"),
        ("size=", "size"),
    ],
)
async def test_list_sessions_bad_paging_is_400(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage, query: str, name: str
) -> None:
    await make_session(gql, storage, "s-1")
    response = await client.get(f"/api/sessions?{query}")
    message = assert_error(response, 400)
    assert name in message


# --- GET /api/sessions/{id} ---------------------------------------------------------------

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


async def _updated_at(gql: GraphQLClient, session_id: str) -> str:
    data = await gql.data("query($id: ID!) { session(id: $id) { updatedAt } }", {"id": session_id})
    return data["session"]["updatedAt"]


async def test_get_session(client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage) -> None:
    await _conversation(gql)
    await set_times(storage, SID, updated=T0 + timedelta(hours=1))
    response = await client.get(f"/api/sessions/{SID}")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert set(body) == {"sessionId", "userId", "agentId", "messages", "createdAt", "updatedAt"}
    assert body == {
        "sessionId": SID,
        "userId": "user-7",
        "agentId": "finance_agent",
        "createdAt": "2026-05-06T10:00:00Z",
        "updatedAt": "2026-05-06T11:00:00Z",
        "messages": [
            {"role": "system", "content": "You answer finance questions."},
            {"role": "user", "content": "What were Q1 revenue and costs?"},
            {"role": "assistant", "content": None, "tool_calls": TOOL_CALLS_OPENAI},
            {"role": "tool", "content": "4.2", "tool_call_id": "call_1", "name": "get_revenue"},
            {"role": "tool", "content": "1.1", "tool_call_id": "call_2", "name": "get_costs"},
            {"role": "assistant", "content": "Revenue $4.2M, costs $1.1M."},
            {"role": "user", "content": "And the margin?"},
            {"role": "assistant", "content": "About 74%."},
        ],
    }


async def test_get_session_without_messages(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    created = await gql.data(
        'mutation { createSession(input: {id: "empty-1", userId: "u-e"}) '
        "{ id createdAt updatedAt } }"
    )
    s = created["createSession"]
    response = await client.get("/api/sessions/empty-1")
    assert response.status_code == 200
    assert response.json() == {
        "sessionId": "empty-1",
        "userId": "u-e",
        "agentId": None,
        "messages": [],
        "createdAt": s["createdAt"],
        "updatedAt": s["updatedAt"],
    }


async def test_get_missing_session_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/sessions/never-existed")
    assert assert_error(response, 404) == "session not found"
    assert response.json() == SESSION_NOT_FOUND


# --- GET /api/sessions/{id}/messages -----------------------------------------------------


async def test_session_messages(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    await _conversation(gql)
    ids = await _message_ids(gql, SID)
    assert len(ids) == 8
    response = await client.get(f"/api/sessions/{SID}/messages")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/json"
    t1 = iso(T_RUN1)
    t2 = iso(T_RUN2)
    expected = [
        {
            "id": ids[0],
            "role": "system",
            "content": "You answer finance questions.",
            "run_id": RUN_1,
            "created_at": t1,
        },
        {
            "id": ids[1],
            "role": "user",
            "content": "What were Q1 revenue and costs?",
            "run_id": RUN_1,
            "created_at": t1,
        },
        {
            "id": ids[2],
            "role": "assistant",
            "content": None,
            "run_id": RUN_1,
            "created_at": t1,
            "tool_calls": TOOL_CALLS_OPENAI,
            "retrieved_context": CHUNKS_OUT,
        },
        {
            "id": ids[3],
            "role": "tool",
            "content": "4.2",
            "run_id": RUN_1,
            "created_at": "2026-05-06T10:00:10Z",
            "tool_call_id": "call_1",
            "name": "get_revenue",
        },
        {
            "id": ids[4],
            "role": "tool",
            "content": "1.1",
            "run_id": RUN_1,
            "created_at": "2026-05-06T10:00:11Z",
            "tool_call_id": "call_2",
            "name": "get_costs",
        },
        {
            "id": ids[5],
            "role": "assistant",
            "content": "Revenue $4.2M, costs $1.1M.",
            "run_id": RUN_1,
            "created_at": "2026-05-06T10:00:20Z",
            "retrieved_context": CHUNKS_OUT,
        },
        {
            "id": ids[6],
            "role": "user",
            "content": "And the margin?",
            "run_id": RUN_2,
            "created_at": t2,
        },
        {
            "id": ids[7],
            "role": "assistant",
            "content": "About 74%.",
            "run_id": RUN_2,
            "created_at": t2,
            "retrieved_context": [],
        },
    ]
    body = response.json()
    assert body == expected
    # the per-message key sets, spelled out: what each role carries and nothing else
    base = {"id", "role", "content", "run_id", "created_at"}
    assert [set(m) for m in body] == [
        base,
        base,
        base | {"tool_calls", "retrieved_context"},
        base | {"tool_call_id", "name"},
        base | {"tool_call_id", "name"},
        base | {"retrieved_context"},
        base,
        base | {"retrieved_context"},
    ]
    for m in body:
        for chunk in m.get("retrieved_context", []):
            assert set(chunk) == CHUNK_KEYS
            assert "_type" not in chunk


async def test_session_messages_of_an_empty_session(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await gql.data('mutation { createSession(input: {id: "empty-2"}) { id } }')
    response = await client.get("/api/sessions/empty-2/messages")
    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.slow
async def test_session_with_more_than_1000_messages_returns_all_in_order(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    n = 2003  # crosses two fetch boundaries of 1000
    roles = ["USER", "ASSISTANT"]
    messages = [{"role": roles[i % 2], "content": f"m{i:04d}"} for i in range(n)]
    await record(gql, sessionId="long", runId="run-long", messages=messages, createdAt=iso(T0))

    response = await client.get("/api/sessions/long/messages")
    assert response.status_code == 200
    body = response.json()
    assert len(body) == n
    assert [m["content"] for m in body] == [f"m{i:04d}" for i in range(n)]
    assert [m["role"] for m in body] == [roles[i % 2].lower() for i in range(n)]
    assert {m["run_id"] for m in body} == {"run-long"}
    assert len({m["id"] for m in body}) == n
    assert all(m["created_at"] == "2026-05-06T10:00:00Z" for m in body)
    assert all(m["retrieved_context"] == [] for m in body if m["role"] == "assistant")
    assert not any("retrieved_context" in m for m in body if m["role"] == "user")

    detail = (await client.get("/api/sessions/long")).json()
    assert detail["messages"] == [
        {"role": roles[i % 2].lower(), "content": f"m{i:04d}"} for i in range(n)
    ]


async def test_missing_session_messages_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/sessions/never-existed/messages")
    assert_error(response, 404)
    assert response.json() == SESSION_NOT_FOUND


# --- GET /api/sessions/{id}/runs ---------------------------------------------------------


async def test_session_runs(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    await _conversation(gql)
    t3 = T0 + timedelta(minutes=10)
    await record(
        gql,
        sessionId=SID,
        runId="run-3",
        agentId="support_agent",
        status="FAILED",
        error="agent backend timed out after 60 s",
        createdAt=iso(t3),
        completedAt=iso(t3 + timedelta(seconds=60)),
        reasoning={"enabled": False},
        usage={"inputTokens": 5},
        messages=[{"role": "USER", "content": "Anything else?"}],
    )
    t4 = T0 + timedelta(minutes=20)
    await record(
        gql,
        sessionId=SID,
        runId="run-4",
        agentId="finance_agent",
        status="RUNNING",
        createdAt=iso(t4),
        messages=[{"role": "USER", "content": "Still there?"}],
    )
    response = await client.get(f"/api/sessions/{SID}/runs")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert body == [
        {
            "runId": RUN_1,
            "sessionId": SID,
            "agentId": "finance_agent",
            "status": "COMPLETED",
            "content": "Revenue $4.2M, costs $1.1M.",
            "createdAt": "2026-05-06T10:00:00Z",
            "completedAt": "2026-05-06T10:00:30Z",
            "reasoning": {"enabled": True, "effort": "high", "budgetTokens": 2048},
            "usage": {
                "inputTokens": 120,
                "outputTokens": 30,
                "reasoningTokens": 12,
                "totalTokens": 162,
            },
            "error": None,
        },
        {
            "runId": RUN_2,
            "sessionId": SID,
            "agentId": "finance_agent",
            "status": "COMPLETED",
            "content": "About 74%.",
            "createdAt": "2026-05-06T10:05:00Z",
            "completedAt": "2026-05-06T10:05:02Z",
            "reasoning": None,
            "usage": None,
            "error": None,
        },
        {
            "runId": "run-3",
            "sessionId": SID,
            "agentId": "support_agent",
            "status": "FAILED",
            "content": None,
            "createdAt": "2026-05-06T10:10:00Z",
            "completedAt": "2026-05-06T10:11:00Z",
            "reasoning": {"enabled": False, "effort": None, "budgetTokens": None},
            "usage": {
                "inputTokens": 5,
                "outputTokens": None,
                "reasoningTokens": None,
                "totalTokens": None,
            },
            "error": "agent backend timed out after 60 s",
        },
        {
            "runId": "run-4",
            "sessionId": SID,
            "agentId": "finance_agent",
            "status": "RUNNING",
            "content": None,
            "createdAt": "2026-05-06T10:20:00Z",
            "completedAt": None,
            "reasoning": None,
            "usage": None,
            "error": None,
        },
    ]
    assert all(set(r) == RUN_KEYS for r in body)


async def test_session_runs_of_an_empty_session(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await gql.data('mutation { createSession(input: {id: "empty-3"}) { id } }')
    response = await client.get("/api/sessions/empty-3/runs")
    assert response.status_code == 200
    assert response.json() == []


@pytest.mark.slow
async def test_session_with_more_than_1000_runs_returns_all_oldest_first(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    # 1001 runs recorded one by one would be slow: the session is imported whole (its older
    # runs land in pages, as a long session's do).
    runs = [
        {"id": f"r-{i:04d}", "agent_id": "finance_agent", "status": "COMPLETED",
         "created_at": T0 + timedelta(seconds=i), "completed_at": T0 + timedelta(seconds=i)}
        for i in range(1001)
    ]  # fmt: skip
    session = {"id": "many-runs", "user_id": "local", "agent_id": "finance_agent",
               "created_at": T0, "updated_at": T0}  # fmt: skip
    assert await storage.sessions.import_session(session, [], runs)
    response = await client.get("/api/sessions/many-runs/runs")
    assert response.status_code == 200
    body = response.json()
    assert [r["runId"] for r in body] == [f"r-{i:04d}" for i in range(1001)]
    assert body[1000]["createdAt"] == iso(T0 + timedelta(seconds=1000))


async def test_missing_session_runs_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/sessions/never-existed/runs")
    assert_error(response, 404)
    assert response.json() == SESSION_NOT_FOUND


# --- GET /api/sessions/{id}/runs/{run_id}/retrieved-context -------------------------------


async def test_retrieved_context_with_diagnostics_first(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await _conversation(gql)
    response = await client.get(f"/api/sessions/{SID}/runs/{RUN_1}/retrieved-context")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert body == {
        "session_id": SID,
        "run_id": RUN_1,
        "retrieved_context": [{"_type": "retrieval_diagnostics", **DIAGNOSTICS}, *CHUNKS_OUT],
    }
    assert set(body) == {"session_id", "run_id", "retrieved_context"}
    assert [set(c) for c in body["retrieved_context"][1:]] == [CHUNK_KEYS] * 3


async def test_retrieved_context_without_diagnostics_is_only_chunks(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await record(
        gql,
        sessionId="no-diag",
        runId="run-nd",
        retrievedContext=CHUNKS_INPUT[:2],
    )
    response = await client.get("/api/sessions/no-diag/runs/run-nd/retrieved-context")
    assert response.status_code == 200
    assert response.json() == {
        "session_id": "no-diag",
        "run_id": "run-nd",
        "retrieved_context": CHUNKS_OUT[:2],
    }


async def test_retrieved_context_with_diagnostics_only(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await record(gql, sessionId="diag-only", runId="run-do", retrievalDiagnostics={"hits": 0})
    response = await client.get("/api/sessions/diag-only/runs/run-do/retrieved-context")
    assert response.status_code == 200
    assert response.json() == {
        "session_id": "diag-only",
        "run_id": "run-do",
        "retrieved_context": [{"_type": "retrieval_diagnostics", "hits": 0}],
    }


async def test_retrieved_context_of_a_run_without_retrieval(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await _conversation(gql)
    response = await client.get(f"/api/sessions/{SID}/runs/{RUN_2}/retrieved-context")
    assert response.status_code == 200
    assert response.json() == {"session_id": SID, "run_id": RUN_2, "retrieved_context": []}


async def test_retrieved_context_missing_session_is_404(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await _conversation(gql)
    response = await client.get(f"/api/sessions/never-existed/runs/{RUN_1}/retrieved-context")
    assert_error(response, 404)
    assert response.json() == SESSION_NOT_FOUND


@pytest.mark.parametrize(
    "run_id",
    [
        "run-never",
        "run-elsewhere",  # a run that exists, in another session
        "RUN-1",  # ids are case-sensitive
        "%7B%22%24ne%22%3Anull%7D",  # {"$ne":null}
        "r" * 200,
    ],
)
async def test_retrieved_context_run_not_in_session_is_404(
    client: httpx.AsyncClient, gql: GraphQLClient, run_id: str
) -> None:
    await _conversation(gql)
    await record(
        gql,
        sessionId="elsewhere",
        runId="run-elsewhere",
        retrievalDiagnostics={"secret": True},
        retrievedContext=CHUNKS_INPUT[:1],
    )
    response = await client.get(f"/api/sessions/{SID}/runs/{run_id}/retrieved-context")
    assert_error(response, 404)
    assert response.json() == RUN_NOT_FOUND
    # and the run is there, in its own session
    ok = await client.get("/api/sessions/elsewhere/runs/run-elsewhere/retrieved-context")
    assert ok.status_code == 200


# --- DELETE /api/sessions/{id} -----------------------------------------------------------


SESSION_AND_RUN = """
query($id: ID!, $runId: ID!) {
  session(id: $id) { id }
  run(sessionId: $id, runId: $runId) { id }
}"""


async def test_delete_session(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    await _conversation(gql)
    await record(gql, sessionId="keep-me", runId="run-keep")

    response = await client.delete(f"/api/sessions/{SID}")
    assert response.status_code == 204
    assert response.content == b""

    for path in (
        "",
        "/messages",
        "/runs",
        f"/runs/{RUN_1}/retrieved-context",
        f"/runs/{RUN_2}/retrieved-context",
    ):
        gone = await client.get(f"/api/sessions/{SID}{path}")
        assert_error(gone, 404)
        assert gone.json() == SESSION_NOT_FOUND, path
    assert await gql.data(SESSION_AND_RUN, {"id": SID, "runId": RUN_1}) == {
        "session": None,
        "run": None,
    }
    assert await storage.sessions.heads.count_documents({"_id": SID}) == 0
    assert await storage.sessions.pages.count_documents({"session_id": SID}) == 0
    assert await storage.sessions.heads.count_documents({"runs.id": RUN_1}) == 0
    listing = (await client.get("/api/sessions")).json()
    assert [s["sessionId"] for s in listing["content"]] == ["keep-me"]
    assert listing["totalElements"] == 1

    again = await client.delete(f"/api/sessions/{SID}")
    assert_error(again, 404)
    assert again.json() == SESSION_NOT_FOUND

    # the other session is untouched
    kept = await client.get("/api/sessions/keep-me/runs")
    assert [r["runId"] for r in kept.json()] == ["run-keep"]


async def test_delete_missing_session_is_404(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/sessions/never-existed")
    assert_error(response, 404)
    assert response.json() == SESSION_NOT_FOUND


async def test_deleted_session_id_can_be_recorded_again_without_memory(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    await _conversation(gql)
    assert (await client.delete(f"/api/sessions/{SID}")).status_code == 204
    await record(
        gql, sessionId=SID, runId="run-new", messages=[{"role": "USER", "content": "again"}]
    )
    body = (await client.get(f"/api/sessions/{SID}")).json()
    assert body["messages"] == [{"role": "user", "content": "again"}]
    runs = (await client.get(f"/api/sessions/{SID}/runs")).json()
    assert [r["runId"] for r in runs] == ["run-new"]


# --- ids that cannot be ids --------------------------------------------------------------

NOT_IDS = [
    "%7B%22%24ne%22%3Anull%7D",  # {"$ne":null}
    "%7B%22%24gt%22%3A%22%22%7D",  # {"$gt":""}
    "..%2F",
    "..%2F..%2Fhealthz",
    "a%2Fb",
    "x" * 200,
    "x" * 129,
    "a%20b",
    "a%00b",
    "%C3%A9t%C3%A9",
    "s-a%0A",
]
SESSION_PATHS = [
    ("GET", ""),
    ("GET", "/messages"),
    ("GET", "/runs"),
    ("GET", "/runs/run-1/retrieved-context"),
    ("DELETE", ""),
]


@pytest.mark.parametrize("bad_id", NOT_IDS)
@pytest.mark.parametrize(("method", "suffix"), SESSION_PATHS)
async def test_path_ids_that_cannot_be_ids_are_not_found(
    client: httpx.AsyncClient,
    gql: GraphQLClient,
    storage: Storage,
    bad_id: str,
    method: str,
    suffix: str,
) -> None:
    # sessions exist, so an id read as a query operator would find one
    await _three_sessions(gql, storage)
    await record(gql, sessionId="s-a", runId="run-1")
    reference = await client.request(method, f"/api/sessions/well-formed-but-absent{suffix}")
    assert reference.status_code == 404
    assert reference.json() == SESSION_NOT_FOUND

    response = await client.request(method, f"/api/sessions/{bad_id}{suffix}")
    assert_error(response, 404)
    assert response.json() == SESSION_NOT_FOUND
    assert response.content == reference.content
    assert response.headers["content-type"] == reference.headers["content-type"]
    # nothing was deleted or changed by the attempt
    assert await storage.sessions.heads.count_documents({}) == 3


async def test_longest_valid_id_is_served_and_one_more_is_not(
    client: httpx.AsyncClient, gql: GraphQLClient
) -> None:
    longest = "L" * 128
    await record(gql, sessionId=longest)
    ok = await client.get(f"/api/sessions/{longest}")
    assert ok.status_code == 200
    assert ok.json()["sessionId"] == longest
    too_long = await client.get(f"/api/sessions/{longest}L")
    assert_error(too_long, 404)
    assert too_long.json() == SESSION_NOT_FOUND


# --- wrong methods, unknown paths --------------------------------------------------------


def allowed(response: httpx.Response) -> set[str]:
    return {m.strip() for m in response.headers["allow"].split(",") if m.strip()}


@pytest.mark.parametrize(
    ("method", "path", "methods"),
    [
        ("POST", "/api/sessions/s-a", {"GET", "HEAD", "DELETE", "PATCH"}),
        ("PUT", "/api/sessions/s-a", {"GET", "HEAD", "DELETE", "PATCH"}),
        ("PUT", "/api/sessions", {"GET", "HEAD"}),
        ("POST", "/api/sessions", {"GET", "HEAD"}),
        ("DELETE", "/api/sessions", {"GET", "HEAD"}),
        ("POST", "/api/sessions/s-a/messages", {"GET", "HEAD"}),
        ("DELETE", "/api/sessions/s-a/runs", {"GET", "HEAD"}),
        ("GET", "/api/sessions/s-a/runs/run-1", {"DELETE"}),
        ("GET", "/api/sessions/s-a/fork", {"POST"}),
        ("PUT", "/api/sessions/s-a/runs/run-1/retrieved-context", {"GET", "HEAD"}),
        ("POST", "/api/openapi.json", {"GET", "HEAD"}),
    ],
)
async def test_wrong_method_is_405_with_allow(
    client: httpx.AsyncClient,
    gql: GraphQLClient,
    storage: Storage,
    method: str,
    path: str,
    methods: set[str],
) -> None:
    await make_session(gql, storage, "s-a")
    response = await client.request(method, path, json={"message": "hi"})
    assert_error(response, 405)
    assert "allow" in response.headers
    assert allowed(response) == methods
    # the session is still there
    assert (await client.get("/api/sessions/s-a")).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/api",
        "/api/",
        "/api/nope",
        "/api/session",
        "/api/sessions/s-a/unknown",
        "/api/sessions/s-a/runs/run-1/context",
        "/api/sessions/s-a/messages/extra",
        "/api/v2/sessions",
    ],
)
async def test_unknown_api_path_is_404_json(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage, path: str
) -> None:
    await make_session(gql, storage, "s-a")
    response = await client.get(path)
    assert_error(response, 404)


# --- 413 ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/agents/finance_agent/runs"),
        ("DELETE", "/api/sessions/s-a"),
        ("GET", "/api/sessions"),
        ("POST", "/api/nope"),
    ],
)
@pytest.mark.slow
async def test_body_over_8_mib_is_413(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage, method: str, path: str
) -> None:
    await make_session(gql, storage, "s-a")
    body = b'{"message": "' + b"x" * (8 * 1024 * 1024) + b'"}'
    assert len(body) > 8 * 1024 * 1024
    response = await client.request(
        method, path, content=body, headers={"content-type": "application/json"}
    )
    assert_error(response, 413)
    # nothing happened: the session survives a DELETE whose body was refused
    assert (await client.get("/api/sessions/s-a")).status_code == 200


async def test_streamed_body_over_8_mib_without_length_is_413(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    await make_session(gql, storage, "s-a")

    async def chunks():
        piece = b"x" * (1024 * 1024)
        for _ in range(9):
            yield piece

    response = await client.request(
        "DELETE",
        "/api/sessions/s-a",
        content=chunks(),
        headers={"content-type": "application/octet-stream"},
    )
    assert "content-length" not in response.request.headers
    assert_error(response, 413)
    assert (await client.get("/api/sessions/s-a")).status_code == 200


async def test_body_of_exactly_8_mib_is_not_refused(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    assert MAX_BODY_BYTES == 8 * 1024 * 1024
    await make_session(gql, storage, "s-a")
    response = await client.request(
        "DELETE", "/api/sessions/never-existed", content=b"x" * MAX_BODY_BYTES
    )
    assert_error(response, 404)
    assert response.json() == SESSION_NOT_FOUND


# --- 503 ---------------------------------------------------------------------------------


@pytest.mark.slow
async def test_database_down_is_503(tmp_path: Path) -> None:
    server = start_embedded(tmp_path / "db503")
    st: Storage | None = None
    try:
        st = await Storage.connect(server.uri, "t_x", embedded=server)
        app = build_app(Settings(data_dir=tmp_path), storage=st)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
            assert (await c.get("/healthz")).json() == {"status": "ok"}
            assert (await c.get("/api/sessions")).status_code == 200

            assert server.process is not None
            server.process.kill()
            server.process.wait()

            response = await c.get("/api/sessions")
            assert_error(response, 503)

            health = await c.get("/healthz")
            assert health.status_code == 503
            assert health.headers["content-type"].split(";")[0] == "application/json"
            assert "Traceback" not in health.text
            assert health.json().get("status") != "ok"
    finally:
        if st is not None:
            await st.client.close()
        server.stop()


# --- the error shape, across the board ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/sessions?page=-1", 400),
        ("GET", "/api/sessions?size=abc", 400),
        ("GET", "/api/sessions?page=0&size=1000", 400),
        ("GET", "/api/sessions/never-existed", 404),
        ("GET", "/api/sessions/never-existed/messages", 404),
        ("GET", "/api/sessions/never-existed/runs", 404),
        ("GET", "/api/sessions/never-existed/runs/r/retrieved-context", 404),
        ("GET", "/api/sessions/s-a/runs/no-such-run/retrieved-context", 404),
        ("DELETE", "/api/sessions/never-existed", 404),
        ("GET", "/api/sessions/%7B%22%24ne%22%3Anull%7D", 404),
        ("GET", "/api/unknown", 404),
        ("POST", "/api/sessions/s-a", 405),
        ("PUT", "/api/sessions", 405),
    ],
)
async def test_every_error_is_a_json_error_object(
    client: httpx.AsyncClient,
    gql: GraphQLClient,
    storage: Storage,
    method: str,
    path: str,
    status: int,
) -> None:
    await make_session(gql, storage, "s-a")
    response = await client.request(method, path)
    assert_error(response, status)
    assert response.headers["content-type"] == "application/json"
