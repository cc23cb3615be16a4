"""Real agent backends for the tests: small HTTP servers on loopback that record what they
receive and answer as each test tells them to."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent_sessions.settings import AgentConfig

Answer = Callable[[dict[str, Any]], Awaitable[Response]]
SYSTEM_PROMPT = "You answer finance questions."


def chat_completion(
    content: str | None, *, tool_calls: list[dict] | None = None, usage: dict | None = None
) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body: dict[str, Any] = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


async def echo_chat(body: dict[str, Any]) -> Response:
    """An OpenAI-compatible answer naming the last user message and how much it was sent."""
    last = body["messages"][-1]["content"]
    return JSONResponse(
        chat_completion(
            f"answer to: {last} ({len(body['messages'])} messages)",
            usage={
                "prompt_tokens": 10,
                "completion_tokens": 5,
                "total_tokens": 15,
                "completion_tokens_details": {"reasoning_tokens": 2},
            },
        )
    )


class AgentBackend:
    """One server with two endpoints: ``/v1/chat/completions`` (OpenAI-compatible) and
    ``/run`` (an ``http`` agent). ``answer`` decides the reply; ``received`` keeps every
    request body in arrival order."""

    def __init__(self, answer: Answer = echo_chat) -> None:
        self.answer = answer
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []

        async def handle(request: Request) -> Response:
            body = await request.json()
            self.received.append(body)
            self.headers.append(dict(request.headers))
            return await self.answer(body)

        app = Starlette(
            routes=[
                Route("/v1/chat/completions", handle, methods=["POST"]),
                Route("/run", handle, methods=["POST"]),
            ]
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
            )
        )
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> AgentBackend:
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


async def slow(seconds: float) -> Response:
    await asyncio.sleep(seconds)
    return JSONResponse(chat_completion("too late"))


def agent_configs(backend: AgentBackend) -> dict[str, AgentConfig]:
    """The SPEC's two example agents, pointed at ``backend``."""
    return {
        "finance_agent": AgentConfig(
            backend="openai",
            base_url=f"{backend.url}/v1",
            model="some-model",
            system_prompt=SYSTEM_PROMPT,
            timeout_s=2,
        ),
        "rag_agent": AgentConfig(backend="http", url=f"{backend.url}/run", timeout_s=2),
    }
