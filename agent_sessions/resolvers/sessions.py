"""Changing a session's own fields, and the metadata part of list filters."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from strawberry import UNSET

from agent_sessions.errors import BadInput
from agent_sessions.storage.layout import MAX_INDEXED_VALUE
from agent_sessions.storage.model import SessionRecord

from .context import Context
from .validation import is_client_id, json_object

MAX_FILTER_KEYS = 8
MAX_TITLE_CHARS = 256
METADATA_KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
METADATA_KEY_WORDS = "1-64 characters of A-Z a-z 0-9 _ -"


def metadata_filter(
    value: Any, where: str = "filter.metadata"
) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    """``{key: value}`` checked and as storage takes it: every key must match; a value is a
    string (at most 256 characters), a number or a boolean, matched as it is."""
    if value is None:
        return ()
    if not isinstance(value, dict) or not value:
        raise BadInput(f"{where} must be a JSON object with at least one key")
    if len(value) > MAX_FILTER_KEYS:
        raise BadInput(f"{where} may name at most {MAX_FILTER_KEYS} keys (got {len(value)})")
    out = []
    for key, item in value.items():
        if not METADATA_KEY.match(key):
            raise BadInput(f"{where} keys must be {METADATA_KEY_WORDS} (got {key!r})")
        values = tuple(item) if isinstance(item, list) else (item,)
        if not values:
            raise BadInput(f"{where}.{key} must be a value or a non-empty list of values")
        for v in values:
            if isinstance(v, str) and len(v) > MAX_INDEXED_VALUE:
                raise BadInput(f"{where}.{key} must be at most {MAX_INDEXED_VALUE} characters long")
            if not isinstance(v, str | int | float | bool):
                raise BadInput(
                    f"{where}.{key} must be a string, a number or a boolean (or a list of them)"
                )
        out.append((key, values))
    return tuple(out)


def _given(value: Any) -> bool:
    return value is not UNSET


async def update_session(
    ctx: Context,
    session_id: str,
    *,
    title: Any = UNSET,
    metadata: Any = UNSET,
    expires_at: Any = UNSET,
) -> SessionRecord | None:
    """Change a session's title, metadata or expiry (what is given; ``null`` clears it);
    ``None`` when it is missing or not the caller's."""
    if not is_client_id(session_id):
        return None
    changes: dict[str, Any] = {}
    if _given(title):
        if title is not None and not 1 <= len(title) <= MAX_TITLE_CHARS:
            raise BadInput(f"title must be 1-{MAX_TITLE_CHARS} characters (got {len(title)})")
        changes["title"] = title
    if _given(metadata):
        changes["metadata"] = json_object(metadata, "metadata") or {}
    if _given(expires_at):
        if expires_at is not None and not isinstance(expires_at, datetime):
            raise BadInput("expiresAt must be a date and time")
        changes["expires_at"] = expires_at
    if not changes:
        raise BadInput("give at least one of title, metadata, expiresAt")
    return await ctx.storage.sessions.update_session(session_id, changes, owner=ctx.owner)
