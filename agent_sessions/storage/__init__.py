"""Storage: the only package that knows MongoDB. See ``layout`` for the document."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from pymongo.monitoring import CommandListener

from .embedded import EmbeddedServer, EmbeddedServerError, start_embedded
from .keys import ApiKeyStore, KeyRecord
from .layout import API_KEY_INDEXES, API_KEYS, SESSION_INDEXES, SESSIONS
from .live import RUN_EVENT_INDEXES, RUN_EVENTS, RUN_LEASE_INDEXES, RUN_LEASES, LiveStore
from .sessions import SessionStore

log = logging.getLogger("agent_sessions.storage")

__all__ = [
    "ApiKeyStore",
    "EmbeddedServer",
    "EmbeddedServerError",
    "KeyRecord",
    "LiveStore",
    "SessionStore",
    "Storage",
]


@dataclass
class Storage:
    client: AsyncMongoClient
    database: str
    embedded: EmbeddedServer | None = None
    sessions: SessionStore = field(init=False)
    keys: ApiKeyStore = field(init=False)
    live: LiveStore = field(init=False)

    def __post_init__(self) -> None:
        db = self.client[self.database]
        self.sessions = SessionStore(db[SESSIONS])
        self.keys = ApiKeyStore(db[API_KEYS])
        self.live = LiveStore(db)

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
            storage = await cls.connect(uri, database, embedded=embedded, listeners=listeners)
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
    ) -> Storage:
        client: AsyncMongoClient = AsyncMongoClient(
            uri,
            serverSelectionTimeoutMS=5000,
            event_listeners=list(listeners),
            appname="agent-sessions",
        )
        storage = cls(client=client, database=database, embedded=embedded)
        try:
            await storage.create_indexes()
        except BaseException:
            await client.close()
            raise
        return storage

    async def create_indexes(self) -> None:
        db = self.client[self.database]
        for collection, indexes in (
            (SESSIONS, SESSION_INDEXES),
            (API_KEYS, API_KEY_INDEXES),
            (RUN_EVENTS, RUN_EVENT_INDEXES),
            (RUN_LEASES, RUN_LEASE_INDEXES),
        ):
            for keys, options in indexes:
                await db[collection].create_index(keys, **options)

    async def healthy(self) -> tuple[bool, str]:
        """Whether the database answers a ping, and if not, why."""
        if self.embedded is not None and not self.embedded.alive:
            return False, f"the embedded database {self.embedded.exit_reason()}"
        try:
            await asyncio.wait_for(self.client.admin.command("ping"), timeout=3)
        except (PyMongoError, TimeoutError) as exc:
            return False, f"the database does not answer: {exc}"
        return True, "ok"

    async def close(self, *, stop_embedded: bool = True) -> None:
        """Close the client, and stop the embedded database this process started (unless
        ``stop_embedded`` is false: its starter stops it)."""
        await self.client.close()
        if stop_embedded and self.embedded is not None and self.embedded.owner:
            await asyncio.to_thread(self.embedded.stop)
