"""API keys: stored as a SHA-256 hash with a short display prefix, never in clear."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError

from agent_sessions.errors import DatabaseUnavailable

from .sessions import new_id, now

KEY_PREFIX = "ask_"
_DISPLAY = len(KEY_PREFIX) + 6
# last_used_at is advisory; writing it on every request would double the cost of a read.
_TOUCH_EVERY = timedelta(minutes=1)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: str
    user_id: str
    admin: bool
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> KeyRecord:
        return cls(
            id=doc["_id"],
            user_id=doc["user_id"],
            admin=bool(doc.get("admin")),
            prefix=doc["prefix"],
            created_at=doc["created_at"],
            last_used_at=doc.get("last_used_at"),
            revoked_at=doc.get("revoked_at"),
        )


class ApiKeyStore:
    def __init__(self, collection: AsyncCollection) -> None:
        self.col = collection

    async def create(self, user_id: str, admin: bool = False) -> tuple[KeyRecord, str]:
        """A new key for ``user_id``; the clear key is returned here and nowhere else."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        doc = {
            "_id": new_id(),
            "hash": hash_key(key),
            "prefix": key[:_DISPLAY],
            "user_id": user_id,
            "admin": admin,
            "created_at": now(),
            "last_used_at": None,
            "revoked_at": None,
        }
        await self.col.insert_one(doc)
        return KeyRecord.from_doc(doc), key

    async def list(self) -> list[KeyRecord]:
        docs = await self.col.find({}, {"hash": 0}, sort=[("created_at", 1)]).to_list()
        return [KeyRecord.from_doc(d) for d in docs]

    async def revoke(self, key_id: str, owner: str | None = None) -> bool:
        """Revoke a live key; with ``owner``, only a key of that user."""
        filt: dict[str, Any] = {"_id": key_id, "revoked_at": None}
        if owner is not None:
            filt["user_id"] = owner
        result = await self.col.update_one(filt, {"$set": {"revoked_at": now()}})
        return result.modified_count == 1

    async def authenticate(self, key: str) -> KeyRecord | None:
        """The live key record for a presented key, or ``None`` (unknown or revoked).
        Raises ``DatabaseUnavailable`` when the database does not answer."""
        try:
            return await self._authenticate(key)
        except (ConnectionFailure, ServerSelectionTimeoutError) as exc:
            raise DatabaseUnavailable() from exc

    async def _authenticate(self, key: str) -> KeyRecord | None:
        doc = await self.col.find_one({"hash": hash_key(key), "revoked_at": None}, {"hash": 0})
        if doc is None:
            return None
        record = KeyRecord.from_doc(doc)
        t = now()
        if (
            record.last_used_at is None
            or t - record.last_used_at.replace(tzinfo=t.tzinfo) > _TOUCH_EVERY
        ):
            await self.col.update_one({"_id": record.id}, {"$set": {"last_used_at": t}})
        return record
