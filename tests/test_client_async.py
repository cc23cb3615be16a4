"""``AsyncClient`` against the real app (in-process, both execution modes) and database:
what a script gets back, typed, and the requests it takes to get it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from starlette.responses import JSONResponse, Response

from agent_sessions import AgentSessionsError, AsyncClient
from agent_sessions.client import Message, RetrievedChunk, Run, Session
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.build import build_session
from agent_sessions.storage.layout import DEFAULT_BOUNDS, SESSIONS

from .agent_servers import AgentBackend, agent_configs, echo_chat
from .helpers import BASE_URL, GraphQLClient, record

CHUNKS = [
    {"id": "c-1", "text": "Q1 revenue: $4.2M", "score": 0.84, "retrievalScore": 0.71,
     "rerankerScore": 0.84, "sourceId": "src-1", "sourceName": "Q1-2026.pdf",
     "knowledgeBaseId": "kb-1", "kbName": "Finance docs", "indexingStrategy": "chunk_embed",
     "meta": {"page": 3}, "includedInContext": True},
    {"id": "c-2", "text": "Q4 outlook", "retrievalScore": 0.55, "includedInContext": False},
]  # fmt: skip


@pytest.fixture
def backend() -> Iterator[AgentBackend]:
    async def answer(body: dict[str, Any]) -> Response:
        if body["messages"][-1]["content"] == "fail please":
            return JSONResponse({"error": "overloaded"}, status_code=500)
        return await echo_chat(body)

    with AgentBackend(answer) as server:
        yield server


@pytest.fixture
def settings(tmp_path: Any, backend: AgentBackend, compiled: bool) -> Settings:
    return Settings(data_dir=tmp_path, agents=agent_configs(backend), compiled_execution=compiled)


class Requests:
    """The requests a client sent: (method, path)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def __call__(self, request: httpx.Request) -> None:
        self.sent.append((request.method, request.url.path))


@pytest.fixture
def requests() -> Requests:
    return Requests()


@pytest.fixture
async def api(app: Any, requests: Requests) -> AsyncIterator[AsyncClient]:
    http = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), event_hooks={"request": [requests]}
    )
    async with http, AsyncClient(BASE_URL, http_client=http) as client:
        yield client


async def insert_sessions(
    storage: Storage,
    n: int,
    *,
    messages: list[dict[str, Any]] = (),  # type: ignore[assignment]
    runs: list[dict[str, Any]] = (),  # type: ignore[assignment]
) -> list[str]:
    """``n`` sessions (with these messages and runs) stored as storage lays them out,
    one second apart; their ids, newest first."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = []
    for i in range(n):
        fields = {
            "id": f"s-{i:05d}", "user_id": "alice", "agent_id": "finance_agent", "title": None,
            "metadata": {}, "created_at": start, "updated_at": start + timedelta(seconds=i),
        }  # fmt: skip
        if messages or runs:
            assert await storage.sessions.import_session(fields, list(messages), list(runs))
        else:
            head, _ = build_session(fields, [], [], DEFAULT_BOUNDS)
            await storage.sessions.heads.insert_one(head)
        ids.append(fields["id"])
    return ids[::-1]


async def test_sessions_iterate_every_page_of_the_servers_maximum_size(
    api: AsyncClient, storage: Storage, requests: Requests
) -> None:
    ids = await insert_sessions(storage, 250)
    sessions = [s async for s in api.sessions()]
    assert [s.id for s in sessions] == ids  # newest updated_at first, none twice
    assert requests.sent == [("POST", "/graphql")] * 3  # 100 + 100 + 50
    assert all(isinstance(s, Session) for s in sessions)
    assert sessions[0].updated_at == datetime(2026, 1, 1, 0, 4, 9, tzinfo=UTC)
    assert sessions[0].updated_at.tzinfo is UTC


async def test_session_filters_are_the_apis(api: AsyncClient, storage: Storage) -> None:
    await insert_sessions(storage, 30)
    await storage.client[storage.database][SESSIONS].update_many(
        {"_id": {"$in": ["s-00001", "s-00002"]}}, {"$set": {"user_id": "bob", "agent_id": "x"}}
    )
    assert [s.id async for s in api.sessions(user_id="bob")] == ["s-00002", "s-00001"]
    assert [s.id async for s in api.sessions(agent_id="x", user_id="alice")] == []
    start = datetime(2026, 1, 1, tzinfo=UTC)
    window = api.sessions(
        updated_after=start + timedelta(seconds=10), updated_before="2026-01-01T00:00:13Z"
    )
    assert [s.id async for s in window] == ["s-00012", "s-00011"]  # both bounds exclusive
    frame = await api.sessions(user_id="bob").to_pandas()
    assert list(frame["session_id"]) == ["s-00002", "s-00001"]
    with pytest.raises(ValueError, match="aware"):
        api.sessions(updated_after=datetime(2026, 1, 1))


async def test_messages_runs_and_context_are_typed_with_the_apis_names(
    api: AsyncClient, gql: GraphQLClient
) -> None:
    await record(
        gql, sessionId="s1", runId="r1",
        messages=[
            {"role": "USER", "content": "What is our Q1 revenue?"},
            {"role": "ASSISTANT", "content": None,
             "toolCalls": [{"id": "call-1", "name": "lookup", "arguments": '{"q": 1}'}]},
            {"role": "TOOL", "content": "4.2", "toolCallId": "call-1", "name": "lookup"},
            {"role": "ASSISTANT", "content": "Your Q1 revenue was $4.2 million."},
        ],
        reasoning={"effort": "high", "budgetTokens": 512},
        usage={"inputTokens": 10, "outputTokens": 5, "reasoningTokens": 2, "totalTokens": 17},
        retrievedContext=CHUNKS, retrievalDiagnostics={"latency_ms": 12},
    )  # fmt: skip
    await record(gql, sessionId="s1", runId="r2")

    messages = await api.messages("s1")
    assert all(isinstance(m, Message) for m in messages)
    roles = ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert [m.role for m in messages] == roles
    assert {m.session_id for m in messages} == {"s1"}
    call = messages[1].tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("call-1", "lookup", '{"q": 1}')
    assert (messages[2].tool_call_id, messages[2].name) == ("call-1", "lookup")
    assert [c.id for c in messages[3].retrieved_context] == ["c-1", "c-2"]
    assert messages[0].retrieved_context == [] and messages[2].retrieved_context == []
    assert messages[5].retrieved_context == []  # r2 retrieved nothing

    runs = await api.runs("s1")
    assert [r.id for r in runs] == ["r1", "r2"]
    first = runs[0]
    assert isinstance(first, Run)
    assert first.session_id == "s1" and first.status == "COMPLETED"
    assert first.input == "What is our Q1 revenue?"
    assert first.content == "Your Q1 revenue was $4.2 million."
    assert first.reasoning is not None and first.reasoning.budget_tokens == 512
    assert first.usage is not None and first.usage.total_tokens == 17
    assert first.retrieval_diagnostics == {"latency_ms": 12}
    assert first.retrieved_context is None  # not asked for
    with_context = await api.runs("s1", retrieved_context=True)
    assert with_context[0].retrieved_context == [
        RetrievedChunk(
            id="c-1", text="Q1 revenue: $4.2M", score=0.84, retrieval_score=0.71,
            reranker_score=0.84, source_id="src-1", source_name="Q1-2026.pdf",
            knowledge_base_id="kb-1", kb_name="Finance docs", indexing_strategy="chunk_embed",
            meta={"page": 3}, included_in_context=True,
        ),
        RetrievedChunk(id="c-2", text="Q4 outlook", retrieval_score=0.55, meta={},
                       included_in_context=False),
    ]  # fmt: skip
    assert with_context[1].retrieved_context == []

    context = await api.retrieved_context("s1", "r1")
    assert (context.session_id, context.run_id) == ("s1", "r1")
    assert context.retrieval_diagnostics == {"latency_ms": 12}
    assert context.chunks == with_context[0].retrieved_context
    frame = context.to_pandas()
    assert list(frame["chunk_id"]) == ["c-1", "c-2"] and list(frame["rank"]) == [0, 1]

    session = await api.session("s1")
    assert (session.message_count, session.run_count) == (6, 2)


async def test_conversation_pages_past_the_servers_maximum(
    api: AsyncClient, storage: Storage, requests: Requests
) -> None:
    t = datetime(2026, 2, 1, tzinfo=UTC)
    runs = [
        {"id": f"r{n}", "agent_id": "a", "status": "COMPLETED", "input": f"q{n}",
         "content": f"a{n}", "error": None, "reasoning": None, "usage": None, "created_at": t,
         "started_at": t, "completed_at": t, "retrieval_diagnostics": None,
         "retrieved_context": [{"id": f"c{n}", "text": "t", "score": 0.5}]}
        for n in range(1001)
    ]  # fmt: skip
    messages = [
        {"id": f"m{n}-{k}", "role": role, "content": f"{role} {n}", "run_id": f"r{n}",
         "created_at": t}
        for n in range(1001) for k, role in enumerate(("user", "assistant"))
    ]  # fmt: skip
    await insert_sessions(storage, 1, runs=runs, messages=messages)
    requests.sent.clear()
    conversation = await api.conversation("s-00000")
    assert len(requests.sent) == 4  # the conversation, 2 more pages of messages, 1 of runs
    assert [m.id for m in conversation.messages] == [m["id"] for m in messages]
    assert [r.id for r in conversation.runs] == [f"r{n}" for n in range(1001)]
    last_answer = conversation.messages[-1]
    assert last_answer.role == "assistant"
    assert [c.id for c in last_answer.retrieved_context] == ["c1000"]  # its run's chunks
    assert conversation.messages[-2].retrieved_context == []
    assert conversation.runs[-1].retrieved_context is not None
    assert conversation.session.run_count == 1001


async def test_load_gives_four_frames_to_join(api: AsyncClient, gql: GraphQLClient) -> None:
    await record(gql, sessionId="s1", runId="r1", retrievedContext=CHUNKS,
                 usage={"inputTokens": 10, "totalTokens": 15})  # fmt: skip
    await record(gql, sessionId="s2", runId="r2", userId="bob")
    dataset = await api.load(user_id="local")
    assert [c.session.id for c in dataset] == ["s1"]
    frames = dataset.to_pandas()
    assert list(frames.sessions["session_id"]) == ["s1"]
    assert list(frames.messages["role"]) == ["user", "assistant"]
    assert list(frames.runs["usage_total_tokens"]) == [15]
    joined = frames.chunks.merge(frames.runs, on=["session_id", "run_id"])
    assert list(joined["chunk_id"]) == ["c-1", "c-2"]
    everyone = await api.load()
    assert sorted(c.session.id for c in everyone) == ["s1", "s2"]


async def test_errors_carry_status_code_and_message(api: AsyncClient, gql: GraphQLClient) -> None:
    await record(gql, sessionId="s1", runId="r1")
    cases = [
        (api.session("missing"), 404, "NOT_FOUND", "session not found"),
        (api.messages("missing"), 404, "NOT_FOUND", "session not found"),
        (api.runs("missing"), 404, "NOT_FOUND", "session not found"),
        (api.retrieved_context("s1", "nope"), 404, "NOT_FOUND", "run not found in this session"),
        (api.retrieved_context("missing", "r1"), 404, "NOT_FOUND", "session not found"),
        (api.delete("missing"), 404, "NOT_FOUND", "session not found"),
        (api.run_agent("nobody", "hi"), 404, "NOT_FOUND", "unknown agent 'nobody'"),
        (api.run_agent("finance_agent", " "), 400, "BAD_USER_INPUT", "message must be a"),
    ]
    for call, status, code, message in cases:
        with pytest.raises(AgentSessionsError) as caught:
            await call
        error = caught.value
        assert (error.status, error.code) == (status, code), error
        assert error.message.startswith(message), error
        assert str(error) == f"{status} {code}: {error.message}"


async def test_run_agent_returns_the_stored_run_and_names_a_failed_one(
    api: AsyncClient, backend: AgentBackend
) -> None:
    run = await api.run_agent("finance_agent", "What is our Q1 revenue?",
                              reasoning={"effort": "low", "budget_tokens": 64})  # fmt: skip
    assert run.status == "COMPLETED"
    assert run.content == "answer to: What is our Q1 revenue? (2 messages)"
    assert run.reasoning is not None and run.reasoning.budget_tokens == 64
    assert run.usage is not None and run.usage.total_tokens == 15
    assert backend.received[-1]["reasoning_effort"] == "low"
    again = await api.run_agent("finance_agent", "And Q2?", session_id=run.session_id)
    assert again.session_id == run.session_id
    assert again.content == "answer to: And Q2? (4 messages)"  # the history was replayed

    with pytest.raises(AgentSessionsError) as caught:
        await api.run_agent("finance_agent", "fail please", session_id=run.session_id)
    error = caught.value
    assert (error.status, error.code, error.session_id) == (502, "AGENT_ERROR", run.session_id)
    assert error.run_id is not None
    failed = [r for r in await api.runs(run.session_id) if r.id == error.run_id]
    assert [r.status for r in failed] == ["FAILED"]


async def test_delete_removes_the_session(api: AsyncClient, gql: GraphQLClient) -> None:
    await record(gql, sessionId="s1", runId="r1")
    await api.delete("s1")
    with pytest.raises(AgentSessionsError) as caught:
        await api.session("s1")
    assert caught.value.status == 404
