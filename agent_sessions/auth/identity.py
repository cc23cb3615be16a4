"""Who is calling: open mode, the bootstrap admin key, or a stored API key."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from agent_sessions.errors import FORBIDDEN_ACT_FOR_OTHERS, Forbidden, Unauthenticated
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage

OPEN_MODE_USER = "local"
BOOTSTRAP_ADMIN_USER = "admin"


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: str
    is_admin: bool

    @property
    def owner(self) -> str | None:
        """The ``user_id`` that scopes this caller's reads and writes; ``None`` for admins."""
        return None if self.is_admin else self.user_id

    def acting_for(self, user_id: str | None) -> str:
        """The user a write is for: ``user_id`` (administrators only), else the caller."""
        if user_id is None or user_id == self.user_id:
            return self.user_id
        if not self.is_admin:
            raise Forbidden(FORBIDDEN_ACT_FOR_OTHERS)
        return user_id


OPEN_MODE_CALLER = Caller(OPEN_MODE_USER, is_admin=True)


async def authenticate(authorization: str | None, settings: Settings, storage: Storage) -> Caller:
    """The caller for an ``Authorization`` header; raises ``Unauthenticated``."""
    if not settings.auth_enabled:
        return OPEN_MODE_CALLER
    if not authorization:
        raise Unauthenticated("missing Authorization: Bearer <key> header")
    scheme, _, key = authorization.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise Unauthenticated("malformed Authorization header; expected Bearer <key>")
    assert settings.admin_key is not None
    if hmac.compare_digest(key.encode(), settings.admin_key.get_secret_value().encode()):
        return Caller(BOOTSTRAP_ADMIN_USER, is_admin=True)
    record = await storage.keys.authenticate(key)
    if record is None:
        raise Unauthenticated("invalid or revoked API key")
    return Caller(record.user_id, is_admin=record.admin)
