"""Opaque cursors: positions in a session's messages or runs, and (updated_at, id) for sessions."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta

import orjson

from agent_sessions.errors import BadInput


def _encode(payload: object) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode()


def _invalid(argument: str, cursor: str) -> BadInput:
    return BadInput(
        f"{argument} must be a cursor this list gave out (a startCursor, endCursor or an "
        f"edge's cursor), got {cursor!r}"
    )


def _decode(cursor: str, argument: str) -> object:
    try:
        return orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise _invalid(argument, cursor) from None


MAX_POSITION = 2**31  # far beyond any session that fits in 16 MB
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)


def position_cursor(kind: str, position: int) -> str:
    return _encode([kind, position])


def decode_position(kind: str, cursor: str | None, argument: str = "cursor") -> int | None:
    """The position in a cursor of ``kind``; ``argument`` names it in the error."""
    if cursor is None:
        return None
    value = _decode(cursor, argument)
    if (
        not isinstance(value, list)
        or len(value) != 2
        or value[0] != kind
        or not isinstance(value[1], int)
        or not 0 <= value[1] < MAX_POSITION
    ):
        raise _invalid(argument, cursor)
    return value[1]


def session_cursor(updated_at: datetime, session_id: str) -> str:
    if updated_at.tzinfo is None:
        updated_at = updated_at.replace(tzinfo=UTC)
    # Integer arithmetic: timestamp() * 1000 goes through a float and is off by one
    # millisecond for some instants, and the cursor then skips sessions tied on it.
    return _encode(["s", (updated_at - EPOCH) // MILLISECOND, session_id])


def decode_session_cursor(
    cursor: str | None, argument: str = "cursor"
) -> tuple[datetime, str] | None:
    """The (updatedAt, id) in a session cursor; ``argument`` names it in the error."""
    if cursor is None:
        return None
    value = _decode(cursor, argument)
    if (
        not isinstance(value, list)
        or len(value) != 3
        or value[0] != "s"
        or not isinstance(value[1], int)
        or not isinstance(value[2], str)
    ):
        raise _invalid(argument, cursor)
    try:
        t = EPOCH + value[1] * MILLISECOND
    except OverflowError:
        raise _invalid(argument, cursor) from None
    return t, value[2]
