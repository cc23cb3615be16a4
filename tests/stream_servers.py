"""Streaming agent backends for the live-run tests, served by ``agent_servers.AgentBackend``:
an OpenAI-compatible server that streams chunks (at a pace, holding at a gate, dropping
the connection, hanging), a trickling one, and an http agent that streams NDJSON."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response, StreamingResponse

USAGE = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}


def chunk(content: str | None = None, **delta: Any) -> str:
    if content is not None:
        delta["content"] = content
    body = {"id": "chatcmpl-s", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}  # fmt: skip
    return f"data: {json.dumps(body)}\n\n"


def finish_chunk(reason: str = "stop") -> str:
    body = {"id": "chatcmpl-s", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]}  # fmt: skip
    return f"data: {json.dumps(body)}\n\n"


def usage_chunk(usage: dict[str, int] = USAGE) -> str:
    return f"data: {json.dumps({'id': 'chatcmpl-s', 'choices': [], 'usage': usage})}\n\n"


async def _wait(gate: threading.Event) -> None:
    # The test's thread sets the gate; polling keeps this cancellable when the client leaves.
    while not gate.is_set():  # noqa: ASYNC110
        await asyncio.sleep(0.01)


@dataclass
class Stream:
    """How an OpenAI-compatible stream goes: ``tokens`` every ``delay`` seconds; it waits
    for ``gate`` before token ``hold_at``; it breaks the connection before token
    ``drop_at``; ``hang`` waits forever after the tokens. ``sent`` counts what went out,
    ``closed_early`` says whether the client went away before the end."""

    tokens: list[str]
    delay: float = 0.0
    hold_at: int | None = None
    gate: threading.Event = field(default_factory=threading.Event)
    drop_at: int | None = None
    hang: bool = False
    tool_calls: list[dict[str, Any]] | None = None
    sent: int = 0
    started: threading.Event = field(default_factory=threading.Event)
    closed_early: threading.Event = field(default_factory=threading.Event)

    async def chunks(self) -> AsyncIterator[str]:
        self.started.set()
        finished = False
        try:
            for i, token in enumerate(self.tokens):
                if i == self.hold_at:
                    await _wait(self.gate)
                if i == self.drop_at:
                    raise ConnectionAbortedError("the backend drops the connection")
                yield chunk(token)
                self.sent += 1
                if self.delay:
                    await asyncio.sleep(self.delay)
            if self.hang:
                await asyncio.sleep(3600)
            for n, call in enumerate(self.tool_calls or ()):
                # A tool call in two pieces, as OpenAI sends them.
                args = call["arguments"]
                yield chunk(tool_calls=[{"index": n, "id": call["id"], "type": "function",
                                         "function": {"name": call["name"],
                                                      "arguments": args[: len(args) // 2]}}])  # fmt: skip
                yield chunk(tool_calls=[{"index": n, "function":
                                         {"arguments": args[len(args) // 2 :]}}])  # fmt: skip
            yield finish_chunk("tool_calls" if self.tool_calls else "stop")
            yield usage_chunk()
            yield "data: [DONE]\n\n"
            finished = True
        finally:
            if not finished:
                self.closed_early.set()

    async def __call__(self, body: dict[str, Any]) -> Response:
        return StreamingResponse(self.chunks(), media_type="text/event-stream")


def trickle(byte_every_s: float, total_s: float) -> Any:
    """A JSON answer that never completes in time: one byte every ``byte_every_s``."""

    async def answer(body: dict[str, Any]) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            yield b'{"choices": [{"message": {"role": "assistant", "content": "'
            for _ in range(int(total_s / byte_every_s)):
                await asyncio.sleep(byte_every_s)
                yield b"x"
            yield b'"}}]}'

        return StreamingResponse(gen(), media_type="application/json")

    return answer


def ndjson_agent(events: list[tuple[str, Any]], delay: float = 0.0) -> Any:
    """An http agent that streams ``events`` as NDJSON lines."""

    async def answer(body: dict[str, Any]) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            for name, data in events:
                yield json.dumps({"event": name, "data": data}).encode() + b"\n"
                if delay:
                    await asyncio.sleep(delay)

        return StreamingResponse(gen(), media_type="application/x-ndjson")

    return answer
