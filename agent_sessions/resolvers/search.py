"""Searching messages: the query and filter checked, the caller's scope, offset cursors."""

from __future__ import annotations

import base64
from typing import Any

from agent_sessions.errors import BadInput

from .context import Context

SEARCH_DEFAULT, SEARCH_MAX = 20, 100
OFFSET_MAX = 10_000  # as deep as a ranked list is worth paging


def search_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"search:{offset}".encode()).decode()


def decode_search_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        kind, _, n = base64.urlsafe_b64decode(cursor.encode()).decode().partition(":")
        offset = int(n)
    except (ValueError, UnicodeDecodeError):
        offset, kind = -1, ""
    if kind != "search" or not 0 <= offset <= OFFSET_MAX:
        raise BadInput(f"after must be a cursor this search gave out (got {cursor!r})")
    return offset


async def search(
    ctx: Context, query: str, filt: Any, first: int | None, after: str | None, newest: bool
) -> tuple[list[dict[str, Any]], bool, int]:
    """Hits, whether there are more, and the offset of the first."""
    from .reads import session_filter

    first = SEARCH_DEFAULT if first is None else first
    if not 0 <= first <= SEARCH_MAX:
        raise BadInput(f"first must be between 0 and {SEARCH_MAX}, got {first}")
    offset = decode_search_cursor(after)
    sf = session_filter(filt)
    if sf.metadata or sf.updated_after or sf.updated_before:
        raise BadInput("search filters by userId and agentId only")
    hits, more = await ctx.storage.sessions.search_messages(
        query, sf, owner=ctx.owner, first=first, offset=offset, newest=newest
    )
    return hits, more, offset
