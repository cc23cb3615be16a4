"""REST: one session (GET /api/sessions/{id}) and its deletion."""

from __future__ import annotations

from datetime import timedelta

import httpx

from agent_sessions.storage import Storage

from .helpers import GraphQLClient, record
from .rest_expectations import (
    RUN_1,
    RUN_2,
    SESSION_NOT_FOUND,
    SID,
    T0,
    TOOL_CALLS_OPENAI,
    _conversation,
    assert_error,
    set_times,
)

# --- GET /api/sessions/{id} ---------------------------------------------------------------


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
