"""The state of runs in progress that is not part of a session: their events (so a client
of any server process can replay and follow a run) and their leases (which server runs
them, until when, and whether someone asked to cancel).

``run_events``: one document per flush of a run, ``{_id: "<run id>:<first seq>", run_id,
session_id, first, last, events: [{seq, event, data}], at}``; kept ``EVENTS_TTL_S`` (a TTL
index on ``at``), after which a finished run's events are rebuilt from the stored run.

``run_leases``: one document per run in progress, ``{_id: <run id>, session_id, user_id,
server, expires_at, cancel}``. The server running the run renews ``expires_at``; a lease
that has expired belongs to a server that stopped, and any server may then end the run.
Joining polls these collections (no change streams: a standalone MongoDB has none).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from .sessions import translated

RUN_EVENTS = "run_events"
RUN_LEASES = "run_leases"
EVENTS_TTL_S = 24 * 3600

Indexes = list[tuple[list[tuple[str, int]], dict[str, Any]]]
RUN_EVENT_INDEXES: Indexes = [
    ([("run_id", ASCENDING), ("last", ASCENDING)], {"name": "run_last"}),
    ([("session_id", ASCENDING)], {"name": "session"}),
    ([("at", ASCENDING)], {"name": "ttl", "expireAfterSeconds": EVENTS_TTL_S}),
]
# None: the collection holds only the runs in progress, so a scan is cheap, and every index
# would cost the write that stands between storing a run and its start event.
RUN_LEASE_INDEXES: Indexes = []


@dataclass(frozen=True, slots=True)
class StoredEvent:
    seq: int
    event: str
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Lease:
    run_id: str
    session_id: str
    user_id: str
    server: str
    expires_at: datetime
    cancel: bool

    @classmethod
    def from_doc(cls, d: dict[str, Any]) -> Lease:
        return cls(
            run_id=d["_id"],
            session_id=d["session_id"],
            user_id=d["user_id"],
            server=d["server"],
            expires_at=d["expires_at"],
            cancel=bool(d.get("cancel")),
        )


@translated
class LiveStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.events = db[RUN_EVENTS]
        self.leases = db[RUN_LEASES]

    # --- events -------------------------------------------------------------------------

    async def append_events(
        self, *, run_id: str, session_id: str, events: Sequence[StoredEvent], at: datetime
    ) -> None:
        """Store a run's next events (consecutive seqs) as one document. Storing the same
        first seq twice keeps the first copy (a retried flush, or a reaper that raced)."""
        if not events:
            return
        doc = {
            "_id": f"{run_id}:{events[0].seq}",
            "run_id": run_id,
            "session_id": session_id,
            "first": events[0].seq,
            "last": events[-1].seq,
            "events": [{"seq": e.seq, "event": e.event, "data": e.data} for e in events],
            "at": at,
        }
        with contextlib.suppress(DuplicateKeyError):
            await self.events.insert_one(doc)

    async def events_after(self, run_id: str, session_id: str, after: int) -> list[StoredEvent]:
        """The run's stored events with a seq above ``after``, in order."""
        cursor = self.events.find(
            {"run_id": run_id, "session_id": session_id, "last": {"$gt": after}},
            {"events": 1},
            sort=[("first", ASCENDING)],
        )
        out: list[StoredEvent] = []
        async for doc in cursor:
            for e in doc["events"]:
                if e["seq"] > after and (not out or e["seq"] > out[-1].seq):
                    out.append(StoredEvent(e["seq"], e["event"], e["data"]))
        return out

    async def last_seq(self, run_id: str) -> int:
        doc = await self.events.find_one({"run_id": run_id}, {"last": 1}, sort=[("last", -1)])
        return doc["last"] if doc else 0

    # --- leases -------------------------------------------------------------------------

    async def take_lease(
        self, *, run_id: str, session_id: str, user_id: str, server: str, until: datetime
    ) -> None:
        await self.leases.insert_one(
            {
                "_id": run_id,
                "session_id": session_id,
                "user_id": user_id,
                "server": server,
                "expires_at": until,
                "cancel": False,
            }
        )

    async def renew_lease(self, run_id: str, server: str, until: datetime) -> Lease | None:
        """Extend this server's lease; ``None`` when it is no longer this server's."""
        doc = await self.leases.find_one_and_update(
            {"_id": run_id, "server": server},
            {"$set": {"expires_at": until}},
            return_document=ReturnDocument.AFTER,
        )
        return Lease.from_doc(doc) if doc else None

    async def get_lease(self, run_id: str) -> Lease | None:
        doc = await self.leases.find_one({"_id": run_id})
        return Lease.from_doc(doc) if doc else None

    async def request_cancel(self, run_id: str) -> bool:
        """Ask the server running ``run_id`` to cancel it; false when no server runs it."""
        result = await self.leases.update_one({"_id": run_id}, {"$set": {"cancel": True}})
        return result.matched_count == 1

    async def release_lease(self, run_id: str, server: str) -> None:
        await self.leases.delete_one({"_id": run_id, "server": server})

    async def expired_leases(self, now: datetime, limit: int = 100) -> list[Lease]:
        cursor = self.leases.find({"expires_at": {"$lt": now}}, limit=limit)
        return [Lease.from_doc(d) async for d in cursor]

    async def claim_lease(
        self, run_id: str, server: str, now: datetime, until: datetime
    ) -> Lease | None:
        """Take over an expired lease (to end its run); ``None`` when it is not expired
        (its server renewed it) or another server claimed it first."""
        doc = await self.leases.find_one_and_update(
            {"_id": run_id, "expires_at": {"$lt": now}},
            {"$set": {"server": server, "expires_at": until}},
            return_document=ReturnDocument.AFTER,
        )
        return Lease.from_doc(doc) if doc else None

    async def leased_run_ids(self, run_ids: Sequence[str]) -> set[str]:
        cursor = self.leases.find({"_id": {"$in": list(run_ids)}}, {"_id": 1})
        return {d["_id"] async for d in cursor}

    # --- sessions -----------------------------------------------------------------------

    async def forget_session(self, session_id: str) -> None:
        """Drop a deleted session's run events and leases: they hold its messages' text."""
        await self.events.delete_many({"session_id": session_id})
        await self.leases.delete_many({"session_id": session_id})

    async def forget_run(self, session_id: str, run_id: str) -> None:
        """Drop a deleted run's events and lease: they hold its messages' text."""
        # By run id alone, as events are keyed (one more field would cost SecantusDB its
        # index); a lease of that id is only ever this session's.
        await self.events.delete_many({"run_id": run_id})
        await self.leases.delete_many({"_id": run_id, "session_id": session_id})
