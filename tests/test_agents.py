"""Agent runs against real local backends: history replay, reasoning, usage, failures that
keep the user's message, concurrency, and an http agent's retrieved chunks."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse, PlainTextResponse, Response

from agent_sessions.settings import Settings

from .agent_servers import SYSTEM_PROMPT, AgentBackend, agent_configs, echo_chat, slow
from .helpers import GraphQLClient, LiveServer, curl, live_settings, record


@pytest.fixture
def backend() -> Iterator[AgentBackend]:
    with AgentBackend() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Any, backend: AgentBackend, compiled: bool) -> Settings:
    return Settings(data_dir=tmp_path, agents=agent_configs(backend), compiled_execution=compiled)


async def post_run(
    client: httpx.AsyncClient, agent: str = "finance_agent", **body: Any
) -> httpx.Response:
    return await client.post(f"/api/agents/{agent}/runs", json=body)


# --- the guide's multi-turn example, verbatim ---------------------------------------------


def test_seed_004_multi_turn_example(mongo_uri: str, tmp_path: Any, backend: AgentBackend) -> None:
    with LiveServer(live_settings(mongo_uri, tmp_path, agents=agent_configs(backend))) as server:
        status, body = curl(
            server,
            """curl -X POST http://localhost:8080/api/agents/finance_agent/runs \\
  -H "Content-Type: application/json" \\
  -d '{"message": "What is our Q1 revenue?"}'""".replace("\\\n", ""),
        )
        first = json.loads(body)
        assert status == 201
        assert set(first) == {"runId", "sessionId", "content", "status"}
        assert first["status"] == "COMPLETED"
        assert first["content"] == "answer to: What is our Q1 revenue? (2 messages)"
        session_id = first["sessionId"]

        status, body = curl(
            server,
            f"""curl -X POST http://localhost:8080/api/agents/finance_agent/runs \\
  -H "Content-Type: application/json" \\
  -d '{{
    "message": "How does that compare to Q4 last year?",
    "session_id": "{session_id}"
  }}'""".replace("\\\n", ""),
        )
        second = json.loads(body)
        assert status == 201
        assert second["sessionId"] == session_id
        assert second["runId"] != first["runId"]
        # The agent recalled the previous exchange: it was replayed before the new message.
        assert backend.received[1]["messages"] == [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "What is our Q1 revenue?"},
            {"role": "assistant", "content": first["content"]},
            {"role": "user", "content": "How does that compare to Q4 last year?"},
        ]
        assert backend.received[1]["model"] == "some-model"

        status, body = curl(
            server, f"curl -X DELETE http://localhost:8080/api/sessions/{session_id}"
        )
        assert (status, body) == (204, "")
        # A new run with the deleted id starts a fresh session: no memory.
        status, body = curl(
            server,
            f"""curl -X POST http://localhost:8080/api/agents/finance_agent/runs -H "Content-Type: application/json" -d '{{"message": "Hello again", "sessionId": "{session_id}"}}'""",
        )
        assert status == 201
        assert json.loads(body)["sessionId"] == session_id
        assert backend.received[2]["messages"] == [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "Hello again"},
        ]


# --- replay, reasoning, usage -----------------------------------------------------------------


async def test_replay_includes_tool_calls_in_openai_format(
    client: httpx.AsyncClient, gql: GraphQLClient, backend: AgentBackend
) -> None:
    await record(
        gql,
        sessionId="s1",
        messages=[
            {"role": "USER", "content": "Weather in Oslo?"},
            {
                "role": "ASSISTANT",
                "content": None,
                "toolCalls": [{"id": "call_1", "name": "weather", "arguments": '{"city":"Oslo"}'}],
            },
            {"role": "TOOL", "content": '{"temp": 3}', "toolCallId": "call_1", "name": "weather"},
            {"role": "ASSISTANT", "content": "It is 3 degrees."},
        ],
    )
    response = await post_run(client, message="And tomorrow?", sessionId="s1")
    assert response.status_code == 201
    assert backend.received[0]["messages"] == [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "Weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
        },
        {"role": "tool", "content": '{"temp": 3}', "tool_call_id": "call_1", "name": "weather"},
        {"role": "assistant", "content": "It is 3 degrees."},
        {"role": "user", "content": "And tomorrow?"},
    ]


async def test_reasoning_is_sent_and_stored_and_usage_kept(
    client: httpx.AsyncClient, gql: GraphQLClient, backend: AgentBackend
) -> None:
    response = await post_run(
        client, message="Think hard", reasoning={"effort": "high", "budget_tokens": 2048}
    )
    run = response.json()
    assert backend.received[0]["reasoning_effort"] == "high"
    data = await gql.data(
        "query($s: ID!, $r: ID!) { run(sessionId: $s, runId: $r) { status input content "
        "reasoning { enabled effort budgetTokens } usage { inputTokens outputTokens reasoningTokens totalTokens } "
        "completedAt } }",
        {"s": run["sessionId"], "r": run["runId"]},
    )
    stored = data["run"]
    assert stored["status"] == "COMPLETED"
    assert stored["input"] == "Think hard"
    assert stored["reasoning"] == {"enabled": True, "effort": "high", "budgetTokens": 2048}
    assert stored["usage"] == {
        "inputTokens": 10,
        "outputTokens": 5,
        "reasoningTokens": 2,
        "totalTokens": 15,
    }
    assert stored["completedAt"].endswith("Z")
    # Without reasoning, none is sent.
    await post_run(client, message="Quick one")
    assert "reasoning_effort" not in backend.received[1]


async def test_api_key_from_the_environment_is_sent(
    tmp_path: Any, backend: AgentBackend, monkeypatch: pytest.MonkeyPatch, storage: Any
) -> None:
    from agent_sessions.app import build_app
    from agent_sessions.settings import load_settings

    config = tmp_path / "agents.toml"
    config.write_text(
        f'[agents.finance_agent]\nbackend = "openai"\nbase_url = "{backend.url}/v1"\nmodel = "m"\n'
        'api_key_env = "TEST_AGENT_KEY"\n'
    )
    monkeypatch.setenv("TEST_AGENT_KEY", "sk-test-123")
    settings = load_settings(config=config, data_dir=tmp_path)
    application = build_app(settings, storage=storage)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://127.0.0.1"
    ) as client:
        assert (await post_run(client, message="hi")).status_code == 201
    await application.state.services.agents.aclose()
    assert backend.headers[0]["authorization"] == "Bearer sk-test-123"


# --- failures keep the user's message ----------------------------------------------------------


async def _runs(client: httpx.AsyncClient, session_id: str) -> list[dict[str, Any]]:
    return (await client.get(f"/api/sessions/{session_id}/runs")).json()


@pytest.mark.parametrize(
    ("answer", "error_part"),
    [
        (
            lambda body: _respond(PlainTextResponse("upstream exploded", status_code=500)),
            "answered 500",
        ),
        (lambda body: _respond(JSONResponse({"choices": []})), "not a chat completion"),
        (lambda body: _respond(PlainTextResponse("<html>not json</html>")), "not JSON"),
        (lambda body: slow(5), "did not answer within 2s"),
    ],
    ids=["http-500", "malformed", "not-json", "timeout"],
)
async def test_backend_failure_stores_a_failed_run(
    client: httpx.AsyncClient,
    gql: GraphQLClient,
    backend: AgentBackend,
    answer: Any,
    error_part: str,
) -> None:
    backend.answer = answer
    response = await post_run(client, message="Will this work?", session_id="s-fail")
    assert response.status_code == 502
    body = response.json()
    assert set(body) == {"error", "runId", "sessionId"}
    assert error_part in body["error"]
    assert body["sessionId"] == "s-fail"
    [run] = await _runs(client, "s-fail")
    assert run["runId"] == body["runId"]
    assert run["status"] == "FAILED"
    assert error_part in run["error"]
    assert run["completedAt"] is not None
    messages = (await client.get("/api/sessions/s-fail/messages")).json()
    assert [(m["role"], m["content"]) for m in messages] == [("user", "Will this work?")]
    # The same failure through GraphQL is AGENT_ERROR, carrying the ids.
    result = await gql(
        'mutation { runAgent(agentId: "finance_agent", message: "again", sessionId: "s-fail") { id } }'
    )
    error = result["errors"][0]
    assert error["extensions"]["code"] == "AGENT_ERROR"
    assert error["extensions"]["sessionId"] == "s-fail"
    assert [r["status"] for r in await _runs(client, "s-fail")] == ["FAILED", "FAILED"]
    assert error["extensions"]["runId"] == (await _runs(client, "s-fail"))[1]["runId"]


async def _respond(response: Response) -> Response:
    return response


async def test_concurrent_runs_on_one_session_both_land(
    client: httpx.AsyncClient, backend: AgentBackend
) -> None:
    async def answer(body: dict[str, Any]) -> Response:
        await asyncio.sleep(0.3)
        return await echo_chat(body)

    backend.answer = answer
    first, second = await asyncio.gather(
        post_run(client, message="first", sessionId="busy"),
        post_run(client, message="second", sessionId="busy"),
    )
    assert first.status_code == second.status_code == 201
    runs = await _runs(client, "busy")
    assert [r["runId"] for r in runs] == [first.json()["runId"], second.json()["runId"]]
    assert [r["status"] for r in runs] == ["COMPLETED", "COMPLETED"]
    messages = (await client.get("/api/sessions/busy/messages")).json()
    assert sorted(m["content"] for m in messages if m["role"] == "user") == ["first", "second"]
    assert len(messages) == 4


# --- input checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"message": ""},
        {"message": "   "},
        {"message": 42},
        {"message": None},
        {"message": "x" * 1_000_001},
    ],
    ids=["missing", "empty", "blank", "number", "null", "too-long"],
)
async def test_bad_message_is_400_and_stores_nothing(
    client: httpx.AsyncClient, gql: GraphQLClient, body: dict
) -> None:
    response = await client.post("/api/agents/finance_agent/runs", json=body)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert (await gql.data("{ sessions { totalCount } }"))["sessions"]["totalCount"] == 0


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/agents/finance_agent/runs",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert (response.status_code, set(response.json())) == (400, {"error"})
    response = await client.post("/api/agents/finance_agent/runs", json=["a list"])
    assert response.status_code == 400


async def test_unknown_agent_is_404(client: httpx.AsyncClient, gql: GraphQLClient) -> None:
    response = await post_run(client, agent="nobody", message="hi")
    assert response.status_code == 404
    assert response.json() == {"error": "unknown agent 'nobody'"}
    result = await gql('mutation { runAgent(agentId: "nobody", message: "hi") { id } }')
    assert result["errors"][0]["extensions"]["code"] == "NOT_FOUND"


# --- an http agent with retrieval ----------------------------------------------------------------


async def rag_answer(body: dict[str, Any]) -> Response:
    return JSONResponse(
        {
            "content": "Refunds within 30 days.",
            "messages": [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": "t1", "name": "search", "arguments": '{"q":"refund"}'}],
                },
                {"role": "tool", "content": "2 hits", "tool_call_id": "t1", "name": "search"},
                {"role": "assistant", "content": "Refunds within 30 days."},
            ],
            "retrieved_context": [
                {
                    "id": "k1",
                    "text": "Full refund within 30 days.",
                    "score": 0.91,
                    "retrieval_score": 0.7,
                    "reranker_score": 0.91,
                    "source_id": "src-1",
                    "source_name": "policy.pdf",
                    "knowledge_base_id": "kb-1",
                    "kb_name": "Policies",
                    "indexing_strategy": "chunk_embed",
                    "meta": {"page": 3},
                    "included_in_context": True,
                },
                {
                    "id": "k2",
                    "text": "Partial refund within 90 days.",
                    "score": 0.42,
                    "included_in_context": False,
                },
            ],
            "retrieval_diagnostics": {"query": body["message"], "latency_ms": 8},
            "usage": {"input_tokens": 100, "output_tokens": 7, "total_tokens": 107},
        }
    )


async def test_http_agent_chunks_show_up_in_rest_and_graphql(
    client: httpx.AsyncClient, gql: GraphQLClient, backend: AgentBackend
) -> None:
    await record(
        gql,
        sessionId="rag",
        messages=[
            {"role": "USER", "content": "earlier"},
            {"role": "ASSISTANT", "content": "before"},
        ],
    )
    backend.answer = rag_answer
    response = await post_run(
        client,
        agent="rag_agent",
        message="What is the refund policy?",
        sessionId="rag",
        reasoning={"enabled": False},
    )
    assert response.status_code == 201
    run = response.json()
    assert run["content"] == "Refunds within 30 days."
    sent = backend.received[0]
    assert sent == {
        "session_id": "rag",
        "run_id": run["runId"],
        "agent_id": "rag_agent",
        "message": "What is the refund policy?",
        "history": [
            {"role": "user", "content": "earlier"},
            {"role": "assistant", "content": "before"},
        ],
        "reasoning": {"enabled": False, "effort": None, "budget_tokens": None},
    }
    context = (await client.get(f"/api/sessions/rag/runs/{run['runId']}/retrieved-context")).json()
    assert context["retrieved_context"][0] == {
        "_type": "retrieval_diagnostics",
        "query": "What is the refund policy?",
        "latency_ms": 8,
    }
    assert [c["id"] for c in context["retrieved_context"][1:]] == ["k1", "k2"]
    assert context["retrieved_context"][1]["meta"] == {"page": 3}
    data = await gql.data(
        'query($r: ID!) { session(id: "rag") { run(id: $r) { usage { totalTokens } '
        "messages { role content toolCalls { name } toolCallId retrievedContext(includedOnly: true) { id score } } } } }",
        {"r": run["runId"]},
    )
    messages = data["session"]["run"]["messages"]
    assert [m["role"] for m in messages] == ["USER", "ASSISTANT", "TOOL", "ASSISTANT"]
    assert messages[1]["toolCalls"] == [{"name": "search"}]
    assert messages[2]["toolCallId"] == "t1"
    assert messages[3]["retrievedContext"] == [{"id": "k1", "score": 0.91}]
    assert messages[0]["retrievedContext"] == []
    assert data["session"]["run"]["usage"] == {"totalTokens": 107}


async def test_http_agent_with_a_malformed_chunk_fails_the_run(
    client: httpx.AsyncClient, backend: AgentBackend
) -> None:
    async def answer(body: dict[str, Any]) -> Response:
        return JSONResponse({"content": "x", "retrieved_context": [{"text": "no id"}]})

    backend.answer = answer
    response = await post_run(client, agent="rag_agent", message="hi", sessionId="bad-rag")
    assert response.status_code == 502
    assert "retrieved_context.0.id" in response.json()["error"]
    [run] = await _runs(client, "bad-rag")
    assert run["status"] == "FAILED"


async def test_ownership_of_agent_runs(storage: Any, tmp_path: Any, backend: AgentBackend) -> None:
    from agent_sessions.app import build_app

    application = build_app(
        Settings(data_dir=tmp_path, admin_key="adm", agents=agent_configs(backend)), storage=storage
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=application), base_url="http://127.0.0.1"
    ) as client:
        admin = {"Authorization": "Bearer adm"}
        created = await client.post(
            "/graphql",
            json={"query": 'mutation { createApiKey(userId: "bob") { key } }'},
            headers=admin,
        )
        bob = {"Authorization": f"Bearer {created.json()['data']['createApiKey']['key']}"}
        # An administrator runs the agent for alice; the session is alice's.
        response = await client.post(
            "/api/agents/finance_agent/runs",
            json={"message": "hi", "userId": "alice", "sessionId": "alice-s"},
            headers=admin,
        )
        assert response.status_code == 201
        listing = await client.get("/api/sessions?userId=alice", headers=admin)
        assert [s["sessionId"] for s in listing.json()["content"]] == ["alice-s"]
        # Bob cannot write into alice's session: 404, the same as for a missing one; nothing changes.
        response = await client.post(
            "/api/agents/finance_agent/runs",
            json={"message": "x", "sessionId": "alice-s"},
            headers=bob,
        )
        assert (response.status_code, response.json()) == (404, {"error": "session not found"})
        response = await client.post(
            "/api/agents/finance_agent/runs", json={"message": "x", "user_id": "alice"}, headers=bob
        )
        assert (response.status_code, response.json()) == (
            403,
            {"error": "only administrators may act for another user"},
        )
        runs = await client.get("/api/sessions/alice-s/runs", headers=admin)
        assert len(runs.json()) == 1
        assert len(backend.received) == 1
        response = await client.post("/api/agents/finance_agent/runs", json={"message": "x"})
        assert response.status_code == 401
    await application.state.services.agents.aclose()
