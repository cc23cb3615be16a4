"""A live run's words in the search index while it streams, through uvicorn on loopback:
the question once the run has started, the answer as it is stored (each progress flush)
and once it completes, and a cancelled or failed run's messages as they were left."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from .agent_servers import AgentBackend
from .helpers import LiveServer, live_settings
from .stream_servers import Stream
from .test_live_runs import FAST, TOKENS, configs, stream_run, until

SEARCH = "query($q: String!) { search(query: $q) { nodes { sessionId runId role snippet } } }"


@pytest.fixture
def backend() -> Iterator[AgentBackend]:
    with AgentBackend() as server:
        yield server


@pytest.fixture
async def http(mongo_uri: str, tmp_path: Any, backend: AgentBackend) -> Any:
    settings = live_settings(mongo_uri, tmp_path, agents=configs(backend), **FAST)
    with LiveServer(settings) as live:
        async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
            yield client


async def found(http: httpx.AsyncClient, q: str) -> list[tuple[str, str]]:
    answer = await http.post("/graphql", json={"query": SEARCH, "variables": {"q": q}})
    return [(h["role"], h["runId"]) for h in answer.json()["data"]["search"]["nodes"]]


async def test_the_question_and_the_answer_are_found_while_the_run_streams(
    http: httpx.AsyncClient, backend: AgentBackend
) -> None:
    stream = Stream(TOKENS, hold_at=3)  # "Your Q1 revenue ", then it waits
    backend.answer = stream
    path = "/api/agents/finance_agent/runs"
    async with aconnect_sse(http, "POST", path, json={"message": "Quarterly figures?"}) as source:
        events = source.aiter_sse()
        start = (await anext(events)).json()
        run_id = start["run_id"]
        assert await found(http, "quarterly") == [("USER", run_id)]  # once the run started

        async def partial_found() -> Any:
            return await found(http, "revenue")  # stored by a progress flush, then indexed

        assert await until(partial_found) == [("ASSISTANT", run_id)]
        assert await found(http, "million") == []  # not streamed yet
        stream.gate.set()
        assert [e async for e in events][-1].event == "end"
    assert await found(http, "million") == [("ASSISTANT", run_id)]
    assert await found(http, '"your q1 revenue was"') == [("ASSISTANT", run_id)]


async def test_a_cancelled_run_is_found_as_it_was_left(
    http: httpx.AsyncClient, backend: AgentBackend
) -> None:
    backend.answer = Stream(["Partial ", "answer"], hang=True)
    path = "/api/agents/finance_agent/runs"
    async with aconnect_sse(http, "POST", path, json={"message": "Long one"}) as source:
        events = source.aiter_sse()
        start = (await anext(events)).json()
        await anext(events), await anext(events)  # both deltas
        cancel = f"/api/sessions/{start['session_id']}/runs/{start['run_id']}/cancel"
        assert (await http.post(cancel)).json()["status"] == "CANCELLED"
        assert [e.event async for e in events] == ["end"]
    assert await found(http, '"partial answer"') == [("ASSISTANT", start["run_id"])]


async def test_a_failed_run_is_found_as_it_was_left(
    http: httpx.AsyncClient, backend: AgentBackend
) -> None:
    backend.answer = Stream(TOKENS, drop_at=2)
    events = await stream_run(http, message="Dropped question")
    error = events[-1].json()
    messages = (await http.get(f"/api/sessions/{error['session_id']}/messages")).json()
    assert await found(http, "dropped") == [("USER", error["run_id"])]
    for m in messages:  # whatever of the answer was stored is found too
        if m["role"] == "assistant" and m["content"]:
            assert ("ASSISTANT", error["run_id"]) in await found(http, m["content"].split()[0])
