"""Upgrading a database written by an earlier agent-sessions to this layout.

The first layout kept a session in one document with no ``v`` field. A marker document
(``agent_sessions_meta``, ``{_id: "layout", version}``) says which layout a database
is in, so a start-up costs one read once the upgrade is done. ``agent-sessions migrate``
runs it with a progress bar; ``serve`` runs it before it answers requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from pymongo.errors import DuplicateKeyError

from . import layout as L
from .build import upgrade

if TYPE_CHECKING:
    from pymongo.asynchronous.client_session import AsyncClientSession

    from . import Storage

log = logging.getLogger("agent_sessions.storage")

OLD = {"v": {"$exists": False}}


async def layout_version(storage: Storage) -> int | None:
    """The layout the database is marked with (``None``: no mark yet)."""
    marker = await storage.db[L.META].find_one({"_id": "layout"})
    return None if marker is None else int(marker["version"])


async def pending(storage: Storage) -> int:
    """How many sessions are still in an earlier layout."""
    return await storage.db[L.SESSIONS].count_documents(OLD)


async def migrate(storage: Storage, progress: Callable[[int, int], None] | None = None) -> int:
    """Upgrade every session of an earlier layout, then mark the database; the number
    upgraded. Each session is replaced only if it is still as it was read (a writer of
    the old version running meanwhile makes it be read again), together with its pages
    in one transaction."""
    heads = storage.db[L.SESSIONS]
    store = storage.sessions
    total = await pending(storage)
    done = 0
    if progress is not None:
        progress(done, total)
    while True:
        batch = await heads.find(OLD, limit=100).to_list()
        if not batch:
            break
        for doc in batch:
            head, pages = upgrade(doc, store.bounds, paged=store.moves)
            guard = {
                "_id": doc["_id"],
                "v": {"$exists": False},
                "message_count": doc.get("message_count"),
                "run_count": doc.get("run_count"),
            }

            async def write(
                s: AsyncClientSession, head: L.Doc = head, pages: list = pages, guard: L.Doc = guard
            ) -> None:
                replaced = await heads.replace_one(guard, head, session=s)
                if replaced.matched_count and pages:
                    try:
                        await store.pages.insert_many(pages, session=s)
                    except DuplicateKeyError:  # pages of a session deleted by an old writer
                        await store.pages.delete_many({"session_id": head["_id"]}, session=s)
                        await store.pages.insert_many(pages, session=s)

            if pages:
                await store._transaction(write)
            else:
                await heads.replace_one(guard, head)
            done += 1
            if progress is not None:
                progress(done, total)
    await storage.db[L.META].replace_one(
        {"_id": "layout"}, {"_id": "layout", "version": L.LAYOUT_VERSION}, upsert=True
    )
    if done:
        log.info("upgraded %d session(s) to layout %d", done, L.LAYOUT_VERSION)
    return done


async def ensure_layout(storage: Storage) -> None:
    """At start-up: nothing when the database is marked current; else upgrade it."""
    if await layout_version(storage) == L.LAYOUT_VERSION:
        return
    waiting = await pending(storage)
    if waiting:
        log.warning(
            "%d session(s) were written by an earlier version; upgrading them now "
            "(agent-sessions migrate does the same with a progress bar)",
            waiting,
        )
    await migrate(storage)
