"""Storage: the only package that knows MongoDB. See ``layout`` for the document.

Every write is journaled (``j: true``): acknowledged means on disk. While the driver
knows the database is down, ``Storage.require_available`` fails within a short ping, so
requests answer 503 at once instead of after the driver's server-selection timeout.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pymongo
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from pymongo.monitoring import CommandListener, TopologyDescriptionChangedEvent, TopologyListener

from agent_sessions.errors import DatabaseUnavailable

from .embedded import EmbeddedServer, EmbeddedServerError, start_embedded
from .keys import ApiKeyStore, KeyRecord
from .layout import (
    API_KEY_INDEXES,
    API_KEYS,
    DEFAULT_BOUNDS,
    PAGE_INDEXES,
    PAGES,
    SESSION_INDEXES,
    SESSIONS,
    Bounds,
)
from .live import RUN_EVENT_INDEXES, RUN_EVENTS, RUN_LEASE_INDEXES, RUN_LEASES, LiveStore
from .migrate import ensure_layout
from .sessions import SessionStore, StorageFailed

log = logging.getLogger("agent_sessions.storage")

__all__ = [
    "ApiKeyStore",
    "EmbeddedServer",
    "EmbeddedServerError",
    "KeyRecord",
    "LiveStore",
    "SessionStore",
    "Storage",
    "StorageFailed",
]


AVAILABILITY_PING_S = 0.5


class Availability(TopologyListener):
    """Logs when the database stops and starts answering, as the driver's monitor sees it
    (its events arrive up to a second late; ``require_available`` does not wait for them)."""

    def __init__(self) -> None:
        self.available = True

    def opened(self, event: object) -> None:
        pass

    def closed(self, event: object) -> None:
        pass

    def description_changed(self, event: TopologyDescriptionChangedEvent) -> None:
        new = event.new_description
        if new.has_writable_server():
            if not self.available:
                log.warning("the database answers again")
            self.available = True
        elif event.previous_description.has_writable_server() and any(
            server.error is not None for server in new.server_descriptions().values()
        ):  # lost to an error; closing the client leaves no servers and no error
            log.error("the database does not answer; requests get 503 until it is back")
            self.available = False


@dataclass
class Storage:
    client: AsyncMongoClient
    database: str
    embedded: EmbeddedServer | None = None
    availability: Availability = field(default_factory=Availability)
    bounds: Bounds = DEFAULT_BOUNDS
    # Heads move older turns into pages in transactions: a replica set (a single-node one
    # is fine), a sharded cluster, Atlas, or the embedded database. Set by ``connect``.
    transactions: bool = True
    sessions: SessionStore = field(init=False)
    keys: ApiKeyStore = field(init=False)
    live: LiveStore = field(init=False)

    def __post_init__(self) -> None:
        self.db = self.client[self.database]
        self.sessions = SessionStore(self.db, bounds=self.bounds, moves=self.transactions)
        self.keys = ApiKeyStore(self.db[API_KEYS])
        self.live = LiveStore(self.db)

    @classmethod
    async def open(
        cls,
        *,
        mongodb_uri: str | None,
        database: str,
        data_dir: Path,
        secantusd: str | None = None,
        listeners: Sequence[CommandListener] = (),
        join: bool = True,
        upgrade: bool = True,
    ) -> Storage:
        """Connect to ``mongodb_uri``, or start the embedded database of ``data_dir`` when
        there is none (``join``: or use the one another process runs there; without, wait
        a little for it to let go, then refuse). Creates the indexes."""
        embedded = None
        uri = mongodb_uri
        if uri is None:
            embedded = await asyncio.to_thread(
                partial(start_embedded, data_dir, secantusd, join=join, wait=0 if join else 15)
            )
            uri = embedded.uri
        try:
            storage = await cls.connect(
                uri, database, embedded=embedded, listeners=listeners, upgrade=upgrade
            )
        except BaseException:
            if embedded is not None:
                embedded.stop()
            raise
        return storage

    @classmethod
    async def connect(
        cls,
        uri: str,
        database: str,
        *,
        embedded: EmbeddedServer | None = None,
        listeners: Sequence[CommandListener] = (),
        bounds: Bounds = DEFAULT_BOUNDS,
        upgrade: bool = True,
    ) -> Storage:
        """A client for ``uri``: indexes made, and (``upgrade``) the layout upgraded when
        an earlier version wrote the database."""
        availability = Availability()
        local = embedded is not None
        client: AsyncMongoClient = AsyncMongoClient(
            uri,
            # The embedded database is on loopback and restarts in about a second: the
            # request that finds it gone waits (in the driver's retry) at most 2 s for it,
            # and the monitor looks for it every second instead of every 10.
            serverSelectionTimeoutMS=2000 if local else 5000,
            heartbeatFrequencyMS=1000 if local else 10_000,
            journal=True,  # an acknowledged write is in the journal, on disk
            event_listeners=[*listeners, availability],
            appname="agent-sessions",
        )
        try:
            hello = await client.admin.command("hello")
            transactions = "setName" in hello or hello.get("msg") == "isdbgrid"
            if not transactions:
                log.warning(
                    "the database at %s is a standalone server, without transactions: "
                    "sessions stay whole documents (limited to 16 MB) instead of moving "
                    "older turns into pages; run it as a replica set (one node is enough)",
                    uri.split("@")[-1],
                )
            storage = cls(
                client=client,
                database=database,
                embedded=embedded,
                availability=availability,
                bounds=bounds,
                transactions=transactions,
            )
            await storage.create_indexes()
            if upgrade:
                await ensure_layout(storage)
                await storage.sessions.index_metadata()
        except BaseException:
            await client.close()
            raise
        return storage

    async def create_indexes(self) -> None:
        db = self.client[self.database]
        for collection, indexes in (
            (SESSIONS, SESSION_INDEXES),
            (PAGES, PAGE_INDEXES),
            (API_KEYS, API_KEY_INDEXES),
            (RUN_EVENTS, RUN_EVENT_INDEXES),
            (RUN_LEASES, RUN_LEASE_INDEXES),
        ):
            for keys, options in indexes:
                await db[collection].create_index(keys, **options)

    async def require_available(self) -> None:
        """Raise ``DatabaseUnavailable`` at once while the database is known to be down.

        The driver's topology (updated as soon as a command or a heartbeat fails) says
        whether it is; then one ping, bounded by AVAILABILITY_PING_S, finds out whether it
        is back, rather than waiting for the next heartbeat."""
        if self.embedded is not None and self.embedded.owner and not self.embedded.alive:
            raise DatabaseUnavailable()
        topology = self.client.topology_description
        if topology.has_writable_server() or not any(
            server.error is not None for server in topology.server_descriptions().values()
        ):
            return  # up, or not known yet (the first command finds out)
        try:
            with pymongo.timeout(AVAILABILITY_PING_S):
                await self.client.admin.command("ping")
        except PyMongoError:
            raise DatabaseUnavailable() from None

    async def healthy(self) -> tuple[bool, str]:
        """Whether the database answers a ping, and if not, why."""
        if self.embedded is not None and not self.embedded.alive:
            return False, f"the embedded database {self.embedded.exit_reason()}"
        try:
            await asyncio.wait_for(self.client.admin.command("ping"), timeout=3)
        except (PyMongoError, TimeoutError) as exc:
            return False, f"the database does not answer: {exc}"
        return True, "ok"

    async def runs_by_status(self) -> dict[str, int]:
        """How many stored runs have each status ({} when the database does not answer)."""
        try:
            return await self.sessions.runs_by_status()
        except (DatabaseUnavailable, StorageFailed) as exc:
            log.warning("counting runs by status failed: %s", exc)
            return {}

    async def close(self, *, stop_embedded: bool = True) -> None:
        """Close the client, and stop the embedded database this process started (unless
        ``stop_embedded`` is false: its starter stops it)."""
        await self.client.close()
        if stop_embedded and self.embedded is not None and self.embedded.owner:
            await asyncio.to_thread(self.embedded.stop)
