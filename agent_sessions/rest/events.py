"""Run events as server-sent events: the streaming ``POST /api/agents/{agentId}/runs``,
``GET /api/sessions/{id}/runs/{run_id}/events`` (join) and ``POST .../cancel``.

Each event is ``id: <seq>``, ``event: <name>``, ``data: <JSON>``; a comment line goes out
every ``KEEPALIVE_S`` while nothing happens, so proxies keep the connection open. A
client that goes away stops only its own stream, never the run.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from agent_sessions.agents.events import RunEvent
from agent_sessions.agents.live import LiveRuns
from agent_sessions.errors import DatabaseUnavailable
from agent_sessions.storage import StorageFailed

log = logging.getLogger("agent_sessions.rest")

KEEPALIVE_S = 15.0
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

RUN_STATUS = """
query RunStatus($id: ID!, $runId: ID!) { session(id: $id) { run(id: $runId) { id status } } }"""

START_RUN = """
mutation StartRun(
  $agentId: String!, $message: String!, $sessionId: ID, $reasoning: ReasoningInput, $userId: String
) {
  startRun(
    agentId: $agentId, message: $message, sessionId: $sessionId,
    reasoning: $reasoning, userId: $userId
  ) { id sessionId }
}"""

CANCEL_RUN = """
mutation CancelRun($id: ID!, $runId: ID!) {
  cancelRun(sessionId: $id, runId: $runId) {
    id sessionId agentId status content createdAt completedAt error
    reasoning { enabled effort budgetTokens }
    usage { inputTokens outputTokens reasoningTokens totalTokens }
  }
}"""


def wants_stream(request: Request, stream_flag: bool | None) -> bool:
    """``Accept: text/event-stream`` or ``"stream": true``, unless the body says false."""
    if stream_flag is not None:
        return stream_flag
    return "text/event-stream" in request.headers.get("accept", "").lower()


def last_event_id(raw: str | None) -> int | None:
    """The ``Last-Event-ID`` a reconnecting client sends: a seq, ``None`` if malformed."""
    if raw is None or not raw.strip():
        return 0
    raw = raw.strip()
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None


def sse(event: RunEvent) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (
        event.seq,
        event.name.encode(),
        orjson.dumps(event.data),
    )


async def _body(events: AsyncIterator[RunEvent | None]) -> AsyncIterator[bytes]:
    try:
        async for event in events:
            yield b": keep-alive\n\n" if event is None else sse(event)
    except (DatabaseUnavailable, StorageFailed) as exc:
        # The client reconnects with Last-Event-ID, as SSE clients do.
        log.warning("run events could not be read: %s", exc)


def event_stream(runs: LiveRuns, session_id: str, run_id: str, after: int = 0) -> Response:
    """The run's events after ``after`` as they happen, a comment line every
    ``KEEPALIVE_S`` while nothing does."""
    events = runs.follow(session_id, run_id, after, KEEPALIVE_S)
    return StreamingResponse(_body(events), media_type="text/event-stream", headers=SSE_HEADERS)


def context_of(request: Request) -> Any:
    """The request's context, made by the first operation the request ran."""
    return request.scope["context"]
