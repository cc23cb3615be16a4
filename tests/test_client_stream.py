"""Streamed runs: both clients read server-sent events, typed, as they arrive.

The server here is a small real SSE server on loopback that speaks issue 12's event
stream (``start``, ``retrieval``, ``tool_call``, ``tool_result``, ``delta``…, ``end`` or
``error``); the end-to-end test against the app comes with the app's streaming runs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from agent_sessions import AgentSessionsError, AsyncClient, Client
from agent_sessions.client import (
    DeltaEvent,
    EndEvent,
    ErrorEvent,
    RetrievalEvent,
    StartEvent,
    ToolCallEvent,
    ToolResultEvent,
    UnknownEvent,
)

CHUNK = {
    "id": "c-1", "text": "Q1 revenue: $4.2M", "score": 0.84, "retrieval_score": 0.71,
    "reranker_score": 0.84, "source_id": "src-1", "source_name": "Q1-2026.pdf",
    "knowledge_base_id": "kb-1", "kb_name": "Finance docs", "indexing_strategy": "chunk_embed",
    "meta": {}, "included_in_context": True,
}  # fmt: skip
IDS = {"run_id": "r1", "session_id": "s1"}
COMPLETED = [
    ("start", IDS | {"agent_id": "finance_agent", "created_at": "2026-05-06T10:00:00Z"}),
    ("retrieval", {"retrieved_context": [CHUNK], "retrieval_diagnostics": {"latency_ms": 12}}),
    ("tool_call", {"id": "call-1", "name": "lookup", "arguments": '{"q": 1}'}),
    ("tool_result", {"tool_call_id": "call-1", "name": "lookup", "content": "4.2"}),
    ("delta", {"content": "Your Q1 revenue "}),
    ("heartbeat", {"n": 1}),
    ("delta", {"content": "was $4.2 million."}),
    ("end", IDS | {"status": "COMPLETED", "content": "Your Q1 revenue was $4.2 million.",
                   "usage": {"input_tokens": 10, "output_tokens": 7, "reasoning_tokens": None,
                             "total_tokens": 17}}),
]  # fmt: skip
FAILED = [
    COMPLETED[0],
    ("delta", {"content": "Your"}),
    ("error", IDS | {"error": "the agent backend answered 500"}),
]


class StreamServer:
    """``POST /api/agents/{agent}/runs`` answering a script of events per agent, with the
    last ones held back until ``release`` is set, so a test sees events before the run ends.
    ``requests`` keeps (headers, body) of each request."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.held_back: list[bool] = []  # per stream: whether `release` came while holding
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, status: int, body: Any, content_type: str = "application/json"):
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_DELETE(self) -> None:
                self._json(502, b"<html>Bad Gateway</html>", "text/html")

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((dict(self.headers), body))
                if self.path == "/graphql":
                    return self._json(200, {"data": {"session": {"id": 1}}})
                agent = self.path.split("/")[3]
                if agent == "nobody":
                    return self._json(404, {"error": "unknown agent 'nobody'"})
                if agent == "plain":
                    return self._json(201, {"runId": "r1"})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.send_header("Connection", "close")
                self.end_headers()
                if agent == "garbled":
                    self.wfile.write(b"event: start\ndata: {not json\n\n")
                    return
                script = FAILED if agent == "failing" else COMPLETED
                self.wfile.write(b": a comment line, ignored\n\n")
                for n, (name, data) in enumerate(script, start=1):
                    if n == 2:
                        self.wfile.flush()
                        # The client must have seen `start` before the rest is sent.
                        server.held_back.append(server.release.wait(5))
                    self.wfile.write(
                        f"id: {n}\nevent: {name}\ndata: {json.dumps(data)}\n\n".encode()
                    )
                self.wfile.flush()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> StreamServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[StreamServer]:
    with StreamServer() as s:
        yield s


def check_completed(events: list[Any]) -> None:
    assert [type(e) for e in events] == [
        StartEvent, RetrievalEvent, ToolCallEvent, ToolResultEvent, DeltaEvent, UnknownEvent,
        DeltaEvent, EndEvent,
    ]  # fmt: skip
    start, retrieval, call, result, *_, end = events
    assert (start.run_id, start.session_id, start.agent_id) == ("r1", "s1", "finance_agent")
    assert start.created_at.isoformat() == "2026-05-06T10:00:00+00:00"
    assert [e.event_id for e in events] == [str(n) for n in range(1, 9)]
    assert retrieval.retrieved_context[0].reranker_score == 0.84
    assert retrieval.retrieval_diagnostics == {"latency_ms": 12}
    assert (call.id, call.name, call.arguments) == ("call-1", "lookup", '{"q": 1}')
    assert (result.tool_call_id, result.content) == ("call-1", "4.2")
    assert events[5].event == "heartbeat" and events[5].data == {"n": 1}
    answer = "".join(e.content for e in events if isinstance(e, DeltaEvent))
    assert answer == end.content == "Your Q1 revenue was $4.2 million."
    assert end.status == "COMPLETED" and end.usage is not None and end.usage.total_tokens == 17


def test_stream_run_yields_typed_events_as_they_arrive(server: StreamServer) -> None:
    with Client(server.url, api_key="k-1") as client:
        events = []
        for event in client.stream_run(
            "finance_agent", "What is our Q1 revenue?", session_id="s1",
            reasoning={"effort": "low", "budget_tokens": 64},
        ):  # fmt: skip
            events.append(event)
            if len(events) == 1:
                assert isinstance(event, StartEvent)
                server.release.set()  # the rest is sent only now: `start` came first, alone
    check_completed(events)
    assert server.held_back == [True]  # `start` was read while the server held the rest
    headers, body = server.requests[0]
    assert headers["Accept"] == "text/event-stream"
    assert headers["Authorization"] == "Bearer k-1"
    assert body == {"message": "What is our Q1 revenue?", "sessionId": "s1",
                    "reasoning": {"effort": "low", "budgetTokens": 64}}  # fmt: skip


def test_run_agent_with_stream_is_the_same_stream(server: StreamServer) -> None:
    server.release.set()
    with Client(server.url) as client:
        check_completed(list(client.run_agent("finance_agent", "hi", stream=True)))
        failed = list(client.run_agent("failing", "hi", stream=True))
    assert [e.event for e in failed] == ["start", "delta", "error"]
    error = failed[-1]
    assert isinstance(error, ErrorEvent)
    assert (error.error, error.run_id, error.session_id) == (
        "the agent backend answered 500", "r1", "s1",
    )  # fmt: skip


async def test_the_async_client_streams_the_same_events(server: StreamServer) -> None:
    async with AsyncClient(server.url) as client:
        events = []
        async for event in client.stream_run("finance_agent", "hi"):
            events.append(event)
            server.release.set()
        check_completed(events)
        stream = await client.run_agent("failing", "hi", stream=True)
        assert [e.event async for e in stream] == ["start", "delta", "error"]
        with pytest.raises(AgentSessionsError) as caught:
            async for _ in client.stream_run("nobody", "hi"):
                pass
        assert (caught.value.status, caught.value.code) == (404, "NOT_FOUND")


def test_an_answer_that_is_not_a_stream_raises_before_any_event(server: StreamServer) -> None:
    server.release.set()
    with Client(server.url) as client:
        with pytest.raises(AgentSessionsError) as caught:
            next(client.stream_run("nobody", "hi"))
        assert (caught.value.status, caught.value.code) == (404, "NOT_FOUND")
        assert caught.value.message == "unknown agent 'nobody'"
        with pytest.raises(AgentSessionsError) as caught:
            next(client.stream_run("plain", "hi"))
        assert caught.value.code == "INVALID_RESPONSE"
        assert "text/event-stream" in caught.value.message
        with pytest.raises(AgentSessionsError) as caught:
            next(client.stream_run("garbled", "hi"))
        assert caught.value.code == "INVALID_RESPONSE"
        assert "not JSON" in caught.value.message


def test_an_answer_that_is_not_the_api_is_an_error_not_a_traceback(
    server: StreamServer,
) -> None:
    with Client(server.url) as client:
        with pytest.raises(AgentSessionsError) as caught:
            client.session("s1")  # a session without the fields a session has
        assert caught.value.code == "INVALID_RESPONSE"
        with pytest.raises(AgentSessionsError) as caught:
            client.delete("s1")  # a proxy's HTML error page
        assert (caught.value.status, caught.value.code) == (502, "HTTP_502")
        assert "Bad Gateway" in caught.value.message
