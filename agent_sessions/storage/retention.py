"""Retention: expired sessions are deleted soon after they expire.

Reads leave a session out from its ``expires_at`` on (``sessions._live``); this sweep then
deletes it with its pages, its runs' events and its search entries. A sweep, not a TTL
index, on every database: SecantusDB has TTL indexes (its monitor removed an expired
document within a minute when measured), but a TTL index deletes one document, and a
session is a head, its pages, its run events and its search entries, which must go
together. Every server process sweeps; deletes are idempotent, so two sweeping at once
only repeat each other's work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pymongo.errors import PyMongoError

from agent_sessions.errors import DatabaseUnavailable

from .sessions import SessionStore, StorageFailed, now

log = logging.getLogger("agent_sessions.storage")

BATCH = 500  # sessions deleted per round of a sweep


async def sweep(store: SessionStore, forget: Callable[[str], Awaitable[None]] | None = None) -> int:
    """Delete every session that has expired (with ``forget`` called for each, to drop
    what is kept about it elsewhere); how many were deleted."""
    deleted = 0
    while True:
        # The expiry index answers this: only expired sessions are read.
        cursor = store.heads.find({"expires_at": {"$lte": now()}}, {"_id": 1}, limit=BATCH)
        ids = [d["_id"] async for d in cursor]
        for session_id in ids:
            if await store.delete_session(session_id, owner=None):
                deleted += 1
            if forget is not None:
                await forget(session_id)
        if len(ids) < BATCH:
            return deleted


async def sweep_forever(
    store: SessionStore, every_s: float, forget: Callable[[str], Awaitable[None]] | None = None
) -> None:
    """Sweep every ``every_s`` seconds until cancelled; a database that does not answer
    is tried again next time."""
    while True:
        try:
            deleted = await sweep(store, forget)
            if deleted:
                log.info("deleted %d expired session(s)", deleted)
        except (DatabaseUnavailable, StorageFailed, PyMongoError) as exc:
            log.warning("the retention sweep failed, trying again in %.0f s: %s", every_s, exc)
        await asyncio.sleep(every_s)
