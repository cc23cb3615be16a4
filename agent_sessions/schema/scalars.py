"""``DateTime`` (RFC 3339, UTC, ``Z``) and ``JSON`` (any value; object keys safe for MongoDB)."""

from datetime import UTC, datetime
from typing import NewType

import strawberry

from agent_sessions.resolvers.validation import check_json_keys


def format_datetime(value: datetime) -> str:
    """``2026-05-06T10:00:00Z``, or with milliseconds when there are any. Naive means UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    if value.microsecond:
        return value.isoformat(timespec="milliseconds") + "Z"
    return value.isoformat(timespec="seconds") + "Z"


def parse_datetime(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an RFC 3339 string")
    try:
        parsed = datetime.fromisoformat(value.upper())  # RFC 3339 allows "t" and "z"
    except ValueError:
        raise ValueError(f"{value!r} is not an RFC 3339 date-time") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; add Z or an offset")
    parsed = parsed.astimezone(UTC)
    # BSON dates keep milliseconds; truncate so what is stored is what comes back.
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


DateTime = NewType("DateTime", datetime)
JSON = NewType("JSON", object)

SCALARS = {
    DateTime: strawberry.scalar(
        name="DateTime",
        description="An RFC 3339 date-time in UTC, e.g. 2026-05-06T10:00:00Z.",
        serialize=format_datetime,
        parse_value=parse_datetime,
    ),
    JSON: strawberry.scalar(
        name="JSON",
        description="Any JSON value. Object keys may not start with '$' or contain '.'.",
        serialize=lambda v: v,
        parse_value=check_json_keys,
    ),
}
