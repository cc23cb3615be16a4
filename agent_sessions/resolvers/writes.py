"""What each mutation does: inputs checked, ownership applied, one storage write."""

from __future__ import annotations

from typing import Any, get_origin

from agent_sessions.errors import BadInput, Forbidden
from agent_sessions.storage.model import RunRecord, SessionRecord
from agent_sessions.storage.sessions import message_document, new_id, now, run_document

from .context import Context
from .fields import CHUNK, camel
from .validation import client_id, json_object, name

Doc = dict[str, Any]


def _context(info: Any) -> Context:
    return info.context


def reasoning_doc(r: Any | None) -> Doc | None:
    if r is None:
        return None
    if r.budget_tokens is not None and r.budget_tokens < 0:
        raise BadInput(f"reasoning.budgetTokens must be 0 or more (got {r.budget_tokens})")
    enabled = True if r.enabled is None else r.enabled
    return {"enabled": enabled, "effort": r.effort, "budget_tokens": r.budget_tokens}


def usage_doc(u: Any | None) -> Doc | None:
    if u is None:
        return None
    doc = {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "total_tokens": u.total_tokens,
    }
    for key, value in doc.items():
        if value is not None and value < 0:
            field = key.split("_")[0] + "Tokens"  # the input's camelCase name
            raise BadInput(f"usage.{field} must be 0 or more (got {value})")
    return doc


def chunk_doc(c: Any, n: int) -> Doc:
    """A chunk input as its record: the input's attributes are the record's keys
    (``storage.model.ChunkRecord``), JSON objects checked, defaults for left-out values."""
    where = f"retrievedContext[{n}]"
    name(c.id, f"{where}.id")
    doc = {}
    for f in CHUNK:
        value = getattr(c, f.key)
        if value is not None and (f.type is dict or get_origin(f.type) is dict):
            value = json_object(value, f"{where}.{camel(f.key)}")
        doc[f.key] = f.about.default if value is None else value
    doc["meta"] = doc["meta"] or {}  # stored as an object, empty when none was given
    return doc


def message_docs(messages: list[Any], run_id: str, created_at: Any) -> list[Doc]:
    docs = []
    for i, m in enumerate(messages):
        calls = None
        if m.tool_calls:
            calls = [
                {
                    "id": name(c.id, f"messages[{i}].toolCalls[{j}].id"),
                    "name": name(c.name, f"messages[{i}].toolCalls[{j}].name"),
                    "arguments": c.arguments,
                }
                for j, c in enumerate(m.tool_calls)
            ]
        docs.append(
            message_document(
                role=m.role.value,
                content=m.content,
                run_id=run_id,
                created_at=m.created_at or created_at,
                name=m.name,
                tool_calls=calls,
                tool_call_id=name(m.tool_call_id, f"messages[{i}].toolCallId"),
            )
        )
    return docs


async def create_session(info: Any, data: Any) -> SessionRecord:
    ctx = _context(info)
    user_id = ctx.caller.acting_for(name(data.user_id, "userId"))
    return await ctx.storage.sessions.create_session(
        session_id=client_id(data.id, "id"),
        user_id=user_id,
        agent_id=name(data.agent_id, "agentId"),
        title=data.title,
        metadata=json_object(data.metadata, "metadata"),
        expires_at=data.expires_at,
    )


async def record_run(info: Any, data: Any) -> tuple[str, RunRecord]:
    """Store a finished (or imported) run with its messages and context; idempotent on runId."""
    ctx = _context(info)
    caller = ctx.caller
    user_id = caller.acting_for(name(data.user_id, "userId"))
    session_id = client_id(data.session_id, "sessionId") or new_id()
    given_run_id = client_id(data.run_id, "runId")
    run_id = given_run_id or new_id()
    agent_id = name(data.agent_id, "agentId")
    created_at = data.created_at or now()
    messages = message_docs(data.messages, run_id, created_at)
    run = run_document(
        run_id=run_id,
        agent_id=agent_id,
        status=data.status.value if data.status is not None else "COMPLETED",
        created_at=created_at,
        completed_at=data.completed_at,
        content=data.content,
        error=data.error,
        reasoning=reasoning_doc(data.reasoning),
        usage=usage_doc(data.usage),
        retrieval_diagnostics=json_object(data.retrieval_diagnostics, "retrievalDiagnostics"),
        retrieved_context=[chunk_doc(c, n) for n, c in enumerate(data.retrieved_context or ())],
    )
    # An administrator naming a user writes only into that user's sessions; one acting
    # as themselves may append to anyone's (the agent runtime's service key does).
    owner = caller.owner if data.user_id is None else user_id
    stored, _ = await ctx.storage.sessions.record_run(
        session_id=session_id,
        owner=owner,
        new_session={"user_id": user_id, "agent_id": agent_id, "title": None, "metadata": {}},
        run=run,
        messages=messages,
        fresh_id=given_run_id is None,
    )
    return session_id, stored


async def delete_session(info: Any, session_id: str) -> bool:
    ctx = _context(info)
    deleted = await ctx.storage.sessions.delete_session(session_id, owner=ctx.owner)
    if deleted:  # its runs' events hold its messages' text too
        await ctx.storage.live.forget_session(session_id)
    return deleted


async def create_api_key(info: Any, user_id: str, admin: bool) -> tuple[str, str]:
    """A new key for ``user_id`` (administrators only); the clear key is returned once."""
    ctx = _context(info)
    if not ctx.caller.is_admin:
        raise Forbidden("only administrators may create API keys")
    checked = name(user_id, "userId")
    assert checked is not None  # the argument is non-null in the schema
    record, key = await ctx.storage.keys.create(checked, admin=admin)
    return record.id, key


async def revoke_api_key(info: Any, key_id: str) -> bool:
    """Revoke a key: any key for administrators, one's own keys for users."""
    ctx = _context(info)
    return await ctx.storage.keys.revoke(key_id, owner=ctx.owner)
