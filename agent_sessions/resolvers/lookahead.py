"""Look-ahead: which stored fields a selection set needs.

The tables map each GraphQL field to the stored fields it reads; a read asks storage for
the union over the fields selected, so bytes read follow the fields asked for. Fragments
are followed; ``@skip``/``@include`` are ignored (reading a field too many is harmless).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from graphql import FieldNode, FragmentSpreadNode, GraphQLResolveInfo, InlineFragmentNode
from graphql.language import FragmentDefinitionNode, SelectionSetNode

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

CONNECTION_ITEMS = (("nodes",), ("edges", "node"))


def collect_fields(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    out: dict[str, list[FieldNode]],
    *,
    by_alias: bool = False,
) -> dict[str, list[FieldNode]]:
    """The fields under ``selection_set`` (following fragments) into ``out``, by field
    name, or with ``by_alias`` by response key as the executor merges them."""
    for sel in selection_set.selections if selection_set is not None else ():
        if isinstance(sel, FieldNode):
            key = sel.alias.value if by_alias and sel.alias else sel.name.value
            out.setdefault(key, []).append(sel)
        elif isinstance(sel, InlineFragmentNode):
            collect_fields(sel.selection_set, fragments, out, by_alias=by_alias)
        elif isinstance(sel, FragmentSpreadNode):
            fragment = fragments.get(sel.name.value)
            if fragment is not None:
                collect_fields(fragment.selection_set, fragments, out, by_alias=by_alias)
    return out


def children(
    nodes: Iterable[FieldNode], fragments: Mapping[str, FragmentDefinitionNode]
) -> dict[str, list[FieldNode]]:
    """The fields selected under ``nodes``, by field name (not alias)."""
    out: dict[str, list[FieldNode]] = {}
    for node in nodes:
        collect_fields(node.selection_set, fragments, out)
    return out


def descend(
    nodes: Iterable[FieldNode],
    fragments: Mapping[str, FragmentDefinitionNode],
    paths: Iterable[tuple[str, ...]],
) -> dict[str, list[FieldNode]]:
    """The fields selected under each of ``paths`` below ``nodes``, merged."""
    out: dict[str, list[FieldNode]] = {}
    for path in paths:
        level = list(nodes)
        for name in path:
            level = children(level, fragments).get(name, [])
        for name, found in children(level, fragments).items():
            out.setdefault(name, []).extend(found)
    return out


def reads(selected: Iterable[str], table: Mapping[str, tuple[str, ...]]) -> frozenset[str]:
    """The stored fields that the selected GraphQL fields read."""
    return frozenset(f for name in selected for f in table.get(name, ()))


class Selection:
    """The current field's selection, computed once per field node set and request."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[tuple[object, ...], object] = {}

    def of(self, info: GraphQLResolveInfo, key: str, compute) -> object:
        """``compute(field_nodes, fragments)``, cached for these field nodes and ``key``."""
        cache_key = (key, *map(id, info.field_nodes))
        try:
            return self._cache[cache_key]
        except KeyError:
            value = compute(info.field_nodes, info.fragments)
            self._cache[cache_key] = value
            return value
