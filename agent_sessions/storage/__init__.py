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
from .migrate import ensure_layout
from .sessions import SessionStore, StorageFailed

log = logging.getLogger("agent_sessions.storage")

__all__ = [
    "ApiKeyStore",
    "EmbeddedServer",
    "EmbeddedServerError",
    "KeyRecord",
    "SessionStore",
    "Storage",
    "StorageFailed",
]


@dataclass
class Storage:
    client: AsyncMongoClient
    database: str
    embedded: EmbeddedServer | None = None
    bounds: Bounds = DEFAULT_BOUNDS
    # Heads move older turns into pages in transactions: a replica set (a single-node one
    # is fine), a sharded cluster, Atlas, or the embedded database. Set by ``connect``.
    transactions: bool = True
    sessions: SessionStore = field(init=False)
    keys: ApiKeyStore = field(init=False)

    def __post_init__(self) -> None:
        self.db = self.client[self.database]
        self.sessions = SessionStore(self.db, bounds=self.bounds, moves=self.transactions)
        self.keys = ApiKeyStore(self.db[API_KEYS])

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
        bounds: Bounds = DEFAULT_BOUNDS,
    ) -> Storage:
        """A client for ``uri``: indexes made, the layout upgraded when an earlier version
        wrote the database."""
        client: AsyncMongoClient = AsyncMongoClient(
            uri,
            serverSelectionTimeoutMS=5000,
            event_listeners=list(listeners),
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
                bounds=bounds,
                transactions=transactions,
            )
            await storage.create_indexes()
            await ensure_layout(storage)
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
