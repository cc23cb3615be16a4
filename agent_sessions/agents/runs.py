"""Agent runs: ``startRun`` (and the streaming ``POST /api/agents/{agentId}/runs``),
``runAgent`` (the same, waiting for the end), ``cancelRun`` and following a run's events.

A run is stored RUNNING (with the user's message) before the backend is called, so the
message is never lost; from then on the run is a task of this process (``agents.live``)
that ends it COMPLETED, FAILED or CANCELLED whatever happens to the request that started
it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from agent_sessions.agents.events import RunEvent
from agent_sessions.agents.live import LiveRun, ServerStopping
from agent_sessions.errors import (
    AgentFailed,
    BadInput,
    DatabaseUnavailable,
    NotFound,
    ShuttingDown,
)
from agent_sessions.resolvers.context import Context
from agent_sessions.resolvers.validation import client_id, name, non_blank
from agent_sessions.storage.sessions import (
    StorageFailed,
    message_document,
    new_id,
    now,
    run_document,
)

MAX_MESSAGE_CHARS = 1_000_000


def _check_message(message: Any) -> str:
    if not isinstance(message, str) or not non_blank(message):
        raise BadInput("message must be a non-empty string")
    if len(message) > MAX_MESSAGE_CHARS:
        raise BadInput(f"message is longer than {MAX_MESSAGE_CHARS} characters")
    return message


def _live(ctx: Context) -> Any:
    if ctx.runs is None:
        raise NotFound("this server runs no agents")
    return ctx.runs


async def start_run(
    ctx: Context,
    *,
    agent_id: str,
    message: Any,
    session_id: str | None,
    reasoning: dict[str, Any] | None,
    user_id: str | None,
) -> tuple[str, LiveRun]:
    """Store a RUNNING run of ``agent_id`` on ``message`` and start it; returns the session
    id and the run in progress (its ``start`` event already sent)."""
    agent = ctx.agents.get(agent_id) if ctx.agents is not None else None
    if agent is None:
        raise NotFound(f"unknown agent {agent_id!r}")
    message = _check_message(message)
    caller = ctx.caller
    user = caller.acting_for(name(user_id, "userId"))
    owner = caller.owner if user_id is None else user
    session_id = client_id(session_id, "sessionId") or new_id()
    run_id = new_id()
    started = now()
    user_message = message_document(role="user", content=message, run_id=run_id, created_at=started)
    run = run_document(
        run_id=run_id,
        agent_id=agent_id,
        status="RUNNING",
        created_at=started,
        reasoning=reasoning,
    )
    try:
        live = await _live(ctx).start(
            session_id=session_id,
            owner=owner,
            new_session={"user_id": user, "agent_id": agent_id, "title": None, "metadata": {}},
            run=run,
            user_message=user_message,
            agent=agent,
        )
    except ServerStopping:
        raise ShuttingDown() from None
    return session_id, live


async def run_agent(ctx: Context, **start: Any) -> tuple[str, dict[str, Any]]:
    """Start a run and wait for its end; returns (session id, finished run). A FAILED run
    raises ``AgentFailed`` carrying the ids. A client that goes away meanwhile does not
    stop the run."""
    session_id, live = await start_run(ctx, **start)
    assert live.task is not None
    await asyncio.shield(live.task)
    run = live.result
    if run is None or run["status"] == "RUNNING":
        raise DatabaseUnavailable()  # its end could not be stored; its lease will end it
    if run["status"] == "FAILED":
        raise AgentFailed(run.get("error") or "failed", run_id=run["id"], session_id=session_id)
    return session_id, run


async def visible_run(ctx: Context, session_id: str, run_id: str) -> dict[str, Any]:
    """The caller's run, whole; ``NotFound`` when the session or the run is not theirs."""
    [run] = await ctx.storage.sessions.get_runs([(session_id, run_id)], None, owner=ctx.owner)
    if run is None:
        raise NotFound("run not found")
    return run


async def cancel_run(ctx: Context, session_id: str, run_id: str) -> dict[str, Any]:
    """Cancel the caller's run from any server process; the run as it is afterwards. A
    finished run is returned unchanged."""
    run = await visible_run(ctx, session_id, run_id)
    try:
        return await _live(ctx).cancel(session_id, run)
    except (DatabaseUnavailable, StorageFailed) as exc:
        raise DatabaseUnavailable() from exc


async def run_events(
    ctx: Context, session_id: str, run_id: str, after: int = 0
) -> AsyncIterator[RunEvent]:
    """The caller's run's events after ``after``, then as they happen, to the last."""
    await visible_run(ctx, session_id, run_id)
    async for event in _live(ctx).follow(session_id, run_id, after):
        if event is not None:  # no keep-alives asked for
            yield event
