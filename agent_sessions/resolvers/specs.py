"""Field arguments → what to read: the one place that turns a connection's or a chunk
field's arguments into storage specs. Normal resolvers, the read planner and compiled
plans all build their specs here, so the same arguments always make the same (equal,
hashable) spec, which is what lets a primed loader answer a nested resolver."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import FieldNode, GraphQLObjectType
from graphql.execution.values import VariableValues, get_argument_values

from agent_sessions.errors import BadInput
from agent_sessions.storage.model import ChunkSpec, MessageSpec, RunSpec, Window

from .cursors import decode_position

ITEMS_DEFAULT, ITEMS_MAX = 100, 1000


def bounded(name: str, value: int | None, bound: int) -> None:
    if value is not None and not 0 <= value <= bound:
        raise BadInput(f"{name} must be between 0 and {bound}, got {value}")


def window(kind: str, args: Mapping[str, Any]) -> Window:
    """Check a messages/runs connection's arguments and make a window over positions.
    Neither ``first`` nor ``last``: the first 100, or the last 100 before ``before``."""
    first, last, after, before = args["first"], args["last"], args["after"], args["before"]
    bounded("first", first, ITEMS_MAX)
    bounded("last", last, ITEMS_MAX)
    a, b = decode_position(kind, after, "after"), decode_position(kind, before, "before")
    if first is None and last is None:
        if before is not None and after is None:
            last = ITEMS_DEFAULT
        else:
            first = ITEMS_DEFAULT
    return Window(first=first, after=a, last=last, before=b)


def _values(enums: list[Any] | None) -> tuple[str, ...] | None:
    return None if enums is None else tuple(sorted({e.value for e in enums}))


def message_spec(args: Mapping[str, Any], fields: frozenset[str] | None) -> MessageSpec:
    """``Session.messages(first, after, last, before, roles)`` reading ``fields``."""
    return MessageSpec(window=window("m", args), roles=_values(args["roles"]), fields=fields)


ALL_CHUNKS = ChunkSpec()


def run_spec(
    args: Mapping[str, Any], fields: frozenset[str] | None, chunks: ChunkSpec = ALL_CHUNKS
) -> RunSpec:
    """``Session.runs(first, after, last, before, status)`` reading ``fields`` (and, when
    they include ``retrieved_context``, each run's chunks by ``chunks``)."""
    return RunSpec(window("r", args), _values(args["status"]), fields, chunks)


def chunk_spec(args: Mapping[str, Any], fields: frozenset[str] | None) -> ChunkSpec:
    """``retrievedContext(includedOnly, minScore)`` reading ``fields``."""
    included_only, min_score = bool(args["includedOnly"]), args["minScore"]
    return ChunkSpec(fields=fields, included_only=included_only, min_score=min_score)


def argument_values(
    node: FieldNode, parent: GraphQLObjectType, variables: VariableValues | dict[str, Any]
) -> dict[str, Any]:
    """A field's arguments as its resolver receives them (graphql-core's coercion), from
    the document and the request's coerced variables; ``None`` for those left out without
    a default. Raises ``GraphQLError`` for a value the argument's type refuses."""
    if isinstance(variables, dict):
        # Strawberry's executor hands resolvers the coerced values alone; the sources
        # matter only to fragment variables, which the schema does not enable.
        variables = VariableValues(sources={}, coerced=variables)
    definition = parent.fields[node.name.value]
    return dict.fromkeys(definition.args) | get_argument_values(definition, node, variables)
