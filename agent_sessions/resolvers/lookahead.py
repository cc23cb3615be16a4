"""Look-ahead: what a selection selects, and which stored fields that reads.

``Walk`` is the one selection walker: graphql-core's own field collection
(``collect_fields``/``collect_subfields``, as its executor runs it), so ``@skip`` and
``@include`` (literal or variable), fragments, inline fragments and type conditions count
exactly as execution counts them, and fields merge by response key. The planner, the
compiled builders and the resolvers' loader keys all walk through it, so they agree on
what is selected.

The tables map each GraphQL field to the stored fields it reads; a read asks storage for
the union over the fields selected, so bytes read follow the fields asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    OperationDefinitionNode,
    get_named_type,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues

from .fields import FIELDS, stored

# The fields that are a record's value as it is: GraphQL type → field → (record key, the
# value when it is absent or null), from the field map. The compiled path serves these
# straight from records.
STORED: dict[str, dict[str, tuple[str, Any]]] = {name: stored(name) for name in FIELDS}


def _reads(
    type_name: str, computed: Mapping[str, tuple[str, ...]]
) -> Mapping[str, tuple[str, ...]]:
    """GraphQL field → the stored fields it reads."""
    plain = {name: (key,) for name, (key, _) in STORED[type_name].items()}
    return plain | dict(computed)


SESSION_READS = _reads("Session", {"forkedFrom": ("forked_from",)})
MESSAGE_READS = _reads(
    "Message",
    {"run": ("run_id",), "toolCalls": ("tool_calls",), "retrievedContext": ("role", "run_id")},
)
RUN_READS = _reads(
    "Run",
    {
        "sessionId": (), "session": (), "messages": ("id",), "retrievedContext": ("id",),
        "reasoning": ("reasoning",), "usage": ("usage",),
    },
)  # fmt: skip
CHUNK_READS = _reads("RetrievedChunk", {})

# Where a connection's items are selected: under ``nodes`` and under ``edges.node``.
CONNECTION_ITEMS = (("nodes",), ("edges", "node"))

Fields = dict[str, list[FieldNode]]  # response key → the field nodes merged under it


def variables_of(values: VariableValues | Mapping[str, Any]) -> VariableValues:
    """graphql-core's ``VariableValues`` from what the caller has. Strawberry's executor
    hands resolvers the coerced values alone; the sources matter only to fragment
    variables, which the schema does not enable."""
    if isinstance(values, VariableValues):
        return values
    return VariableValues(sources={}, coerced=dict(values))


class Walk:
    """Field collection over one operation with one request's variables."""

    __slots__ = ("_fragments", "operation", "schema", "variables")

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: VariableValues | Mapping[str, Any],
        operation: OperationDefinitionNode,
    ) -> None:
        self.schema, self.operation = schema, operation
        self.variables = variables_of(variables)
        self._fragments = {name: FragmentDetails(f) for name, f in fragments.items()}

    @classmethod
    def of(cls, info: GraphQLResolveInfo) -> Walk:
        return cls(info.schema, info.fragments, info.variable_values, info.operation)

    def roots(self, query: GraphQLObjectType) -> Fields:
        """The operation's root fields, by response key, in order."""
        collected = collect_fields(
            self.schema, self._fragments, self.variables, query, self.operation
        )
        return _nodes(collected.grouped_field_set)

    def fields(self, type_: GraphQLObjectType, nodes: Sequence[FieldNode]) -> Fields:
        """The fields selected under ``nodes`` (fields of an object of ``type_``), by
        response key, in first-seen order: what the executor would complete."""
        collected = collect_subfields(
            self.schema,
            self._fragments,
            self.variables,
            self.operation,
            type_,
            [FieldDetails(node, None) for node in nodes],
        )
        return _nodes(collected.grouped_field_set)

    def names(self, type_: GraphQLObjectType, nodes: Sequence[FieldNode]) -> set[str]:
        """The names of the fields selected under ``nodes`` (aliases aside)."""
        return {found[0].name.value for found in self.fields(type_, nodes).values()}

    def child(self, type_: GraphQLObjectType, name: str) -> GraphQLObjectType:
        """The object type field ``name`` of ``type_`` returns (lists and non-null aside)."""
        named = get_named_type(type_.fields[name].type)
        assert isinstance(named, GraphQLObjectType), f"{type_.name}.{name} is not an object"
        return named

    def groups(
        self, type_: GraphQLObjectType, nodes: Sequence[FieldNode], path: Iterable[str]
    ) -> list[tuple[GraphQLObjectType, list[FieldNode]]]:
        """The field groups (one per response key) reached from ``nodes`` by the field
        names of ``path``, each with the type its items are."""
        level = [(type_, list(nodes))]
        for name in path:
            level = [
                (self.child(t, name), found)
                for t, group in level
                for found in self.fields(t, group).values()
                if found[0].name.value == name
            ]
        return level

    def items(
        self, connection: GraphQLObjectType, nodes: Sequence[FieldNode]
    ) -> list[tuple[GraphQLObjectType, list[FieldNode]]]:
        """A connection's item groups: those under ``nodes`` and under ``edges.node``."""
        return [
            found for path in CONNECTION_ITEMS for found in self.groups(connection, nodes, path)
        ]

    def reads(
        self,
        type_: GraphQLObjectType,
        nodes: Sequence[FieldNode],
        table: Mapping[str, tuple[str, ...]],
        paths: Iterable[tuple[str, ...]] = ((),),
    ) -> frozenset[str]:
        """The stored fields read by what is selected at each of ``paths`` below ``nodes``."""
        return frozenset(
            f
            for path in paths
            for t, group in self.groups(type_, nodes, path)
            for name in self.names(t, group)
            for f in table.get(name, ())
        )


def _nodes(grouped: Mapping[str, list[FieldDetails]]) -> Fields:
    return {key: [d.node for d in details] for key, details in grouped.items()}


class Selection:
    """One context's look-ahead: the walker of the operation being executed, and what was
    computed from the current field's nodes (sibling resolvers of a list share their field
    nodes). A context can serve several operations in turn (the REST shim pages through
    one), so both are per operation and variables."""

    __slots__ = ("_cache", "_for", "_walk")

    def __init__(self) -> None:
        self._cache: dict[tuple[object, ...], object] = {}
        self._walk: Walk | None = None
        self._for: tuple[object, object] | None = None

    def walk(self, info: GraphQLResolveInfo) -> Walk:
        current = self._for
        if (
            current is None
            or current[0] is not info.operation
            or current[1] is not info.variable_values
        ):
            # held, not just compared by id, so a later execution cannot reuse the ids
            self._for = (info.operation, info.variable_values)
            self._walk = Walk.of(info)
            self._cache.clear()
        assert self._walk is not None
        return self._walk

    def of(self, info: GraphQLResolveInfo, key: str, compute: Callable[[Walk], Any]) -> Any:
        """``compute(walk)``, cached for the current field's nodes and ``key``."""
        walk = self.walk(info)
        cache_key = (key, *map(id, info.field_nodes))
        try:
            return self._cache[cache_key]
        except KeyError:
            value = compute(walk)
            self._cache[cache_key] = value
            return value
