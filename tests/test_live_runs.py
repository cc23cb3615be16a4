"""Live runs against real streaming backends, through uvicorn on loopback: server-sent
events parsed by httpx-sse, progress stored while the answer streams, joining, Last-Event-ID,
cancelling, and the failures a stream can have (dropped, hanging, trickling)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from agent_sessions.settings import AgentConfig

from .agent_servers import AgentBackend, echo_chat
from .helpers import LiveServer, live_settings
from .stream_servers import Stream, ndjson_agent, trickle

TOKENS = ["Your ", "Q1 ", "revenue ", "was ", "$4.2 ", "million."]
ANSWER = "".join(TOKENS)


def configs(backend: AgentBackend, timeout_s: float = 20) -> dict[str, AgentConfig]:
    return {
        "finance_agent": AgentConfig(
            backend="openai", base_url=f"{backend.url}/v1", model="m", timeout_s=timeout_s
        ),
        "rag_agent": AgentConfig(backend="http", url=f"{backend.url}/run", timeout_s=timeout_s),
    }


FAST = {"run_flush_s": 0.1, "run_lease_s": 1, "run_drain_s": 0.5}


@pytest.fixture
def backend() -> Iterator[AgentBackend]:
    with AgentBackend() as server:
        yield server


@pytest.fixture
def server(mongo_uri: str, tmp_path: Any, backend: AgentBackend) -> Iterator[LiveServer]:
    settings = live_settings(mongo_uri, tmp_path, agents=configs(backend), **FAST)
    with LiveServer(settings) as live:
        yield live


@pytest.fixture
async def http(server: LiveServer) -> Any:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        yield client


def payloads(events: list[ServerSentEvent]) -> list[tuple[str, Any]]:
    return [(e.event, e.json()) for e in events]


async def stream_run(
    http: httpx.AsyncClient, agent: str = "finance_agent", **body: Any
) -> list[ServerSentEvent]:
    async with aconnect_sse(http, "POST", f"/api/agents/{agent}/runs", json=body) as source:
        assert source.response.status_code == 200
        return [e async for e in source.aiter_sse()]


async def join(
    http: httpx.AsyncClient, session_id: str, run_id: str, **headers: str
) -> list[ServerSentEvent]:
    path = f"/api/sessions/{session_id}/runs/{run_id}/events"
    async with aconnect_sse(http, "GET", path, headers=headers) as source:
        assert source.response.status_code == 200, await source.response.aread()
        return [e async for e in source.aiter_sse()]


async def until(check: Any, within_s: float = 10) -> Any:
    """Poll ``check`` (async, returns a truthy value when done) for up to ``within_s``."""
    deadline = time.monotonic() + within_s
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.05)


async def stored_run(http: httpx.AsyncClient, session_id: str, run_id: str) -> dict[str, Any]:
    runs = (await http.get(f"/api/sessions/{session_id}/runs")).json()
    return next(r for r in runs if r["runId"] == run_id)


# --- streaming -----------------------------------------------------------------------------


async def test_a_run_streams_start_deltas_and_end(
    http: httpx.AsyncClient, backend: AgentBackend
) -> None:
    backend.answer = Stream(TOKENS)
    events = await stream_run(http, message="What is our Q1 revenue?")
    assert [e.event for e in events] == ["start"] + ["delta"] * len(TOKENS) + ["end"]
    assert [int(e.id) for e in events] == list(range(1, len(events) + 1))
    start = events[0].json()
    assert set(start) == {"run_id", "session_id", "agent_id", "created_at"}
    assert start["agent_id"] == "finance_agent"
    assert start["created_at"].endswith("Z")
    assert "".join(e.json()["content"] for e in events if e.event == "delta") == ANSWER
    assert events[-1].json() == {
        "run_id": start["run_id"],
        "session_id": start["session_id"],
        "status": "COMPLETED",
        "content": ANSWER,
        "usage": {"input_tokens": 7, "output_tokens": 3, "reasoning_tokens": None,
                  "total_tokens": 10},
    }  # fmt: skip
    sent = backend.received[0]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    # What was streamed is what is stored.
    run = await stored_run(http, start["session_id"], start["run_id"])
    assert (run["status"], run["content"]) == ("COMPLETED", ANSWER)
    assert run["usage"] == {"inputTokens": 7, "outputTokens": 3, "reasoningTokens": None,
                            "totalTokens": 10}  # fmt: skip
    messages = (await http.get(f"/api/sessions/{start['session_id']}/messages")).json()
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "What is our Q1 revenue?"),
        ("assistant", ANSWER),
    ]


async def test_stream_flag_in_the_body_and_its_opposite(
    http: httpx.AsyncClient, backend: AgentBackend
) -> None:
    backend.answer = Stream(TOKENS)
    async with http.stream("POST", "/api/agents/finance_agent/runs",
                           json={"message": "hi", "stream": True}) as response:  # fmt: skip
        assert response.headers["content-type"].startswith("text/event-stream")
        await response.aread()
    # "stream": false wins over the Accept header: the JSON answer, as before streaming.
    response = await http.post(
        "/api/agents/finance_agent/runs",
        json={"message": "hi", "stream": False},
        headers={"Accept": "text/event-stream"},
    )
    assert response.status_code == 201
    assert response.json()["content"] == ANSWER
    response = await http.post(
        "/api/agents/finance_agent/runs", json={"message": "hi", "stream": "yes"}
    )
    assert response.status_code == 400


async def test_a_json_backend_streams_as_one_delta(
    http: httpx.AsyncClient, backend: AgentBackend
) -> None:
    backend.answer = echo_chat  # answers one chat completion although asked to stream
    events = await stream_run(http, message="hi")
    assert [e.event for e in events] == ["start", "delta", "end"]
    assert events[1].json() == {"content": "answer to: hi (1 messages)"}


async def test_start_comes_before_the_backend_answers_and_cancel_ends_the_stream(
    http: httpx.AsyncClient, backend: AgentBackend
) -> None:
    stream = Stream(["Partial ", "answer"], hang=True)
    backend.answer = stream
    path = "/api/agents/finance_agent/runs"
    async with aconnect_sse(http, "POST", path, json={"message": "Long one"}) as source:
        events = source.aiter_sse()
        start = (await anext(events)).json()
        assert start["run_id"]
        first, second = await anext(events), await anext(events)
        assert (first.event, second.event) == ("delta", "delta")
        # The backend is still busy; cancel the run from another request.
        cancel = await http.post(
            f"/api/sessions/{start['session_id']}/runs/{start['run_id']}/cancel"
        )
        assert cancel.status_code == 200
        body = cancel.json()
        assert (body["runId"], body["status"], body["content"]) == (
            start["run_id"],
            "CANCELLED",
            "Partial answer",
        )
        rest = [e async for e in events]
    assert [e.event for e in rest] == ["end"]
    assert rest[0].json()["status"] == "CANCELLED"
    assert rest[0].json()["content"] == "Partial answer"
    # The backend request was aborted, not left to finish.
    assert await until(lambda: _is_set(stream.closed_early))
    messages = (await http.get(f"/api/sessions/{start['session_id']}/messages")).json()
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Long one"),
        ("assistant", "Partial answer"),
    ]
    # Cancelling again changes nothing and says so: 200 with the run as it is.
    again = await http.post(f"/api/sessions/{start['session_id']}/runs/{start['run_id']}/cancel")
    assert (again.status_code, again.json()) == (200, body)


async def _is_set(event: Any) -> bool:
    return event.is_set()


async def test_progress_is_stored_while_the_answer_streams(
    http: httpx.AsyncClient, backend: AgentBackend
) -> None:
    stream = Stream(TOKENS, hold_at=3)
    backend.answer = stream
    path = "/api/agents/finance_agent/runs"
    async with aconnect_sse(http, "POST", path, json={"message": "Q1?"}) as source:
        events = source.aiter_sse()
        start = (await anext(events)).json()
        for _ in range(3):
            assert (await anext(events)).event == "delta"
        session_id, run_id = start["session_id"], start["run_id"]
        partial = "".join(TOKENS[:3])

        async def reloaded() -> Any:
            messages = (await http.get(f"/api/sessions/{session_id}/messages")).json()
            return messages if messages[-1]["content"] == partial else None

        messages = await until(reloaded)
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[1]["run_id"] == run_id
        graphql = await http.post("/graphql", json={"query": (
            "query($s: ID!, $r: ID!) { run(sessionId: $s, runId: $r) { status content "
            "messages { role content } } }"), "variables": {"s": session_id, "r": run_id}})  # fmt: skip
        run = graphql.json()["data"]["run"]
        assert run["status"] == "RUNNING"
        assert run["content"] == partial
        assert run["messages"][1] == {"role": "ASSISTANT", "content": partial}
        stream.gate.set()
        rest = [e async for e in events]
    assert rest[-1].event == "end"
    messages = (await http.get(f"/api/sessions/{session_id}/messages")).json()
    assert [m["content"] for m in messages] == ["Q1?", ANSWER]
    assert messages[1]["id"] == (await reloaded_ids(http, session_id))[1]


async def reloaded_ids(http: httpx.AsyncClient, session_id: str) -> list[str]:
    return [m["id"] for m in (await http.get(f"/api/sessions/{session_id}/messages")).json()]


async def test_joining_replays_then_follows_and_resumes_after_last_event_id(
    http: httpx.AsyncClient, backend: AgentBackend
) -> None:
    stream = Stream(TOKENS, hold_at=3)
    backend.answer = stream
    path = "/api/agents/finance_agent/runs"
    async with aconnect_sse(http, "POST", path, json={"message": "Q1?"}) as source:
        events = source.aiter_sse()
        original = [await anext(events) for _ in range(4)]
        start = original[0].json()
        session_id, run_id = start["session_id"], start["run_id"]
        # A second client joins mid-run: what happened so far, then the rest.
        join_path = f"/api/sessions/{session_id}/runs/{run_id}/events"
        async with aconnect_sse(http, "GET", join_path) as joined:
            joined_events = joined.aiter_sse()
            replayed = [await anext(joined_events) for _ in range(4)]
            assert payloads(replayed) == payloads(original)
            stream.gate.set()
            followed = [e async for e in joined_events]
        original += [e async for e in events]
    assert payloads(replayed + followed) == payloads(original)
    assert followed[-1].event == "end"
    # A finished run's stream replays and ends at once; Last-Event-ID resumes after it.
    assert payloads(await join(http, session_id, run_id)) == payloads(original)
    resumed = await join(http, session_id, run_id, **{"Last-Event-ID": "4"})
    assert [int(e.id) for e in resumed] == list(range(5, len(original) + 1))
    bad = await http.get(join_path, headers={"Last-Event-ID": "nope"})
    assert bad.status_code == 400
    assert set(bad.json()) == {"error"}


async def test_a_recorded_run_replays_from_what_is_stored(http: httpx.AsyncClient) -> None:
    record = """mutation($i: RecordRunInput!) { recordRun(input: $i) { id sessionId } }"""
    run = {
        "sessionId": "rec", "runId": "rec-1", "agentId": "rag_agent",
        "messages": [
            {"role": "USER", "content": "refunds?"},
            {"role": "ASSISTANT", "content": None,
             "toolCalls": [{"id": "t1", "name": "search", "arguments": "{}"}]},
            {"role": "TOOL", "content": "2 hits", "toolCallId": "t1", "name": "search"},
            {"role": "ASSISTANT", "content": "Within 30 days."},
        ],
        "retrievedContext": [{"id": "k1", "text": "30 days", "score": 0.9}],
        "usage": {"inputTokens": 5, "outputTokens": 4, "totalTokens": 9},
    }  # fmt: skip
    response = await http.post("/graphql", json={"query": record, "variables": {"i": run}})
    assert "errors" not in response.json()
    events = await join(http, "rec", "rec-1")
    assert [e.event for e in events] == [
        "start",
        "retrieval",
        "tool_call",
        "tool_result",
        "delta",
        "end",
    ]
    assert events[1].json()["retrieved_context"][0]["id"] == "k1"
    assert events[2].json() == {"id": "t1", "name": "search", "arguments": "{}"}
    assert events[3].json() == {"tool_call_id": "t1", "name": "search", "content": "2 hits"}
    assert events[-1].json()["content"] == "Within 30 days."
    assert events[-1].json()["usage"]["total_tokens"] == 9


async def test_a_client_that_goes_away_does_not_stop_the_run(
    http: httpx.AsyncClient, backend: AgentBackend
) -> None:
    backend.answer = Stream(TOKENS, delay=0.1)
    path = "/api/agents/finance_agent/runs"
    async with aconnect_sse(http, "POST", path, json={"message": "Q1?"}) as source:
        start = (await anext(source.aiter_sse())).json()
    # The connection is closed; the run goes on to its end and stores it.
    run = await until(lambda: _completed(http, start))
    assert run["content"] == ANSWER


async def _completed(http: httpx.AsyncClient, start: dict[str, Any]) -> Any:
    run = await stored_run(http, start["session_id"], start["run_id"])
    return run if run["status"] != "RUNNING" else None


# --- failures ------------------------------------------------------------------------------


async def test_a_dropped_stream_fails_the_run_and_keeps_what_came(
    http: httpx.AsyncClient, backend: AgentBackend
) -> None:
    backend.answer = Stream(TOKENS, drop_at=2)
    events = await stream_run(http, message="Q1?")
    assert [e.event for e in events] == ["start", "delta", "delta", "error"]
    error = events[-1].json()
    assert set(error) == {"error", "run_id", "session_id"}
    assert "agent finance_agent" in error["error"]
    assert f"{backend.url}/v1/chat/completions" in error["error"]
    run = await stored_run(http, error["session_id"], error["run_id"])
    assert run["status"] == "FAILED"
    assert run["error"] == error["error"]
    messages = (await http.get(f"/api/sessions/{error['session_id']}/messages")).json()
    assert messages[0]["content"] == "Q1?"


async def test_without_the_end_of_the_stream_the_run_fails(
    http: httpx.AsyncClient, backend: AgentBackend
) -> None:
    async def no_done(body: dict[str, Any]) -> Any:
        from starlette.responses import StreamingResponse

        from .stream_servers import chunk

        async def gen() -> Any:
            yield chunk("half an answer")

        return StreamingResponse(gen(), media_type="text/event-stream")

    backend.answer = no_done
    events = await stream_run(http, message="Q1?")
    assert events[-1].event == "error"
    assert "ended before the answer did" in events[-1].json()["error"]


@pytest.mark.parametrize("kind", ["hang", "trickle"])
def test_timeout_is_a_deadline_for_the_whole_call(
    mongo_uri: str, tmp_path: Any, backend: AgentBackend, kind: str
) -> None:
    # A backend that trickles a byte every 1.5 s never trips a per-read timeout of 3 s.
    backend.answer = Stream(["a"], hang=True) if kind == "hang" else trickle(1.5, 40)
    settings = live_settings(mongo_uri, tmp_path, agents=configs(backend, timeout_s=3), **FAST)
    with LiveServer(settings) as live:
        t = time.monotonic()
        response = httpx.post(
            f"{live.url}/api/agents/finance_agent/runs", json={"message": "hi"}, timeout=60
        )
        elapsed = time.monotonic() - t
    assert response.status_code == 502
    assert "did not answer within 3s" in response.json()["error"]
    assert elapsed < 8, elapsed


async def test_errors_come_before_any_event(http: httpx.AsyncClient) -> None:
    headers = {"Accept": "text/event-stream"}
    unknown = await http.post("/api/agents/nobody/runs", json={"message": "hi"}, headers=headers)
    assert (unknown.status_code, unknown.json()) == (404, {"error": "unknown agent 'nobody'"})
    blank = await http.post(
        "/api/agents/finance_agent/runs", json={"message": " "}, headers=headers
    )
    assert blank.status_code == 400
    assert blank.headers["content-type"].startswith("application/json")
    missing = await http.get("/api/sessions/nope/runs/nope/events")
    assert (missing.status_code, missing.json()) == (404, {"error": "session not found"})
    await http.post(
        "/graphql", json={"query": 'mutation { createSession(input: {id: "s"}) { id } }'}
    )
    missing = await http.post("/api/sessions/s/runs/nope/cancel")
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "run not found in this session"},
    )


# --- http agents that stream ---------------------------------------------------------------


async def test_an_http_agent_streams_ndjson_events(
    http: httpx.AsyncClient, backend: AgentBackend
) -> None:
    chunk = {"id": "k1", "text": "Full refund within 30 days.", "score": 0.91,
             "source_name": "policy.pdf", "meta": {"page": 3}}  # fmt: skip
    backend.answer = ndjson_agent([
        ("retrieval", {"retrieved_context": [chunk], "retrieval_diagnostics": {"latency_ms": 8}}),
        ("delta", {"content": "Let me look. "}),
        ("tool_call", {"id": "t1", "name": "search", "arguments": '{"q": "refund"}'}),
        ("tool_result", {"tool_call_id": "t1", "name": "search", "content": "1 hit"}),
        ("delta", {"content": "Refunds within "}),
        ("delta", {"content": "30 days."}),
        ("end", {"usage": {"input_tokens": 100, "output_tokens": 7, "total_tokens": 107}}),
    ], delay=0.02)  # fmt: skip
    events = await stream_run(http, agent="rag_agent", message="Refund policy?")
    assert [e.event for e in events] == [
        "start", "retrieval", "delta", "tool_call", "tool_result", "delta", "delta", "end"
    ]  # fmt: skip
    end = events[-1].json()
    assert end["content"] == "Refunds within 30 days."
    assert end["usage"]["total_tokens"] == 107
    session_id, run_id = end["session_id"], end["run_id"]
    messages = (await http.get(f"/api/sessions/{session_id}/messages")).json()
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "Refund policy?"),
        ("assistant", "Let me look. "),
        ("tool", "1 hit"),
        ("assistant", "Refunds within 30 days."),
    ]
    assert messages[1]["tool_calls"][0]["function"] == {
        "name": "search",
        "arguments": '{"q": "refund"}',
    }
    assert messages[3]["retrieved_context"][0]["source_name"] == "policy.pdf"
    context = (await http.get(f"/api/sessions/{session_id}/runs/{run_id}/retrieved-context")).json()
    assert context["retrieved_context"][0] == {"_type": "retrieval_diagnostics", "latency_ms": 8}


async def test_an_http_agent_that_reports_an_error(
    http: httpx.AsyncClient, backend: AgentBackend
) -> None:
    backend.answer = ndjson_agent([("delta", {"content": "Hm"}), ("error", {"error": "no index"})])
    response = await http.post("/api/agents/rag_agent/runs", json={"message": "x"})
    assert response.status_code == 502
    assert "the agent reported an error: no index" in response.json()["error"]
    backend.answer = ndjson_agent([("delta", {"content": "cut short"})])
    response = await http.post("/api/agents/rag_agent/runs", json={"message": "x"})
    assert "ended before its end event" in response.json()["error"]


def test_an_agent_error_names_the_agent_and_url_never_the_key(
    mongo_uri: str, tmp_path: Any, backend: AgentBackend
) -> None:
    from pydantic import SecretStr
    from starlette.responses import PlainTextResponse

    async def refuse(body: dict[str, Any]) -> Any:
        return PlainTextResponse("Incorrect API key provided: sk-secret-123", status_code=401)

    backend.answer = refuse
    agents = configs(backend)
    agents["finance_agent"].api_key = SecretStr("sk-secret-123")
    with LiveServer(live_settings(mongo_uri, tmp_path, agents=agents, **FAST)) as live:
        response = httpx.post(f"{live.url}/api/agents/finance_agent/runs", json={"message": "hi"})
    error = response.json()["error"]
    assert error.startswith(f"agent finance_agent ({backend.url}/v1/chat/completions): ")
    assert "answered 401" in error
    assert "sk-secret-123" not in error


async def test_deleting_a_session_deletes_its_run_events(
    http: httpx.AsyncClient, backend: AgentBackend, server: LiveServer
) -> None:
    from pymongo import MongoClient

    backend.answer = Stream(TOKENS)
    events = await stream_run(http, message="Q1?")
    session_id = events[0].json()["session_id"]
    with MongoClient(server.settings.mongodb_uri) as client:
        stored = client[server.settings.database]["run_events"]
        # The last events are stored just after the end is sent: wait for them.
        for _ in range(100):
            if stored.count_documents({"session_id": session_id}) > 0:
                break
            await asyncio.sleep(0.02)
        assert stored.count_documents({"session_id": session_id}) > 0
        assert (await http.delete(f"/api/sessions/{session_id}")).status_code == 204
        assert stored.count_documents({"session_id": session_id}) == 0


async def test_another_users_run_is_404_for_events_and_cancel(storage: Any, tmp_path: Any) -> None:
    from agent_sessions.app import build_app
    from agent_sessions.settings import Settings

    app = build_app(Settings(data_dir=tmp_path, admin_key="adm", **FAST), storage=storage)
    transport = httpx.ASGITransport(app=app)
    admin = {"Authorization": "Bearer adm"}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        created = await client.post("/graphql", headers=admin, json={
            "query": 'mutation { createApiKey(userId: "bob") { key } }'})  # fmt: skip
        bob = {"Authorization": f"Bearer {created.json()['data']['createApiKey']['key']}"}
        record = "mutation($i: RecordRunInput!) { recordRun(input: $i) { id } }"
        run = {"sessionId": "alice-s", "runId": "r1", "userId": "alice", "agentId": "a",
               "status": "RUNNING", "messages": [{"role": "USER", "content": "hi"}]}  # fmt: skip
        await client.post(
            "/graphql", headers=admin, json={"query": record, "variables": {"i": run}}
        )
        for method, path in (("GET", "events"), ("POST", "cancel")):
            theirs = await client.request(
                method, f"/api/sessions/alice-s/runs/r1/{path}", headers=bob
            )
            missing = await client.request(
                method, f"/api/sessions/nope/runs/r1/{path}", headers=bob
            )
            assert (theirs.status_code, theirs.json()) == (missing.status_code, missing.json())
            assert theirs.status_code == 404
        # The run is untouched by bob's cancel; the owner's administrator can cancel it.
        cancel = await client.post("/api/sessions/alice-s/runs/r1/cancel", headers=admin)
        assert cancel.json()["status"] == "CANCELLED"
    await app.state.services.agents.aclose()
