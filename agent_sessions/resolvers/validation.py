"""Checks on client-supplied values that the GraphQL types alone cannot express."""

from __future__ import annotations

import re
import typing
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

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


# --- what was wrong with a validated value (a request body, the settings), in words ---


def _submodel(model: type[BaseModel], loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model that holds the field at ``loc`` (for naming the fields it accepts)."""
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        found = [
            t
            for t in typing.get_args(field.annotation) or (field.annotation,)
            if isinstance(t, type) and issubclass(t, BaseModel)
        ]
        if not found:
            return None
        model = found[0]
    return model


def _wrong(error: ErrorDetails, model: type[BaseModel]) -> str:
    """What is wrong with one field, without pydantic's wording or the patterns."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        holder = _submodel(model, error["loc"][:-1])
        accepted = ", ".join(holder.model_fields) if holder is not None else ""
        return "is not a field here" + (f" (accepted: {accepted})" if accepted else "")
    if kind == "string_type":
        return "must be a string"
    if kind == "string_pattern_mismatch":
        return "must be " + PATTERN_WORDS.get(str(ctx.get("pattern")), "in the documented form")
    if kind == "string_too_long":
        return f"must be at most {ctx['max_length']} characters long"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number"
    if kind in ("float_type", "float_parsing"):
        return "must be a number"
    if kind == "greater_than_equal":
        return f"must be {ctx['ge']} or more"
    if kind == "greater_than":
        return f"must be more than {ctx['gt']}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}"
    if kind.startswith("url_"):
        return "must be a URL (http:// or https://)"
    if kind in ("bool_type", "bool_parsing"):
        return "must be true or false"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be a JSON object"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    return "is not valid"


def describe(exc: ValidationError, model: type[BaseModel], whole: str = "the request body") -> str:
    """Every problem pydantic found in a ``model`` value, each naming its field (``whole``
    when it is the value itself), in words."""
    problems = []
    for error in exc.errors(include_url=False):
        if error["type"] == "json_invalid":
            return f"{whole} is not valid JSON"
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        where = where.lstrip(".")
        if error["type"] == "value_error":  # the model's own checks say it in words already
            said = str((error.get("ctx") or {}).get("error", error["msg"]))
            problems.append(f"{where}: {said}" if where else said)
            continue
        problems.append(f"{where or whole} {_wrong(error, model)}")
    return "; ".join(dict.fromkeys(problems))
