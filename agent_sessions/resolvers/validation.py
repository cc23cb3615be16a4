"""Checks on client-supplied values that the GraphQL types alone cannot express."""

from __future__ import annotations

import re
from typing import Any

from agent_sessions.errors import BadInput

# The patterns are also the OpenAPI document's, so what the document allows is what passes.
CLIENT_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
NAME_PATTERN = r"^[^\x00-\x1f\x7f]{1,256}$"
# A character that is not whitespace, by Python's and JavaScript's definitions both.
NON_BLANK_PATTERN = (
    r"[^\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
)
# The same rules in words, for error messages: a person should not have to read a regex.
CLIENT_ID_WORDS = "1-128 characters of A-Z a-z 0-9 . _ : -"
NAME_WORDS = "1-256 characters, none of them a control character"
NON_BLANK_WORDS = "text with at least one character that is not a space"
PATTERN_WORDS = {
    CLIENT_ID_PATTERN: CLIENT_ID_WORDS,
    NAME_PATTERN: NAME_WORDS,
    NON_BLANK_PATTERN: NON_BLANK_WORDS,
}
_CLIENT_ID = re.compile(CLIENT_ID_PATTERN)
_NAME = re.compile(NAME_PATTERN)
_NON_BLANK = re.compile(NON_BLANK_PATTERN)


def client_id(value: str | None, what: str) -> str | None:
    """Ids that clients choose (session, run): 1–128 of ``A-Z a-z 0-9 . _ : -``."""
    if value is not None and not _CLIENT_ID.fullmatch(value):
        raise BadInput(f"{what} must be {CLIENT_ID_WORDS} (got {value!r})")
    return value


def is_client_id(value: str) -> bool:
    return bool(_CLIENT_ID.fullmatch(value))


def name(value: str | None, what: str) -> str | None:
    """User ids, agent ids and other names: 1–256 printable characters."""
    if value is not None and not _NAME.fullmatch(value):
        raise BadInput(f"{what} must be {NAME_WORDS}")
    return value


def non_blank(value: str) -> bool:
    return bool(_NON_BLANK.search(value))


def json_object(value: Any, what: str) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise BadInput(f"{what} must be a JSON object")
    return value


INT64 = 2**63


def check_json_keys(value: Any, path: str = "") -> Any:
    """Refuse what MongoDB cannot store as given, at any depth: object keys that start with
    ``$``, contain ``.`` or a NUL (operators, paths, C strings), and integers beyond 64 bits."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or key.startswith("$") or "." in key or "\x00" in key:
                where = f" at {path}" if path else ""
                raise ValueError(
                    f"JSON keys may not start with '$' or contain '.' or NUL ({key!r}{where})"
                )
            check_json_keys(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            check_json_keys(item, f"{path}[{n}]")
    elif isinstance(value, int) and not isinstance(value, bool) and not -INT64 <= value < INT64:
        raise ValueError(f"JSON integers must fit in 64 bits{f' (at {path})' if path else ''}")
    return value
