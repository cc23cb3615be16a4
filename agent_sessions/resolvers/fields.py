"""The field map: for each GraphQL object type, the fields that are a record's value as it
is, each declared once with its record key (``storage.model``), its GraphQL name, its REST
name and the value that stands for an absent or null one.

Derived from it: the look-ahead tables (which record keys a selection reads), the compiled
path's leaves, the GraphQL types' ``from_doc`` mappers, the REST shim's selections and
reshapers and, through the REST shapes, the OpenAPI document. How a record key is stored
in MongoDB is ``storage.layout``'s business; this map is about record ↔ GraphQL ↔ REST.

Fields computed by a resolver (``Run.sessionId``, ``Message.retrievedContext``, …) are not
here: they are declared by their resolvers.

A retrieved chunk goes further: its fields are declared once, with their types and
descriptions, in ``storage.model.ChunkRecord`` (``CHUNK_FIELDS`` reads them), and every
other declaration is built from that: the GraphQL type ``schema.types.RetrievedChunk``,
the input ``schema.inputs.RetrievedChunkInput``, the REST shape ``rest.shapes.Chunk`` and
this map's entry. Adding ``RetrievedChunk.page`` is one line in ``ChunkRecord``,
``page: Annotated[int | None, About("The page it was found on.")]``; it is then written by
``recordRun``, stored under its key, read back in both execution modes, shown by REST
and described in the OpenAPI document (``tests/test_chunk_field.py`` does exactly that).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin, get_type_hints

from agent_sessions.storage.model import About, ChunkRecord


def camel(name: str) -> str:
    """``kb_name`` → ``kbName``: how Strawberry names a Python attribute in GraphQL."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


SAME = "="  # a REST name spelled as the record key


@dataclass(frozen=True, slots=True)
class Field:
    """One plain field. ``graphql``: default the record key in camelCase; ``rest``: the
    name in REST bodies (``SAME``: the record key), ``None`` where REST does not show it."""

    record: str
    default: Any = None
    graphql: str = ""
    rest: str | None = None

    @property
    def name(self) -> str:
        return self.graphql or camel(self.record)

    @property
    def rest_name(self) -> str | None:
        return self.record if self.rest == SAME else self.rest


def _fields(*specs: str | Field) -> tuple[Field, ...]:
    return tuple(Field(s) if isinstance(s, str) else s for s in specs)


@dataclass(frozen=True, slots=True)
class RecordField:
    """A field of a record declared with ``About``: its key, its type (``None`` taken out:
    ``optional`` says whether null is a value) and what it means."""

    key: str
    type: Any
    optional: bool
    about: About


def record_fields(record: type) -> tuple[RecordField, ...]:
    """The ``About``-annotated fields of a ``TypedDict`` record, in declaration order."""
    out = []
    for key, hint in get_type_hints(record, include_extras=True).items():
        assert get_origin(hint) is Annotated, f"{record.__name__}.{key} has no About"
        base, *meta = get_args(hint)
        [about] = [m for m in meta if isinstance(m, About)]
        if get_origin(base) in (Union, types.UnionType) and type(None) in get_args(base):
            [base] = [a for a in get_args(base) if a is not type(None)]
            out.append(RecordField(key, base, True, about))
        else:
            out.append(RecordField(key, base, False, about))
    return tuple(out)


CHUNK = record_fields(ChunkRecord)

FIELDS: dict[str, tuple[Field, ...]] = {
    "Session": _fields(
        Field("id", rest="sessionId"),
        Field("user_id", rest="userId"),
        Field("agent_id", rest="agentId"),
        "title",
        "metadata",
        Field("created_at", rest="createdAt"),
        Field("updated_at", rest="updatedAt"),
        "message_count",
        "run_count",
        "expires_at",
    ),
    "Message": _fields("id", "role", "content", "created_at", "run_id", "name", "tool_call_id"),
    "ToolCall": _fields("id", "name", "arguments"),
    "Run": _fields(
        Field("id", rest="runId"),
        Field("agent_id", rest="agentId"),
        Field("status", rest="status"),
        "input",
        Field("content", rest="content"),
        Field("error", rest="error"),
        Field("created_at", rest="createdAt"),
        "started_at",
        Field("completed_at", rest="completedAt"),
        "retrieval_diagnostics",
    ),
    "ReasoningConfig": _fields(
        Field("enabled", default=True, rest="enabled"),
        Field("effort", rest="effort"),
        Field("budget_tokens", rest="budgetTokens"),
    ),
    "TokenUsage": _fields(
        *(Field(f"{k}_tokens", rest=f"{k}Tokens") for k in ("input", "output", "reasoning")),
        Field("total_tokens", rest="totalTokens"),
    ),
    # A retrieved chunk in REST is spelled as its record.
    "RetrievedChunk": tuple(Field(f.key, default=f.about.default, rest=SAME) for f in CHUNK),
    "Viewer": (),
}


def stored(type_name: str) -> dict[str, tuple[str, Any]]:
    """GraphQL field → (record key, default) for the plain fields of ``type_name``."""
    return {f.name: (f.record, f.default) for f in FIELDS[type_name]}


# (record key, default) per type, made once: from_record runs for every object served.
_PLAIN = {name: tuple((f.record, f.default) for f in fs) for name, fs in FIELDS.items()}


def from_record(type_name: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments of a GraphQL object from a record: its plain fields, by their
    Python attribute names (the record keys), defaults standing for absent or null (some
    servers return null for a projected field the item lacks)."""
    get = record.get
    return {
        key: default if (value := get(key)) is None else value for key, default in _PLAIN[type_name]
    }


def selection(type_name: str) -> str:
    """The GraphQL selection of the fields REST shows for ``type_name``."""
    return " ".join(f.name for f in FIELDS[type_name] if f.rest is not None)


def rest_names(type_name: str) -> list[tuple[str, str]]:
    """(GraphQL name, REST name) for the fields REST shows, in the map's order."""
    return [(f.name, f.rest_name) for f in FIELDS[type_name] if f.rest_name is not None]
