"""The events of a streamed run (``POST /api/agents/{agentId}/runs`` as server-sent events).

Each SSE message is ``event: <name>``, ``id: <n>`` and one JSON ``data:`` line with
snake_case keys. ``start`` comes first; ``end`` (success or cancel) or ``error`` (failure)
last. ``event_id`` is the SSE ``id``, for resuming.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .models import RetrievedChunk, RunStatus, TokenUsage, UtcDatetime


class _Event(BaseModel):
    # Keys the client does not know yet stay readable as attributes (extra="allow").
    model_config = ConfigDict(frozen=True, extra="allow")
    event_id: str | None = None


class StartEvent(_Event):
    event: Literal["start"] = "start"
    run_id: str
    session_id: str
    agent_id: str | None = None
    created_at: UtcDatetime


class RetrievalEvent(_Event):
    """The chunks the run retrieved (in rank order) and its diagnostics."""

    event: Literal["retrieval"] = "retrieval"
    retrieved_context: list[RetrievedChunk] = Field(default_factory=list)
    retrieval_diagnostics: dict[str, Any] | None = None


class DeltaEvent(_Event):
    """A piece of the answer; the answer is the concatenation of every delta, in order."""

    event: Literal["delta"] = "delta"
    content: str


class ToolCallEvent(_Event):
    event: Literal["tool_call"] = "tool_call"
    id: str | None = None
    name: str | None = None
    arguments: str | None = None


class ToolResultEvent(_Event):
    event: Literal["tool_result"] = "tool_result"
    tool_call_id: str | None = None
    name: str | None = None
    content: str | None = None


class EndEvent(_Event):
    event: Literal["end"] = "end"
    run_id: str
    session_id: str
    status: RunStatus
    content: str | None = None
    usage: TokenUsage | None = None


class ErrorEvent(_Event):
    """The run failed (it is stored FAILED with this error)."""

    event: Literal["error"] = "error"
    error: str
    run_id: str | None = None
    session_id: str | None = None


class UnknownEvent(_Event):
    """An event this client does not know, passed on as it came."""

    event: str
    data: Any = None


RunEvent = Annotated[
    StartEvent
    | RetrievalEvent
    | DeltaEvent
    | ToolCallEvent
    | ToolResultEvent
    | EndEvent
    | ErrorEvent,
    Field(discriminator="event"),
]
KNOWN = frozenset({"start", "retrieval", "delta", "tool_call", "tool_result", "end", "error"})
_ADAPTER: TypeAdapter[Any] = TypeAdapter(RunEvent)


class EventError(ValueError):
    """An event whose data is not what its name promises."""


def parse_event(name: str, data: str, event_id: str | None) -> RunEvent | UnknownEvent:
    """One SSE message as a typed event."""
    import orjson

    try:
        payload = orjson.loads(data) if data else {}
    except orjson.JSONDecodeError:
        raise EventError(f"event {name!r}: data is not JSON: {data[:200]!r}") from None
    if name not in KNOWN:
        return UnknownEvent(event=name or "message", data=payload, event_id=event_id)
    if not isinstance(payload, dict):
        raise EventError(f"event {name!r}: data is not a JSON object")
    try:
        return _ADAPTER.validate_python({**payload, "event": name, "event_id": event_id})
    except ValidationError as exc:
        raise EventError(f"event {name!r}: {exc.errors()[0]['msg']}") from None
