"""One read per session: look ahead from ``session(id)`` into its nested connections and
runs, read them all in a single aggregate, and prime the request's loaders with the
answers, so the nested resolvers find them without another round trip.

The keys primed are exactly the ones the nested resolvers compute from their own
arguments and selections (same functions, same inputs), so a primed answer is used and a
selection this planner does not foresee is simply loaded as usual: the plan only ever
saves round trips, it never changes a result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
)
from graphql.language import FragmentDefinitionNode

from agent_sessions.errors import BadInput
from agent_sessions.storage.model import ChunkSpec, MessageSpec, RunSpec, SessionRead, SessionView

from .lookahead import (
    CHUNK_READS,
    CONNECTION_ITEMS,
    MESSAGE_READS,
    RUN_READS,
    collect_fields,
    reads,
)
from .specs import argument_values, chunk_spec, message_spec, run_spec

Fragments = Mapping[str, FragmentDefinitionNode]


def _merged(nodes: list[FieldNode], fragments: Fragments) -> dict[str, list[FieldNode]]:
    out: dict[str, list[FieldNode]] = {}
    for node in nodes:
        for key, found in collect_fields(node.selection_set, fragments, {}, by_alias=True).items():
            out.setdefault(key, []).extend(found)
    return out


@dataclass
class SessionPlan:
    """The read, and for each part of it the loader key its answer is primed under."""

    read: SessionRead
    message_keys: list[MessageSpec] = field(default_factory=list)
    run_keys: list[RunSpec] = field(default_factory=list)
    lookup_keys: list[tuple[str, frozenset[str]]] = field(default_factory=list)


def _chunk_specs(
    nodes: list[FieldNode], parent: GraphQLObjectType, info: GraphQLResolveInfo
) -> set[ChunkSpec]:
    """The chunk filters the ``retrievedContext`` fields under ``nodes`` will ask for."""
    specs = set()
    for group in _merged(nodes, info.fragments).values():
        if group[0].name.value != "retrievedContext":
            continue
        args = argument_values(group[0], parent, info.variable_values)
        specs.add(chunk_spec(args, reads(_names(group, info.fragments), CHUNK_READS)))
    return specs


def _names(nodes: list[FieldNode], fragments: Fragments) -> set[str]:
    return {found[0].name.value for found in _merged(nodes, fragments).values()}


def _items(group: list[FieldNode], fragments: Fragments) -> list[list[FieldNode]]:
    """The item selections of a connection: under ``nodes`` and under ``edges.node``."""
    out = []
    for path in CONNECTION_ITEMS:
        level = group
        for name in path:
            level = [
                n
                for found in _merged(level, fragments).values()
                for n in found
                if n.name.value == name
            ]
        if level:
            out.append(level)
    return out


def plan_session(info: GraphQLResolveInfo, session_fields: frozenset[str]) -> SessionPlan | None:
    """The single read for ``session(id)``'s selection, or ``None`` when it selects nothing
    nested (then the batched ``SessionByIdLoader`` is the cheaper path)."""

    schema = info.schema
    session_type = schema.type_map["Session"]
    message_type = schema.type_map["Message"]
    run_type = schema.type_map["Run"]
    assert isinstance(session_type, GraphQLObjectType)
    assert isinstance(message_type, GraphQLObjectType)
    assert isinstance(run_type, GraphQLObjectType)
    fragments = info.fragments
    messages: list[tuple[MessageSpec, tuple[ChunkSpec, ...]]] = []
    plan = SessionPlan(SessionRead(session_fields))
    runs: list[RunSpec] = []
    lookups: list[tuple[str, RunSpec]] = []
    for group in _merged(list(info.field_nodes), fragments).values():
        name = group[0].name.value
        if name not in ("messages", "runs", "run"):
            continue
        try:
            args = argument_values(group[0], session_type, info.variable_values)
        except GraphQLError:
            continue  # left to the field's own resolution, which reports it at its path
        if name == "run":
            fields = reads(_names(group, fragments), RUN_READS)
            specs = _chunk_specs(group, run_type, info)
            chunks = next(iter(specs)) if len(specs) == 1 else None
            read_fields = fields | {"id", "retrieved_context"} if chunks else fields | {"id"}
            lookups.append((args["id"], RunSpec(fields=read_fields, chunks=chunks or ChunkSpec())))
            plan.lookup_keys.append((args["id"], fields))
            continue
        items = _items(group, fragments)
        names = set().union(*(_names(i, fragments) for i in items)) if items else set()
        item_type = message_type if name == "messages" else run_type
        specs = set().union(*(_chunk_specs(i, item_type, info) for i in items)) if items else set()
        try:
            if name == "messages":
                message_key = message_spec(args, reads(names, MESSAGE_READS))
            else:
                run_key = run_spec(args, reads(names, RUN_READS))
        except BadInput:
            continue  # left to the field's own resolver, which reports it at its own path
        if name == "messages":
            messages.append((message_key, tuple(sorted(specs, key=repr))))
            plan.message_keys.append(message_key)
        else:
            chunks = next(iter(specs)) if len(specs) == 1 else None
            read = run_key
            if chunks is not None:
                fields = (run_key.fields or frozenset()) | {"id", "retrieved_context"}
                read = RunSpec(run_key.window, run_key.statuses, fields, chunks)
            runs.append(read)
            plan.run_keys.append(run_key)
    if not (messages or runs or lookups):
        return None
    plan.read = SessionRead(session_fields, tuple(messages), tuple(runs), tuple(lookups))
    return plan


def plan_run(info: GraphQLResolveInfo, run_id: str, fields: frozenset[str]) -> SessionPlan | None:
    """For ``run(sessionId, runId)`` selecting its chunks: the run and its chunks in one
    read (a session read that looks up only that run); ``None`` otherwise."""
    run_type = info.schema.type_map["Run"]
    assert isinstance(run_type, GraphQLObjectType)
    specs = _chunk_specs(list(info.field_nodes), run_type, info)
    if len(specs) != 1:
        return None
    lookup = RunSpec(fields=fields | {"id", "retrieved_context"}, chunks=next(iter(specs)))
    plan = SessionPlan(SessionRead(frozenset(), run_lookups=((run_id, lookup),)))
    plan.lookup_keys.append((run_id, fields))
    return plan


def prime(loaders: Any, session_id: str, plan: SessionPlan, view: SessionView) -> None:
    """Hand the answers to the loaders under the keys the nested resolvers will use."""
    for message_key, page in zip(plan.message_keys, view.message_pages, strict=True):
        loaders.messages.prime((session_id, message_key), page)
    for run_key, page in zip(plan.run_keys, view.run_pages, strict=True):
        loaders.runs.prime((session_id, run_key), page)
    for (run_id, fields), run in zip(plan.lookup_keys, view.runs, strict=True):
        loaders.run.prime((session_id, run_id, fields), run)
    for (run_id, chunk_key), chunks in view.chunks.items():
        loaders.chunks.prime((session_id, run_id, chunk_key), chunks)
