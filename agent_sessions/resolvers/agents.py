"""``runAgent`` (and ``POST /api/agents/{agentId}/runs`` through it): store the user's
message as a RUNNING run, replay the session's history to the agent, store the answer.

The run is written before the backend is called, so the user's message is never lost;
the finishing write runs to the end even if the client goes away meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agent_sessions.agents import AgentBackendError, AgentReply, AgentTurn
from agent_sessions.errors import (
    AgentFailed,
    BadInput,
    DatabaseUnavailable,
    NotFound,
    SessionTooLarge,
    TooLarge,
)
from agent_sessions.storage.model import MessageSpec
from agent_sessions.storage.sessions import (
    StorageFailed,
    message_document,
    new_id,
    now,
    run_document,
)

from .context import Context
from .validation import check_json_keys, client_id, name, non_blank

log = logging.getLogger("agent_sessions.agents")

MAX_MESSAGE_CHARS = 1_000_000
HISTORY_FIELDS = frozenset({"id", "role", "content", "name", "tool_calls", "tool_call_id"})


def openai_message(m: dict[str, Any]) -> dict[str, Any]:
    """A stored message in OpenAI's chat format."""
    out: dict[str, Any] = {"role": m["role"], "content": m.get("content")}
    if m["role"] == "assistant" and m.get("tool_calls"):
        out["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c.get("arguments")},
            }
            for c in m["tool_calls"]
        ]
    if m["role"] == "tool":
        out["tool_call_id"] = m.get("tool_call_id")
        if m.get("name") is not None:
            out["name"] = m["name"]
    return out


def _check_message(message: Any) -> str:
    if not isinstance(message, str) or not non_blank(message):
        raise BadInput("message must be a non-empty string")
    if len(message) > MAX_MESSAGE_CHARS:
        raise BadInput(f"message is longer than {MAX_MESSAGE_CHARS} characters")
    return message


async def run_agent(
    ctx: Context,
    *,
    agent_id: str,
    message: Any,
    session_id: str | None,
    reasoning: dict[str, Any] | None,
    user_id: str | None,
) -> tuple[str, dict[str, Any]]:
    """Run ``agent_id`` on ``message`` in a session; returns (session id, finished run)."""
    runner = ctx.agents
    agent = runner.get(agent_id) if runner is not None else None
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
    sessions = ctx.storage.sessions
    await sessions.record_run(
        session_id=session_id,
        owner=owner,
        new_session={"user_id": user, "agent_id": agent_id, "title": None, "metadata": {}},
        run=run,
        messages=[user_message],
        fresh_id=True,
    )
    run["input"] = message
    # From here on the run exists; finish it even if the request is cancelled.
    finish = asyncio.ensure_future(_finish(ctx, agent_id, session_id, run, user_message, owner))
    return session_id, await asyncio.shield(finish)


async def _finish(
    ctx: Context,
    agent_id: str,
    session_id: str,
    run: dict[str, Any],
    user_message: dict[str, Any],
    owner: str | None,
) -> dict[str, Any]:
    """Ask the agent and store its answer; on any failure store the run as FAILED (the
    user's message stays) and raise ``AgentFailed`` carrying the ids."""
    sessions = ctx.storage.sessions
    try:
        reply = await _ask(ctx, agent_id, session_id, run, user_message, owner)
        changes, messages = _completed(reply, run["id"])
        await sessions.update_run(
            session_id=session_id, run_id=run["id"], owner=owner, changes=changes, messages=messages
        )
    except Exception as exc:
        error = _failure(exc)
        log.warning(
            "run %s of agent %s failed: %s",
            run["id"],
            agent_id,
            error,
            exc_info=not isinstance(exc, AgentBackendError),
        )
        changes = {"status": "FAILED", "error": error, "completed_at": now()}
        try:
            await sessions.update_run(
                session_id=session_id, run_id=run["id"], owner=owner, changes=changes
            )
        except (DatabaseUnavailable, StorageFailed):
            # The database itself is gone: the run stays RUNNING until it is back; say so.
            raise DatabaseUnavailable() from exc
        raise AgentFailed(error, run_id=run["id"], session_id=session_id) from None
    return run | changes


async def _ask(
    ctx: Context, agent_id: str, session_id: str, run: dict[str, Any], user_message: dict[str, Any],
    owner: str | None,
) -> AgentReply:  # fmt: skip
    """The replayed history, sent to the agent with the new message."""
    [page] = await ctx.storage.sessions.page_messages(
        [(session_id, MessageSpec(fields=HISTORY_FIELDS))], owner=owner
    )
    history = []
    for _, m in page.items if page else ():
        if m.get("id") == user_message["id"]:
            break  # messages after ours belong to runs that started later
        history.append(openai_message(m))
    turn = AgentTurn(
        session_id=session_id,
        run_id=run["id"],
        agent_id=agent_id,
        message=user_message["content"],
        history=history,
        reasoning=run["reasoning"],
    )
    assert ctx.agents is not None
    agent = ctx.agents.get(agent_id)
    assert agent is not None
    return await ctx.agents.ask(agent, turn)


def _failure(exc: Exception) -> str:
    """What the stored run says about a failure: the backend's own words, or what kind of
    failure it was (never a stack trace)."""
    if isinstance(exc, AgentBackendError | ValueError):
        return str(exc)
    if isinstance(exc, SessionTooLarge | TooLarge):
        return f"the answer is too large: {exc.message}"
    if isinstance(exc, DatabaseUnavailable | StorageFailed):
        return "the answer could not be stored"
    return f"the answer could not be stored ({type(exc).__name__})"


def _completed(reply: AgentReply, run_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The run's final fields and the messages it adds, from the agent's reply."""
    t = now()
    messages = []
    for m in reply.messages or ():
        calls = [c.model_dump() for c in m.tool_calls] if m.tool_calls else None
        messages.append(
            message_document(
                role=m.role,
                content=m.content,
                run_id=run_id,
                created_at=t,
                name=m.name,
                tool_calls=calls,
                tool_call_id=m.tool_call_id,
            )
        )
    if not messages or messages[-1]["role"] != "assistant":
        messages.append(
            message_document(role="assistant", content=reply.content, run_id=run_id, created_at=t)
        )
    chunks = [c.model_dump() for c in reply.retrieved_context or ()]
    for c in chunks:
        check_json_keys(c["meta"], "retrieved_context.meta")
    if reply.retrieval_diagnostics is not None:
        check_json_keys(reply.retrieval_diagnostics, "retrieval_diagnostics")
    changes = {
        "status": "COMPLETED",
        "content": reply.content,
        "completed_at": t,
        "usage": reply.usage.model_dump() if reply.usage else None,
        "retrieved_context": chunks,
        "retrieval_diagnostics": reply.retrieval_diagnostics,
    }
    return changes, messages
