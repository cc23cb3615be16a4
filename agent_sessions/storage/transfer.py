"""Export and import of whole sessions: the only code of ``agent-sessions export|import|demo``
that reads or writes the database.

The export format is public (README, "Export format") and is not the storage layout: one
JSON object per session with ``format``, the session's fields, ``messages`` in order and
``runs`` in order (each with its retrieved context), every key present, timestamps as
RFC 3339 UTC strings with milliseconds. ``ExportedSession`` validates it on the way in.

It goes through ``SessionStore.export_sessions``/``import_session``, which know the
layout (a head, and pages for a long session); this module knows only the format.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args, get_type_hints

from pydantic import (
    AfterValidator,
    AwareDatetime,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict

# The rules inputs follow everywhere (plain checks, no GraphQL): an imported session
# passes what recordRun would let through.
from agent_sessions.resolvers.validation import CLIENT_ID_PATTERN, NAME_PATTERN, check_json_keys

from .layout import MAX_MESSAGE_BYTES
from .model import About, ChunkRecord

if TYPE_CHECKING:
    from . import Storage

FORMAT = "agent-sessions/1"

# --- the format, validated by pydantic ------------------------------------------------------
#
# TypedDicts rather than BaseModels: validation returns plain dicts, which are (nearly)
# the stored documents, and is twice as fast, which import speed needs. Every key is
# required, as export writes them: a line that lacks one is reported, not guessed at.
# Timestamps are stored as the aware datetimes they parse to; the driver keeps their
# milliseconds, so what is stored exports again as it came.

Id = Annotated[str, Field(pattern=CLIENT_ID_PATTERN)]
Name = Annotated[str, Field(pattern=NAME_PATTERN)]
TokenCount = Annotated[int, Field(ge=0, lt=2**31)]
JsonObject = Annotated[dict[str, Any], AfterValidator(check_json_keys)]
_STRICT = ConfigDict(extra="forbid")


@with_config(_STRICT)
class ExportedToolCall(TypedDict):
    id: Name
    name: Name
    arguments: str | None


@with_config(_STRICT)
class ExportedMessage(TypedDict):
    id: Id
    role: Literal["user", "assistant", "tool", "system"]
    content: str | None
    run_id: Id | None
    created_at: AwareDatetime
    name: Name | None
    tool_calls: list[ExportedToolCall]
    tool_call_id: Name | None


@with_config(_STRICT)
class ExportedReasoning(TypedDict):
    enabled: bool
    effort: str | None
    budget_tokens: TokenCount | None


@with_config(_STRICT)
class ExportedUsage(TypedDict):
    input_tokens: TokenCount | None
    output_tokens: TokenCount | None
    reasoning_tokens: TokenCount | None
    total_tokens: TokenCount | None


def _exported_chunk() -> Any:
    """The export's chunk: ``ChunkRecord``'s fields, so that a field declared there is
    exported and imported too; every key required, the id and ``meta`` checked as a
    write checks them."""
    checked = {"id": Name, "meta": JsonObject}
    hints = get_type_hints(ChunkRecord, include_extras=True)
    fields = {key: checked.get(key, get_args(hint)[0]) for key, hint in hints.items()}
    return with_config(_STRICT)(TypedDict("ExportedChunk", fields))  # type: ignore[operator]


if TYPE_CHECKING:
    ExportedChunk = ChunkRecord
else:
    ExportedChunk = _exported_chunk()

# (key, the value that stands for an absent or null one), in ChunkRecord's order.
_CHUNK_DEFAULTS = tuple(
    (key, next(a for a in get_args(hint) if isinstance(a, About)).default)
    for key, hint in get_type_hints(ChunkRecord, include_extras=True).items()
)


@with_config(_STRICT)
class ExportedRun(TypedDict):
    id: Id
    agent_id: Name | None
    status: Literal["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
    input: str | None
    content: str | None
    error: str | None
    reasoning: ExportedReasoning | None
    usage: ExportedUsage | None
    created_at: AwareDatetime
    started_at: AwareDatetime | None
    completed_at: AwareDatetime | None
    retrieval_diagnostics: JsonObject | None
    retrieved_context: list[ExportedChunk]


@with_config(_STRICT)
class ExportedSession(TypedDict):
    """One line of an export."""

    format: Literal["agent-sessions/1"]
    id: Id
    user_id: Name
    agent_id: Name | None
    title: str | None
    metadata: JsonObject
    created_at: AwareDatetime
    updated_at: AwareDatetime
    messages: list[ExportedMessage]
    runs: list[ExportedRun]


RECORD: TypeAdapter[ExportedSession] = TypeAdapter(ExportedSession)


def _references(record: ExportedSession) -> str | None:
    """What is wrong between the record's parts, if anything."""
    run_ids = {r["id"] for r in record["runs"]}
    if len(run_ids) != len(record["runs"]):
        return "runs: two runs have the same id"
    if len({m["id"] for m in record["messages"]}) != len(record["messages"]):
        return "messages: two messages have the same id"
    for n, m in enumerate(record["messages"]):
        if m["run_id"] is not None and m["run_id"] not in run_ids:
            return f"messages.{n}.run_id: {m['run_id']!r} is not a run of this session"
    return None


# --- export -------------------------------------------------------------------------------


def _time(value: datetime | None) -> str | None:
    """RFC 3339 UTC with milliseconds; the driver hands back naive UTC datetimes."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def _export_message(m: dict[str, Any]) -> dict[str, Any]:
    g = m.get
    return {
        "id": m["id"],
        "role": m["role"],
        "content": g("content"),
        "run_id": g("run_id"),
        "created_at": _time(m["created_at"]),
        "name": g("name"),
        "tool_calls": [
            {"id": c["id"], "name": c["name"], "arguments": c.get("arguments")}
            for c in g("tool_calls") or ()
        ],
        "tool_call_id": g("tool_call_id"),
    }


def _export_chunk(c: dict[str, Any]) -> dict[str, Any]:
    get = c.get
    out = {
        key: default if (value := get(key)) is None else value for key, default in _CHUNK_DEFAULTS
    }
    if out["meta"] is None:
        out["meta"] = {}  # the format's meta is an object
    return out


def _export_run(r: dict[str, Any]) -> dict[str, Any]:
    g = r.get
    reasoning, usage = g("reasoning"), g("usage")
    return {
        "id": r["id"],
        "agent_id": g("agent_id"),
        "status": r["status"],
        "input": g("input"),
        "content": g("content"),
        "error": g("error"),
        "reasoning": None
        if reasoning is None
        else {
            "enabled": reasoning.get("enabled") is not False,
            "effort": reasoning.get("effort"),
            "budget_tokens": reasoning.get("budget_tokens"),
        },
        "usage": None
        if usage is None
        else {
            "input_tokens": usage.get("input_tokens"),
            "output_tokens": usage.get("output_tokens"),
            "reasoning_tokens": usage.get("reasoning_tokens"),
            "total_tokens": usage.get("total_tokens"),
        },
        "created_at": _time(r["created_at"]),
        "started_at": _time(g("started_at")),
        "completed_at": _time(g("completed_at")),
        "retrieval_diagnostics": g("retrieval_diagnostics"),
        "retrieved_context": [_export_chunk(c) for c in g("retrieved_context") or ()],
    }


def export_record(whole: dict[str, Any]) -> dict[str, Any]:
    """A session read whole (``SessionStore.export_sessions``) in the export format."""
    session = whole["session"]
    g = session.get
    return {
        "format": FORMAT,
        "id": session["id"],
        "user_id": session["user_id"],
        "agent_id": g("agent_id"),
        "title": g("title"),
        "metadata": g("metadata") or {},
        "created_at": _time(session["created_at"]),
        "updated_at": _time(session["updated_at"]),
        "messages": [_export_message(m) for m in whole["messages"]],
        "runs": [_export_run(r) for r in whole["runs"]],
    }


async def export_sessions(
    storage: Storage,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    since: datetime | None = None,
) -> AsyncIterator[dict[str, Any]]:
    """Every matching session in the export format, newest ``updated_at`` first, one
    session in memory at a time. ``since`` is inclusive: sessions updated at or after it."""
    sessions = storage.sessions.export_sessions(user_id=user_id, agent_id=agent_id, since=since)
    async for whole in sessions:
        yield export_record(whole)


async def count_sessions(
    storage: Storage,
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    since: datetime | None = None,
) -> int:
    """How many sessions ``export_sessions`` with the same arguments yields (for progress)."""
    return await storage.sessions.count_for_export(user_id=user_id, agent_id=agent_id, since=since)


# --- import -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """What ``import_session`` did with one record: ``imported``; ``skipped`` (a session
    with that id exists: importing again changes nothing); or ``invalid`` (the record is
    not the format, or the database refused it), with ``reason``."""

    status: Literal["imported", "skipped", "invalid"]
    session_id: str | None
    reason: str | None = None
    messages: int = 0
    runs: int = 0


def _validation_reason(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    if not first["loc"] and first["type"] == "dict_type":
        return "a session must be a JSON object"
    where = ".".join(str(part) for part in first["loc"])
    more = exc.error_count() - 1
    suffix = f" (and {more} more)" if more else ""
    return f"{where}: {first['msg']}{suffix}" if where else f"{first['msg']}{suffix}"


def _parts(record: ExportedSession) -> tuple[dict[str, Any], list[dict[str, Any]], list]:
    """A validated record as storage's import takes it: fields, messages, runs."""
    messages = []
    for m in record["messages"]:
        # Like storage.sessions.message_document: the optional keys only when set.
        doc: dict[str, Any] = {k: m[k] for k in ("id", "role", "content", "run_id", "created_at")}
        if m["name"] is not None:
            doc["name"] = m["name"]
        if m["tool_calls"]:
            doc["tool_calls"] = m["tool_calls"]
        if m["tool_call_id"] is not None:
            doc["tool_call_id"] = m["tool_call_id"]
        messages.append(doc)
    fields = {k: record[k] for k in ("id", "user_id", "agent_id", "title", "metadata",
                                     "created_at", "updated_at")}  # fmt: skip
    return fields, messages, list(record["runs"])


def _outcome_of_invalid(exc: ValidationError, session_id: str | None) -> ImportOutcome:
    return ImportOutcome("invalid", session_id, _validation_reason(exc))


async def import_session(storage: Storage, record: dict[str, Any]) -> ImportOutcome:
    """Store one exported session as it was: its ids, timestamps and every field.

    A session whose id exists already is left alone (``skipped``), so importing a file
    twice changes nothing. A record that is not the export format is ``invalid``, with
    the first problem as the reason; nothing is written for it.
    """
    if not isinstance(record, dict):
        return ImportOutcome("invalid", None, "a session must be a JSON object")
    session_id = record.get("id") if isinstance(record.get("id"), str) else None
    try:
        parsed = RECORD.validate_python(record)
    except ValidationError as exc:
        return _outcome_of_invalid(exc, session_id)
    return await _store(storage, parsed)


async def import_line(storage: Storage, line: bytes | str) -> ImportOutcome:
    """``import_session`` of one line of an export file, parsed and validated in one pass."""
    try:
        parsed = RECORD.validate_json(line)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            return ImportOutcome("invalid", None, f"not JSON ({exc.errors()[0]['msg']})")
        return _outcome_of_invalid(exc, _id_of(line))
    return await _store(storage, parsed)


def _id_of(line: bytes | str) -> str | None:
    """The session id of a line that failed validation, to name it in the report."""
    import orjson

    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    session_id = value.get("id") if isinstance(value, dict) else None
    return session_id if isinstance(session_id, str) else None


async def _store(storage: Storage, record: ExportedSession) -> ImportOutcome:
    problem = _references(record)
    if problem is not None:
        return ImportOutcome("invalid", record["id"], problem)
    for n, m in enumerate(record["messages"]):
        text = m["content"]
        if (
            text is not None
            and len(text) > MAX_MESSAGE_BYTES // 4
            and len(text.encode()) > MAX_MESSAGE_BYTES
        ):
            return ImportOutcome(
                "invalid",
                record["id"],
                f"messages.{n}.content: a message may hold at most "
                f"{MAX_MESSAGE_BYTES // 2**20} MiB",
            )
    if not await storage.sessions.import_session(*_parts(record)):
        return ImportOutcome("skipped", record["id"], "a session with this id exists already")
    return ImportOutcome(
        "imported", record["id"], None, len(record["messages"]), len(record["runs"])
    )


__all__ = [
    "FORMAT",
    "ExportedSession",
    "ImportOutcome",
    "count_sessions",
    "export_record",
    "export_sessions",
    "import_line",
    "import_session",
]
