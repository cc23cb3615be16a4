"""REST: a session's runs and a run's retrieved context."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from agent_sessions.storage import Storage

from .helpers import GraphQLClient, record
from .rest_expectations import (
    CHUNK_KEYS,
    CHUNKS_INPUT,
    CHUNKS_OUT,
    DIAGNOSTICS,
    RUN_1,
    RUN_2,
    RUN_KEYS,
    RUN_NOT_FOUND,
    SESSION_NOT_FOUND,
    SID,
    T0,
    _conversation,
    assert_error,
    iso,
)

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
