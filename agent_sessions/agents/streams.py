"""The wire formats of agent backends' answers, turned into ``BackendEvent``s.

- ``openai``: a ``text/event-stream`` of chat-completion chunks ending with ``[DONE]``
  (asked for with ``stream: true`` and ``stream_options.include_usage``), or one JSON
  chat completion from a server that does not stream.
- ``http`` agents: NDJSON (``application/x-ndjson``, one ``{"event", "data"}`` object a
  line) or SSE (``event:`` + JSON ``data:``) of the run's own events (``retrieval``,
  ``delta``, ``tool_call``, ``tool_result``, then ``end`` or ``error``), or one JSON
  ``AgentReply`` as before streaming existed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from httpx_sse import EventSource
from pydantic import BaseModel, ValidationError

from .answers import (
    AgentBackendError,
    AgentReply,
    BackendEvent,
    Delta,
    Finished,
    ReplyChunk,
    ReplyMessage,
    ReplyToolCall,
    ReplyUsage,
    Retrieved,
    ToolAnswered,
    ToolCalled,
)


def _media_type(response: httpx.Response) -> str:
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


def _exact(text: str | bytes) -> Any:
    """JSON that may be stored (an agent's answer): the standard parser keeps integers
    beyond 64 bits as they are, so the checks before storing refuse them, where orjson
    would turn them into floats silently. Chat-completion chunks (text) take orjson."""
    return json.loads(text)


async def _json_body(response: httpx.Response) -> Any:
    body = await response.aread()
    try:
        return _exact(body)
    except ValueError:
        raise AgentBackendError("the agent backend's answer is not JSON") from None


def _malformed(exc: ValidationError, where: str) -> AgentBackendError:
    first = exc.errors()[0]
    loc = ".".join(map(str, first["loc"]))
    at = f"{where}.{loc}" if where and loc else where or loc or "answer"
    return AgentBackendError(f"the agent backend's answer is malformed at {at}: {first['msg']}")


def _usage(usage: Any) -> ReplyUsage | None:
    """OpenAI's usage object in our words."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("completion_tokens_details") or {}
    return ReplyUsage(
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        reasoning_tokens=details.get("reasoning_tokens") if isinstance(details, dict) else None,
        total_tokens=usage.get("total_tokens"),
    )


def reply_events(reply: AgentReply) -> list[BackendEvent]:
    """A whole answer as the events a stream of it would have been."""
    events: list[BackendEvent] = []
    if reply.retrieved_context or reply.retrieval_diagnostics is not None:
        events.append(Retrieved(reply.retrieved_context or [], reply.retrieval_diagnostics))
    for m in reply.messages or ():
        for call in m.tool_calls or ():
            events.append(ToolCalled(call))
        if m.role == "tool" and m.tool_call_id is not None:
            events.append(ToolAnswered(m.tool_call_id, m.name, m.content))
    if reply.content:
        events.append(Delta(reply.content))
    events.append(Finished(usage=reply.usage, reply=reply))
    return events


# --- openai -----------------------------------------------------------------------------


def _completion(answer: Any) -> AgentReply:
    try:
        message = answer["choices"][0]["message"]
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise TypeError
        calls = [
            ReplyToolCall(
                id=c["id"], name=c["function"]["name"], arguments=c["function"].get("arguments")
            )
            for c in message.get("tool_calls") or ()
        ]
        usage = _usage(answer.get("usage"))
    except (KeyError, IndexError, TypeError, AttributeError, ValidationError):
        raise AgentBackendError("the agent backend's answer is not a chat completion") from None
    reply = ReplyMessage(role="assistant", content=content, tool_calls=calls or None)
    return AgentReply(content=content, messages=[reply], usage=usage)


class _CallParts:
    """A tool call arriving in pieces (``choices[0].delta.tool_calls[i]``)."""

    def __init__(self) -> None:
        self.id = ""
        self.name = ""
        self.arguments: list[str] = []

    def add(self, part: dict[str, Any]) -> None:
        self.id = part.get("id") or self.id
        function = part.get("function") or {}
        self.name = function.get("name") or self.name
        if function.get("arguments"):
            self.arguments.append(function["arguments"])

    def call(self) -> ReplyToolCall:
        return ReplyToolCall(id=self.id, name=self.name, arguments="".join(self.arguments))


async def openai(response: httpx.Response) -> AsyncIterator[BackendEvent]:
    """Chat-completion chunks to events; one JSON completion when the server does not stream."""
    if _media_type(response) != "text/event-stream":
        for event in reply_events(_completion(await _json_body(response))):
            yield event
        return
    calls: dict[int, _CallParts] = {}
    usage = None
    finished = False
    async for sse in EventSource(response).aiter_sse():
        if sse.data.strip() == "[DONE]":
            finished = True
            break
        try:
            chunk = orjson.loads(sse.data)
            if not isinstance(chunk, dict):
                raise TypeError
            if "error" in chunk:
                error = chunk["error"]
                message = error.get("message") if isinstance(error, dict) else error
                raise AgentBackendError(f"the agent backend reported an error: {message}")
            if chunk.get("usage") is not None:
                usage = _usage(chunk["usage"])
            for choice in chunk.get("choices") or ():
                if choice.get("index", 0) != 0:
                    continue  # n > 1 is not asked for; only the first choice is the answer
                delta = choice.get("delta") or {}
                content = delta.get("content")
                if content:
                    if not isinstance(content, str):
                        raise TypeError
                    yield Delta(content)
                for part in delta.get("tool_calls") or ():
                    calls.setdefault(part.get("index", 0), _CallParts()).add(part)
                if choice.get("finish_reason"):
                    finished = True
        except (orjson.JSONDecodeError, TypeError, AttributeError, ValidationError):
            raise AgentBackendError(
                "the agent backend's stream is not chat-completion chunks"
            ) from None
    if not finished:
        raise AgentBackendError("the agent backend's stream ended before the answer did")
    try:
        for _, parts in sorted(calls.items()):
            yield ToolCalled(parts.call())
    except ValidationError as exc:
        raise _malformed(exc, "tool_calls") from None
    yield Finished(usage=usage)


# --- http agents ------------------------------------------------------------------------


class _RetrievalEvent(BaseModel):
    retrieved_context: list[ReplyChunk] | None = None
    retrieval_diagnostics: dict[str, Any] | None = None


class _DeltaEvent(BaseModel):
    content: str


class _ToolResultEvent(BaseModel):
    tool_call_id: str
    name: str | None = None
    content: str | None = None


class _EndEvent(BaseModel):
    usage: ReplyUsage | None = None


class _ErrorEvent(BaseModel):
    error: str


def _agent_event(name: str, data: Any, where: str) -> BackendEvent | None:
    """One event of an http agent's stream; ``None`` for names this server does not use."""
    try:
        if name == "delta":
            return Delta(_DeltaEvent.model_validate(data).content)
        if name == "retrieval":
            r = _RetrievalEvent.model_validate(data)
            return Retrieved(r.retrieved_context or [], r.retrieval_diagnostics)
        if name == "tool_call":
            return ToolCalled(ReplyToolCall.model_validate(data))
        if name == "tool_result":
            t = _ToolResultEvent.model_validate(data)
            return ToolAnswered(t.tool_call_id, t.name, t.content)
        if name == "end":
            return Finished(usage=_EndEvent.model_validate(data or {}).usage)
        if name == "error":
            message = _ErrorEvent.model_validate(data).error
            raise AgentBackendError(f"the agent reported an error: {message[:500]}")
    except ValidationError as exc:
        raise _malformed(exc, where) from None
    return None


async def _ndjson(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    n = 0
    async for line in response.aiter_lines():
        n += 1
        if not line.strip():
            continue
        try:
            item = _exact(line)
        except ValueError:
            raise AgentBackendError(f"the agent backend's stream line {n} is not JSON") from None
        if not isinstance(item, dict) or not isinstance(item.get("event"), str):
            raise AgentBackendError(
                f'the agent backend\'s stream line {n} is not {{"event": ..., "data": ...}}'
            )
        yield item["event"], item.get("data")


async def _sse(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    async for sse in EventSource(response).aiter_sse():
        try:
            data = _exact(sse.data) if sse.data else None
        except ValueError:
            raise AgentBackendError(f"the agent backend's {sse.event} event is not JSON") from None
        yield sse.event, data


async def http_agent(response: httpx.Response) -> AsyncIterator[BackendEvent]:
    """An http agent's events; one ``AgentReply`` when it answers with plain JSON."""
    media_type = _media_type(response)
    if media_type in ("application/x-ndjson", "application/jsonl", "application/json-seq"):
        lines = _ndjson(response)
    elif media_type == "text/event-stream":
        lines = _sse(response)
    else:
        answer = await _json_body(response)
        try:
            reply = AgentReply.model_validate(answer)
        except ValidationError as exc:
            raise _malformed(exc, "") from None
        for event in reply_events(reply):
            yield event
        return
    async for name, data in lines:
        event = _agent_event(name, data, name)
        if event is None:
            continue
        yield event
        if isinstance(event, Finished):
            return
    raise AgentBackendError("the agent backend's stream ended before its end event")
