"""Live runs in GraphQL: ``startRun`` answers at once with the run RUNNING, ``runEvents``
follows it over a real graphql-transport-ws WebSocket (the ``websockets`` client),
``cancelRun`` ends it; key mode authenticates the socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from .agent_servers import AgentBackend
from .helpers import LiveServer, live_settings
from .stream_servers import Stream
from .test_live_runs import FAST, TOKENS, configs

START_RUN = """
mutation($message: String!) {
  startRun(agentId: "finance_agent", message: $message) { id sessionId status input content }
}"""
RUN_EVENTS = """
subscription($s: ID!, $r: ID!, $after: Int) {
  runEvents(sessionId: $s, runId: $r, after: $after) { id type runId content status error data }
}"""
CANCEL_RUN = """
mutation($s: ID!, $r: ID!) { cancelRun(sessionId: $s, runId: $r) { id status content } }"""


@pytest.fixture
def backend() -> Iterator[AgentBackend]:
    with AgentBackend() as server:
        yield server


def ws_url(server: LiveServer) -> str:
    return server.url.replace("http://", "ws://") + "/graphql"


async def graphql(server: LiveServer, query: str, variables: dict[str, Any],
                  headers: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{server.url}/graphql", headers=headers,
                                   json={"query": query, "variables": variables})  # fmt: skip
    return response.json()


async def subscribe(
    ws: Any, variables: dict[str, Any], init: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """connection_init, then one subscription to its end: the ``next`` payloads."""
    await ws.send(json.dumps({"type": "connection_init", "payload": init or {}}))
    assert json.loads(await ws.recv()) == {"type": "connection_ack"}
    await ws.send(json.dumps({"id": "1", "type": "subscribe",
                              "payload": {"query": RUN_EVENTS, "variables": variables}}))  # fmt: skip
    out = []
    while True:
        message = json.loads(await ws.recv())
        if message["type"] == "complete":
            return out
        assert message["type"] == "next", message
        out.append(message["payload"])


async def test_start_run_then_subscribe_to_its_events(
    mongo_uri: str, tmp_path: Any, backend: AgentBackend
) -> None:
    stream = Stream(TOKENS, hold_at=2)
    backend.answer = stream
    with LiveServer(live_settings(mongo_uri, tmp_path, agents=configs(backend), **FAST)) as server:
        started = await graphql(server, START_RUN, {"message": "Q1?"})
        run = started["data"]["startRun"]
        assert (run["status"], run["input"], run["content"]) == ("RUNNING", "Q1?", None)
        async with websockets.connect(ws_url(server), subprotocols=["graphql-transport-ws"]) as ws:
            stream.gate.set()
            payloads = await subscribe(ws, {"s": run["sessionId"], "r": run["id"]})
        events = [p["data"]["runEvents"] for p in payloads]
        assert [e["type"] for e in events] == ["START"] + ["DELTA"] * len(TOKENS) + ["END"]
        assert [e["id"] for e in events] == list(range(1, len(events) + 1))
        assert {e["runId"] for e in events} == {run["id"]}
        assert "".join(e["content"] for e in events if e["type"] == "DELTA") == "".join(TOKENS)
        end = events[-1]
        assert (end["status"], end["content"]) == ("COMPLETED", "".join(TOKENS))
        assert end["data"]["usage"]["total_tokens"] == 10
        assert events[0]["data"]["agent_id"] == "finance_agent"
        # After the end: a replay from any event on.
        async with websockets.connect(ws_url(server), subprotocols=["graphql-transport-ws"]) as ws:
            again = await subscribe(ws, {"s": run["sessionId"], "r": run["id"], "after": 5})
        assert [p["data"]["runEvents"]["id"] for p in again] == list(range(6, len(events) + 1))


async def test_cancel_run_over_graphql(
    mongo_uri: str, tmp_path: Any, backend: AgentBackend
) -> None:
    backend.answer = Stream(["So far"], hang=True)
    with LiveServer(live_settings(mongo_uri, tmp_path, agents=configs(backend), **FAST)) as server:
        run = (await graphql(server, START_RUN, {"message": "Long"}))["data"]["startRun"]
        async with websockets.connect(ws_url(server), subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send(json.dumps({"type": "connection_init"}))
            await ws.recv()
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {
                "query": RUN_EVENTS, "variables": {"s": run["sessionId"], "r": run["id"]}}}))  # fmt: skip
            first = json.loads(await ws.recv())["payload"]["data"]["runEvents"]
            assert first["type"] == "START"
            delta = json.loads(await ws.recv())["payload"]["data"]["runEvents"]
            assert delta["content"] == "So far"
            variables = {"s": run["sessionId"], "r": run["id"]}
            cancelled = (await graphql(server, CANCEL_RUN, variables))["data"]["cancelRun"]
            assert cancelled == {"id": run["id"], "status": "CANCELLED", "content": "So far"}
            end = json.loads(await ws.recv())["payload"]["data"]["runEvents"]
            assert (end["type"], end["status"]) == ("END", "CANCELLED")
            assert json.loads(await ws.recv())["type"] == "complete"
        # A finished run: cancelling changes nothing, and says how it ended.
        again = (await graphql(server, CANCEL_RUN, variables))["data"]["cancelRun"]
        assert again == cancelled
        missing = await graphql(server, CANCEL_RUN, {"s": run["sessionId"], "r": "nope"})
        assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_key_mode_sockets_authenticate(
    mongo_uri: str, tmp_path: Any, backend: AgentBackend
) -> None:
    backend.answer = Stream(TOKENS)
    settings = live_settings(mongo_uri, tmp_path, agents=configs(backend), admin_key="adm", **FAST)
    admin = {"Authorization": "Bearer adm"}
    with LiveServer(settings) as server:
        run = (await graphql(server, START_RUN, {"message": "Q1?"}, admin))["data"]["startRun"]
        variables = {"s": run["sessionId"], "r": run["id"]}
        created = await graphql(
            server, 'mutation { createApiKey(userId: "bob") { key } }', {}, admin
        )
        bob = f"Bearer {created['data']['createApiKey']['key']}"
        # No key, or a wrong one: the socket is closed with 4403 after connection_init.
        for init in ({}, {"Authorization": "Bearer wrong"}):
            async with websockets.connect(
                ws_url(server), subprotocols=["graphql-transport-ws"]
            ) as ws:
                await ws.send(json.dumps({"type": "connection_init", "payload": init}))
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
                assert closed.value.rcvd is not None
                assert closed.value.rcvd.code == 4403
        # The key in connection_init's payload, or in the handshake's header.
        async with websockets.connect(ws_url(server), subprotocols=["graphql-transport-ws"]) as ws:
            events = await subscribe(ws, variables, {"Authorization": "Bearer adm"})
        assert events[-1]["data"]["runEvents"]["type"] == "END"
        async with websockets.connect(ws_url(server), subprotocols=["graphql-transport-ws"],
                                      additional_headers=admin) as ws:  # fmt: skip
            events = await subscribe(ws, variables)
        assert events[-1]["data"]["runEvents"]["type"] == "END"
        # Another user's run is not found, exactly like a missing one.
        async with websockets.connect(ws_url(server), subprotocols=["graphql-transport-ws"]) as ws:
            [payload] = await subscribe(ws, variables, {"Authorization": bob})
        assert payload["data"] is None
        assert payload["errors"][0]["message"] == "run not found"
        assert payload["errors"][0]["extensions"] == {"code": "NOT_FOUND"}
        bobs_cancel = await graphql(server, CANCEL_RUN, variables, {"Authorization": bob})
        assert bobs_cancel["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_a_subscription_over_http_is_a_clear_400(client: httpx.AsyncClient) -> None:
    query = 'subscription { runEvents(sessionId: "s", runId: "r") { id } }'
    response = await client.post("/graphql", json={"query": query})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT"}
    assert "WebSocket" in error["message"]
