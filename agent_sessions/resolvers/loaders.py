"""Per-request dataloaders: every read of a request made in the same tick becomes one
database command, whatever the number of sessions, runs or messages asking.

Keys carry what to read (fields, windows, filters) as well as which object, so the
batch can project exactly the union of what was asked. Results come back in key order.
"""

from __future__ import annotations

import asyncio

from strawberry.dataloader import DataLoader

from agent_sessions.storage import Storage
from agent_sessions.storage.model import (
    ChunkRecord,
    ChunkSpec,
    MessageRecord,
    MessageSpec,
    Page,
    RunRecord,
    RunSpec,
    SessionRead,
    SessionRecord,
    SessionView,
)


def _union(fields: list[frozenset[str] | None]) -> frozenset[str] | None:
    if any(f is None for f in fields):
        return None
    return frozenset().union(*fields)  # type: ignore[arg-type]


class SessionByIdLoader(DataLoader[tuple[str, frozenset[str]], SessionRecord | None]):
    """(session id, stored fields) → the session's top-level fields, or ``None``."""

    def __init__(self, storage: Storage, owner: str | None) -> None:
        async def load(keys: list[tuple[str, frozenset[str]]]) -> list[SessionRecord | None]:
            fields = _union([f for _, f in keys])
            docs = await storage.sessions.get_sessions(
                [sid for sid, _ in keys], fields, owner=owner
            )
            return [docs.get(sid) for sid, _ in keys]

        super().__init__(load)


class SessionReadLoader(DataLoader[tuple[str, SessionRead], SessionView | None]):
    """(session id, planned read) → what the read found: one aggregate per distinct key,
    so a session's nested selection under a list (``runs { session { messages } }``)
    is read once, not once per item."""

    def __init__(self, storage: Storage, owner: str | None) -> None:
        async def load(keys: list[tuple[str, SessionRead]]) -> list[SessionView | None]:
            return list(
                await asyncio.gather(
                    *(storage.sessions.read_session(s, read, owner=owner) for s, read in keys)
                )
            )

        super().__init__(load)


class MessagesBySessionLoader(DataLoader[tuple[str, MessageSpec], Page | None]):
    """(session id, window spec) → a page of the session's messages."""

    def __init__(self, storage: Storage, owner: str | None) -> None:
        async def load(keys: list[tuple[str, MessageSpec]]) -> list[Page | None]:
            return await storage.sessions.page_messages(keys, owner=owner)

        super().__init__(load)


class RunsBySessionLoader(DataLoader[tuple[str, RunSpec], Page | None]):
    """(session id, window spec) → a page of the session's runs."""

    def __init__(self, storage: Storage, owner: str | None) -> None:
        async def load(keys: list[tuple[str, RunSpec]]) -> list[Page | None]:
            return await storage.sessions.page_runs(keys, owner=owner)

        super().__init__(load)


class RunByIdLoader(DataLoader[tuple[str, str, frozenset[str]], RunRecord | None]):
    """(session id, run id, stored fields) → the run, or ``None``."""

    def __init__(self, storage: Storage, owner: str | None) -> None:
        async def load(keys: list[tuple[str, str, frozenset[str]]]) -> list[RunRecord | None]:
            fields = _union([f for *_, f in keys])
            return await storage.sessions.get_runs(
                [(s, r) for s, r, _ in keys], fields, owner=owner
            )

        super().__init__(load)


class RetrievedContextByRunLoader(DataLoader[tuple[str, str, ChunkSpec], list[ChunkRecord] | None]):
    """(session id, run id, chunk filter) → the run's chunks in rank order."""

    def __init__(self, storage: Storage, owner: str | None) -> None:
        async def load(keys: list[tuple[str, str, ChunkSpec]]) -> list[list[ChunkRecord] | None]:
            return await storage.sessions.get_run_chunks(keys, owner=owner)

        super().__init__(load)


class MessagesByRunLoader(
    DataLoader[tuple[str, str, frozenset[str]], list[tuple[int, MessageRecord]]]
):
    """(session id, run id, stored fields) → the messages the run added, with positions."""

    def __init__(self, storage: Storage, owner: str | None) -> None:
        async def load(
            keys: list[tuple[str, str, frozenset[str]]],
        ) -> list[list[tuple[int, MessageRecord]]]:
            fields = _union([f for *_, f in keys])
            return await storage.sessions.get_run_messages(
                [(s, r) for s, r, _ in keys], fields, owner=owner
            )

        super().__init__(load)


class Loaders:
    """The loaders of one request, made with its context (a loader holds nothing until
    it is asked)."""

    __slots__ = ("chunks", "messages", "run", "run_messages", "runs", "session", "session_read")

    def __init__(self, storage: Storage, owner: str | None) -> None:
        self.session = SessionByIdLoader(storage, owner)
        self.session_read = SessionReadLoader(storage, owner)
        self.messages = MessagesBySessionLoader(storage, owner)
        self.runs = RunsBySessionLoader(storage, owner)
        self.run = RunByIdLoader(storage, owner)
        self.chunks = RetrievedContextByRunLoader(storage, owner)
        self.run_messages = MessagesByRunLoader(storage, owner)
