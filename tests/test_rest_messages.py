"""REST: GET /api/sessions/{id}/messages."""

from __future__ import annotations

import httpx
import pytest

from .helpers import GraphQLClient, record
from .rest_expectations import (
    CHUNK_KEYS,
    CHUNKS_OUT,
    RUN_1,
    RUN_2,
    SESSION_NOT_FOUND,
    SID,
    T0,
    T_RUN1,
    T_RUN2,
    TOOL_CALLS_OPENAI,
    _conversation,
    _message_ids,
    assert_error,
    iso,
)

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
