"""deleteRun and forkSession through GraphQL and REST, as an owner and as someone else."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from agent_sessions.settings import Settings

from .helpers import TINY_BOUNDS, GraphQLClient, record

DELETE_RUN = "mutation($s: ID!, $r: ID!) { deleteRun(sessionId: $s, runId: $r) }"
FORK = """
mutation($s: ID!, $m: ID!, $t: String) {
  forkSession(sessionId: $s, atMessageId: $m, title: $t) {
    id title forkedFrom { sessionId messageId } messageCount runCount
    messages { nodes { id content } } runs { nodes { id content } }
  }
}"""
SESSION = """
query($id: ID!) {
  session(id: $id) {
    messageCount runCount
    messages { totalCount nodes { id content runId } } runs { nodes { id } }
  }
}"""


@pytest.fixture(params=["whole", "paged"])
def bounds(request: pytest.FixtureRequest) -> Any:
    from agent_sessions.storage.layout import DEFAULT_BOUNDS

    return DEFAULT_BOUNDS if request.param == "whole" else TINY_BOUNDS


async def _conversation(gql: GraphQLClient, turns: int = 5) -> None:
    for i in range(turns):
        await record(gql, sessionId="s", runId=f"r{i}", messages=[
            {"role": "USER", "content": f"question {i}"},
            {"role": "ASSISTANT", "content": f"answer {i}"},
        ])  # fmt: skip


async def test_delete_run_in_graphql(gql: GraphQLClient) -> None:
    await _conversation(gql)
    assert (await gql.data(DELETE_RUN, {"s": "s", "r": "r1"}))["deleteRun"] is True
    session = (await gql.data(SESSION, {"id": "s"}))["session"]
    assert session["messageCount"] == 8 and session["runCount"] == 4
    assert session["messages"]["totalCount"] == 8
    assert "r1" not in {m["runId"] for m in session["messages"]["nodes"]}
    assert [r["id"] for r in session["runs"]["nodes"]] == ["r0", "r2", "r3", "r4"]
    assert (await gql.data(DELETE_RUN, {"s": "s", "r": "r1"}))["deleteRun"] is False
    assert (await gql.data(DELETE_RUN, {"s": "nope", "r": "r2"}))["deleteRun"] is False


async def test_fork_in_graphql(gql: GraphQLClient) -> None:
    await _conversation(gql)
    nodes = (await gql.data(SESSION, {"id": "s"}))["session"]["messages"]["nodes"]
    fork = (await gql.data(FORK, {"s": "s", "m": nodes[5]["id"], "t": "what if"}))["forkSession"]
    assert fork["title"] == "what if" and fork["messageCount"] == 6 and fork["runCount"] == 3
    assert fork["forkedFrom"] == {"sessionId": "s", "messageId": nodes[5]["id"]}
    assert [m["id"] for m in fork["messages"]["nodes"]] == [m["id"] for m in nodes[:6]]
    assert fork["runs"]["nodes"][-1] == {"id": "r2", "content": "answer 2"}
    # Both go on separately.
    await record(gql, sessionId=fork["id"], messages=[{"role": "USER", "content": "other"}])
    assert (await gql.data(SESSION, {"id": "s"}))["session"]["messageCount"] == 10
    missing = await gql(FORK, {"s": "s", "m": "nope"})
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert "message" in missing["errors"][0]["message"]


async def test_rest_delete_run_and_fork(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    await _conversation(gql, 3)
    assert (await client.delete("/api/sessions/s/runs/r0")).status_code == 204
    assert (await client.delete("/api/sessions/s/runs/r0")).status_code == 404
    assert (await client.delete("/api/sessions/nope/runs/r1")).status_code == 404
    runs = (await client.get("/api/sessions/s/runs")).json()
    assert [r["runId"] for r in runs] == ["r1", "r2"]
    messages = (await client.get("/api/sessions/s/messages")).json()
    answer = await client.post("/api/sessions/s/fork", json={"messageId": messages[1]["id"]})
    assert answer.status_code == 201, answer.text
    fork = answer.json()
    assert fork["forkedFrom"] == {"sessionId": "s", "messageId": messages[1]["id"]}
    assert fork["messageCount"] == 2 and fork["title"] == "question 0"
    copied = (await client.get(f"/api/sessions/{fork['sessionId']}/messages")).json()
    assert copied == messages[:2]
    assert (await client.post("/api/sessions/s/fork", json={})).status_code == 400
    assert (await client.post("/api/sessions/s/fork", json={"messageId": "x"})).status_code == 404
    assert (
        await client.post("/api/sessions/nope/fork", json={"messageId": "x"})
    ).status_code == 404


class TestOwnership:
    """In key mode: another user's session is not there."""

    @pytest.fixture
    def settings(self, tmp_path: Any, compiled: bool) -> Settings:
        return Settings(data_dir=tmp_path, admin_key="k", compiled_execution=compiled)

    async def test_another_user_can_neither_delete_nor_fork(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        admin = GraphQLClient(client, {"Authorization": "Bearer k"})
        keys = "mutation($u: String!) { createApiKey(userId: $u) { key } }"
        alice_key = (await admin.data(keys, {"u": "alice"}))["createApiKey"]["key"]
        bob_key = (await admin.data(keys, {"u": "bob"}))["createApiKey"]["key"]
        alice = GraphQLClient(client, {"Authorization": f"Bearer {alice_key}"})
        bob = GraphQLClient(client, {"Authorization": f"Bearer {bob_key}"})
        await _conversation(alice, 2)
        nodes = (await alice.data(SESSION, {"id": "s"}))["session"]["messages"]["nodes"]
        assert (await bob.data(DELETE_RUN, {"s": "s", "r": "r0"}))["deleteRun"] is False
        assert (await bob(FORK, {"s": "s", "m": nodes[0]["id"]}))["errors"][0]["extensions"][
            "code"
        ] == "NOT_FOUND"
        headers = {"Authorization": f"Bearer {bob_key}"}
        assert (await client.delete("/api/sessions/s/runs/r0", headers=headers)).status_code == 404
        assert (await alice.data(SESSION, {"id": "s"}))["session"]["runCount"] == 2
        fork = (await alice.data(FORK, {"s": "s", "m": nodes[0]["id"]}))["forkSession"]
        assert (await bob.data(SESSION, {"id": fork["id"]}))["session"] is None
