"""Deleting one run and forking a session: inputs checked, ownership applied."""

from __future__ import annotations

from agent_sessions.errors import BadInput, NotFound
from agent_sessions.storage.model import SessionRecord

from .context import Context
from .validation import is_client_id

MAX_TITLE_CHARS = 256


async def delete_run(ctx: Context, session_id: str, run_id: str) -> bool:
    """``False`` when the session is missing or not the caller's, or has no such run."""
    if not (is_client_id(session_id) and is_client_id(run_id)):
        return False
    try:
        deleted = await ctx.storage.sessions.delete_run(session_id, run_id, owner=ctx.owner)
    except NotFound:
        return False
    if deleted:  # its events hold its messages' text too
        await ctx.storage.live.forget_run(session_id, run_id)
    return deleted


async def fork_session(
    ctx: Context, session_id: str, message_id: str, title: str | None
) -> SessionRecord:
    """The new session; ``NotFound`` when the session is missing or not the caller's, or
    has no such message."""
    if title is not None and not 1 <= len(title) <= MAX_TITLE_CHARS:
        raise BadInput(f"title must be 1-{MAX_TITLE_CHARS} characters (got {len(title)})")
    if not (is_client_id(session_id) and is_client_id(message_id)):
        raise NotFound("session not found")
    fork = await ctx.storage.sessions.fork_session(
        session_id, message_id, owner=ctx.owner, title=title
    )
    if fork is None:
        raise NotFound("session not found")
    return fork
