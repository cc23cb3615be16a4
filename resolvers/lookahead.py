"""Look-ahead: which stored fields a selection set needs.

The tables map each GraphQL field to the stored fields it reads; a read asks storage for
the union over the fields selected, so bytes read follow the fields asked for. Fragments
are followed; ``@skip``/``@include`` are ignored (reading a field too many is harmless).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from graphql import FieldNode, FragmentSpreadNode, GraphQLResolveInfo, InlineFragmentNode
from graphql.language import FragmentDefinitionNode, SelectionSetNode

SESSION_READS: Mapping[str, tuple[str, ...]] = {
    "id": (),
    "userId": ("user_id",),
    "agentId": ("agent_id",),
    "title": ("title",),
    "metadata": ("metadata",),
    "createdAt": ("created_at",),
    "updatedAt": ("updated_at",),
    "messageCount": ("message_count",),
    "runCount": ("run_count",),
}
MESSAGE_READS: Mapping[str, tuple[str, ...]] = {
    "id": ("id",),
    "role": ("role",),
    "content": ("content",),
    "createdAt": ("created_at",),
    "runId": ("run_id",),
    "run": ("run_id",),
    "name": ("name",),
    "toolCalls": ("tool_calls",),
    "toolCallId": ("tool_call_id",),
    "retrievedContext": ("role", "run_id"),
}
RUN_READS: Mapping[str, tuple[str, ...]] = {
    "id": ("id",),
    "sessionId": (),
    "session": (),
    "agentId": ("agent_id",),
    "status": ("status",),
    "input": ("input",),
    "content": ("content",),
    "error": ("error",),
    "reasoning": ("reasoning",),
    "usage": ("usage",),
    "createdAt": ("created_at",),
    "startedAt": ("started_at",),
    "completedAt": ("completed_at",),
    "messages": ("id",),
    "retrievalDiagnostics": ("retrieval_diagnostics",),
    "retrievedContext": ("id",),
}
CHUNK_READS: Mapping[str, tuple[str, ...]] = {
    "id": ("id",),
    "text": ("text",),
    "score": ("score",),
    "retrievalScore": ("retrieval_score",),
    "rerankerScore": ("reranker_score",),
    "sourceId": ("source_id",),
    "sourceName": ("source_name",),
    "knowledgeBaseId": ("knowledge_base_id",),
    "kbName": ("kb_name",),
    "indexingStrategy": ("indexing_strategy",),
    "meta": ("meta",),
    "includedInContext": ("included_in_context",),
}

CONNECTION_ITEMS = (("nodes",), ("edges", "node"))


def _collect(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    out: dict[str, list[FieldNode]],
) -> None:
    if selection_set is None:
        return
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            out.setdefault(sel.name.value, []).append(sel)
        elif isinstance(sel, InlineFragmentNode):
            _collect(sel.selection_set, fragments, out)
        elif isinstance(sel, FragmentSpreadNode):
            fragment = fragments.get(sel.name.value)
            if fragment is not None:
                _collect(fragment.selection_set, fragments, out)


def children(
    nodes: Iterable[FieldNode], fragments: Mapping[str, FragmentDefinitionNode]
) -> dict[str, list[FieldNode]]:
    """The fields selected under ``nodes``, by field name (not alias)."""
    out: dict[str, list[FieldNode]] = {}
    for node in nodes:
        _collect(node.selection_set, fragments, out)
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

    __slots__ = ("_cache", "_fragments")

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
