"""Checks on client-supplied values that the GraphQL types alone cannot express."""

from __future__ import annotations

import re
from typing import Any

from errors import BadInput

_CLIENT_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,256}")


def client_id(value: str | None, what: str) -> str | None:
    """Ids that clients choose (session, run): 1–128 of ``A-Z a-z 0-9 . _ : -``."""
    if value is not None and not _CLIENT_ID.fullmatch(value):
        raise BadInput(f"{what} must be 1-128 characters of A-Z a-z 0-9 . _ : - (got {value!r})")
    return value


def is_client_id(value: str) -> bool:
    return bool(_CLIENT_ID.fullmatch(value))


def name(value: str | None, what: str) -> str | None:
    """User ids, agent ids and other names: 1–256 printable characters."""
    if value is not None and not _NAME.fullmatch(value):
        raise BadInput(f"{what} must be 1-256 printable characters")
    return value


def json_object(value: Any, what: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise BadInput(f"{what} must be a JSON object")
    return value
