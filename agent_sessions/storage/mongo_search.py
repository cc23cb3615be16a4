"""Full-text search through MongoDB's own text index, where the database has one.

One document per indexed message in ``search_messages`` (the text index needs the text
in the documents it indexes, so on this backend a message's text is stored twice: in
its session and here), with a text index of ``default_language: "none"`` (no stemming,
no stop words: a word matches itself only) over ``content``, and ``user_id`` and
``agent_id`` after it, so a user's query is answered from the index. Text index version
3 folds case and diacritics (``cafe`` finds ``Café``). Every word must match: each word
is sent as a quoted phrase, and MongoDB matches only documents holding every phrase.
Ranked by MongoDB's text score, or newest first.

Which backend a server uses is chosen at start-up by ``open_search``: ``search_backend``
``auto`` (the default) tries to create the text index and falls back to the SQLite
index of ``storage.search`` when the database refuses (SecantusDB does:
``CannotCreateIndex``); the server logs which one it uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymongo import DESCENDING, DeleteMany, ReplaceOne
from pymongo.errors import OperationFailure

from .search import FILE, Hit, SearchIndex

COLLECTION = "search_messages"
TEXT_INDEX = "words"
INDEXES: list[tuple[list[tuple[str, Any]], dict[str, Any]]] = [
    (
        [("content", "text"), ("user_id", 1), ("agent_id", 1)],
        {"name": TEXT_INDEX, "default_language": "none", "textIndexVersion": 3},
    ),
    ([("session_id", 1), ("seq", 1)], {"name": "session_seq"}),
    ([("session_id", 1), ("run_id", 1)], {"name": "session_run"}),
]
BACKENDS = ("auto", "mongo", "sqlite")


class SearchBackendError(Exception):
    """``search_backend`` asks for what the database does not have."""


def _key(session_id: str, seq: int) -> str:
    return f"{session_id}\x00{seq}"


def text_search(query_terms: Sequence[str]) -> str:
    """The ``$search`` string: every term a quoted phrase, so that every one must match."""
    return " ".join('"' + " ".join(t.replace('"', " ").split()) + '"' for t in query_terms)


class MongoTextIndex:
    """The search index as a collection of the session database (``SearchIndex``'s
    methods; each write is one command, awaited)."""

    def __init__(self, database: Any) -> None:
        self.collection = database[COLLECTION]

    @classmethod
    async def create(cls, database: Any) -> MongoTextIndex:
        """The index on ``database``, its indexes created; ``OperationFailure`` when the
        database has no text index (nothing is left behind then)."""
        existed = COLLECTION in await database.list_collection_names()
        index = cls(database)
        try:
            for keys, options in INDEXES:
                await index.collection.create_index(keys, **options)
        except OperationFailure:
            if not existed:
                await database.drop_collection(COLLECTION)
            raise
        return index

    def close(self) -> None:
        """Nothing to close: the collection is the database's."""

    async def settle(self) -> None:
        """Nothing is queued: every write is awaited."""

    async def add(self, session_id: str, user_id: str, agent_id: str | None,
                  messages: Sequence[tuple[int, dict[str, Any]]], *,
                  fresh: bool = False) -> None:  # fmt: skip
        """Index (or index again) messages of a session, each with its seq."""
        ops: list[Any] = []
        for seq, m in messages:
            if not m.get("content"):
                if not fresh:
                    ops.append(DeleteMany({"_id": _key(session_id, seq)}))
                continue
            created = m.get("created_at")
            doc = {
                "_id": _key(session_id, seq), "session_id": session_id, "seq": seq,
                "message_id": m["id"], "run_id": m.get("run_id"), "role": m["role"],
                "created_at": created.replace(tzinfo=created.tzinfo or UTC) if created else None,
                "user_id": user_id, "agent_id": agent_id, "content": m["content"],
            }  # fmt: skip
            ops.append(ReplaceOne({"_id": doc["_id"]}, doc, upsert=True))
        if ops:
            await self.collection.bulk_write(ops, ordered=True)

    async def share(self, source_id: str, session_id: str, below: int) -> int:
        """Index the messages of ``source_id`` with seqs below ``below`` as
        ``session_id``'s too (a fork), copied inside the database; how many."""
        pipeline = [
            {"$match": {"session_id": source_id, "seq": {"$lt": below}}},
            {"$set": {"session_id": session_id,
                      "_id": {"$concat": [session_id, "\x00", {"$toString": "$seq"}]}}},
            {"$merge": {"into": COLLECTION, "on": "_id", "whenMatched": "replace"}},
        ]  # fmt: skip
        await (await self.collection.aggregate(pipeline)).to_list()
        return int(await self.collection.count_documents({"session_id": session_id}))

    async def delete_session(self, session_id: str) -> None:
        await self.collection.delete_many({"session_id": session_id})

    async def delete_run(self, session_id: str, run_id: str) -> None:
        await self.collection.delete_many({"session_id": session_id, "run_id": run_id})

    async def clear(self) -> None:
        await self.collection.delete_many({})

    async def search(
        self,
        query_terms: Sequence[str],
        *,
        owner: str | None,
        agent_id: str | None = None,
        newest: bool = False,
        limit: int,
        offset: int = 0,
    ) -> list[Hit]:
        """Hits for every term, best (text score) or newest first."""
        q: dict[str, Any] = {
            "$text": {"$search": text_search(query_terms), "$language": "none",
                      "$caseSensitive": False, "$diacriticSensitive": False},
        }  # fmt: skip
        if owner is not None:
            q["user_id"] = owner
        if agent_id is not None:
            q["agent_id"] = agent_id
        score = {"$meta": "textScore"}
        order: list[tuple[str, Any]] = (
            [("created_at", DESCENDING), ("_id", DESCENDING)]
            if newest
            else [("score", score), ("created_at", DESCENDING), ("_id", DESCENDING)]
        )
        projection = {"content": 0, "user_id": 0, "agent_id": 0, "score": score}
        cursor = self.collection.find(q, projection, sort=order, skip=offset, limit=limit)
        return [
            Hit(d["session_id"], d["seq"], d["message_id"], d.get("run_id"), d["role"],
                _aware(d.get("created_at")), float(d.get("score") or 0.0))
            async for d in cursor
        ]  # fmt: skip

    async def count(self) -> int:
        """How many messages are indexed."""
        return int(await self.collection.count_documents({}))


def _aware(t: datetime | None) -> datetime:
    if t is None:
        return datetime.fromtimestamp(0, UTC)
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


async def open_search(
    backend: str, database: Any, data_dir: Path
) -> tuple[SearchIndex | MongoTextIndex, str]:
    """The search index ``backend`` names (``BACKENDS``), and a line saying which it is:
    ``sqlite``, the FTS5 file of ``data_dir``; ``mongo``, the database's text index
    (``SearchBackendError`` when it has none); ``auto``, the text index where the
    database has one, the file otherwise."""
    if backend == "sqlite":
        return SearchIndex(data_dir / FILE), f"search: SQLite FTS5 index in {data_dir / FILE}"
    try:
        index = await MongoTextIndex.create(database)
    except OperationFailure as exc:
        reason = (exc.details or {}).get("errmsg") or str(exc)
        if backend == "mongo":
            raise SearchBackendError(
                f"search_backend is mongo, but the database has no text index: {reason}"
            ) from None
        line = f"search: SQLite FTS5 index in {data_dir / FILE} (no text index: {reason})"
        return SearchIndex(data_dir / FILE), line
    return index, f"search: MongoDB text index {TEXT_INDEX!r} on {COLLECTION}"
