"""The field map is the one declaration of each plain field: the GraphQL types, the stored
records, the compiled path and the REST shapes all agree with it (a field added in one
place and not the others fails here, before any request does)."""

from __future__ import annotations

import pytest
from graphql import GraphQLObjectType

from agent_sessions.resolvers.fields import FIELDS, camel, from_record, rest_names, selection
from agent_sessions.resolvers.lookahead import STORED
from agent_sessions.rest.shapes import Chunk, RunSummary, SessionSummary
from agent_sessions.schema import build_schema
from agent_sessions.storage import model

SCHEMA = build_schema()._schema
RECORDS = {
    "Session": model.SessionRecord,
    "Message": model.MessageRecord,
    "ToolCall": model.ToolCallRecord,
    "Run": model.RunRecord,
    "ReasoningConfig": model.ReasoningRecord,
    "TokenUsage": model.UsageRecord,
    "RetrievedChunk": model.ChunkRecord,
}


@pytest.mark.parametrize("type_name", sorted(RECORDS))
def test_every_plain_field_is_a_graphql_field_and_a_record_key(type_name: str) -> None:
    graphql_type = SCHEMA.type_map[type_name]
    assert isinstance(graphql_type, GraphQLObjectType)
    record_keys = set(RECORDS[type_name].__annotations__)
    for f in FIELDS[type_name]:
        assert f.name in graphql_type.fields, f
        assert f.record in record_keys, f
    assert STORED[type_name] == {f.name: (f.record, f.default) for f in FIELDS[type_name]}


def test_a_chunk_is_the_same_fields_everywhere() -> None:
    # RetrievedChunk has only plain fields: every GraphQL field, record key and REST key.
    chunk = SCHEMA.type_map["RetrievedChunk"]
    assert isinstance(chunk, GraphQLObjectType)
    assert {f.name for f in FIELDS["RetrievedChunk"]} == set(chunk.fields)
    assert {f.record for f in FIELDS["RetrievedChunk"]} == set(model.ChunkRecord.__annotations__)
    assert [rest for _, rest in rest_names("RetrievedChunk")] == list(Chunk.model_fields)
    assert selection("RetrievedChunk").split() == [camel(k) for k in Chunk.model_fields]


def test_rest_shapes_take_their_names_from_the_map() -> None:
    assert {rest for _, rest in rest_names("Session")} == set(SessionSummary.model_fields)
    computed = {"sessionId", "reasoning", "usage"}  # given by the REST shim itself
    assert {rest for _, rest in rest_names("Run")} == set(RunSummary.model_fields) - computed


def test_defaults_stand_for_absent_and_null_values() -> None:
    kwargs = from_record("RetrievedChunk", {"id": "c", "text": "t", "included_in_context": None})
    assert kwargs["included_in_context"] is True
    assert kwargs["score"] is None
    assert from_record("ReasoningConfig", {})["enabled"] is True
