"""The served schema against the pinned one: every pinned type, field, argument, default
and nullability is exactly as pinned; anything more is an addition, never a change. The
served schema is read from the SDL that ``agent-sessions schema`` prints, the document
client code generation uses; every type, field and argument in it is described."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    build_schema,
    value_from_ast_untyped,
)
from graphql.utilities import ast_from_value

from agent_sessions.cli import schema_sdl
from agent_sessions.schema import build_schema as build_served_schema

PINNED = build_schema((Path(__file__).parent / "pinned_schema.graphql").read_text())
SERVED = build_schema(schema_sdl())


def _default(arg_or_field: object, type_: object) -> object:
    """The default as a plain value, whether given as a Python value (served) or as an SDL
    literal (pinned); ``"no default"`` when there is none."""
    value = arg_or_field.default_value  # type: ignore[attr-defined]
    if repr(value) != "Undefined":
        node = ast_from_value(value, type_)  # type: ignore[arg-type]
        return value_from_ast_untyped(node) if node is not None else value
    default = getattr(arg_or_field, "default", None)
    literal = getattr(default, "literal", None)
    if literal is not None:
        return value_from_ast_untyped(literal)
    return "no default"


def _named_types(schema: GraphQLSchema) -> dict[str, object]:
    return {name: t for name, t in schema.type_map.items() if not name.startswith("__")}


@pytest.mark.parametrize("name", sorted(_named_types(PINNED)))
def test_pinned_type_is_served_exactly(name: str) -> None:
    pinned = PINNED.type_map[name]
    served = SERVED.type_map.get(name)
    assert served is not None, f"{name} is missing"
    assert isinstance(served, type(pinned))
    if isinstance(pinned, GraphQLEnumType):
        assert set(served.values) == set(pinned.values)  # type: ignore[union-attr]
    if isinstance(pinned, GraphQLScalarType):
        return
    if isinstance(pinned, (GraphQLObjectType, GraphQLInputObjectType)):
        for field_name, field in pinned.fields.items():
            ours = served.fields.get(field_name)  # type: ignore[union-attr]
            assert ours is not None, f"{name}.{field_name} is missing"
            assert str(ours.type) == str(field.type), f"{name}.{field_name}"
            if isinstance(pinned, GraphQLInputObjectType):
                assert _default(ours, ours.type) == _default(field, field.type), (
                    f"{name}.{field_name} default"
                )
                continue
            for arg_name, arg in field.args.items():
                our_arg = ours.args.get(arg_name)
                assert our_arg is not None, f"{name}.{field_name}({arg_name}) is missing"
                assert str(our_arg.type) == str(arg.type), f"{name}.{field_name}({arg_name})"
                assert _default(our_arg, our_arg.type) == _default(arg, arg.type), (
                    f"{name}.{field_name}({arg_name}) default"
                )
            added = set(ours.args) - set(field.args)
            for arg_name in added:
                assert not str(ours.args[arg_name].type).endswith("!"), (
                    f"added {name}.{field_name}({arg_name}) is required"
                )
        if isinstance(pinned, GraphQLInputObjectType):
            for field_name in set(served.fields) - set(pinned.fields):  # type: ignore[union-attr]
                added = served.fields[field_name]  # type: ignore[union-attr]
                assert not str(added.type).endswith("!"), (
                    f"added input field {name}.{field_name} is required"
                )


# Issue 17, "Beyond the reference" (README).
BEYOND_TYPES = {"ForkedFrom", "SearchHit", "SearchHitEdge", "SearchHitConnection", "SearchOrder"}
BEYOND_MUTATIONS = {"updateSession", "deleteRun", "forkSession"}


def test_additions_are_the_documented_ones() -> None:
    added_types = set(_named_types(SERVED)) - set(_named_types(PINNED))
    assert added_types == {"SessionPage", "Subscription", "RunEvent", "RunEventType"} | BEYOND_TYPES
    query = SERVED.type_map["Query"]
    assert set(query.fields) - set(PINNED.type_map["Query"].fields) == {"sessionPage", "search"}  # type: ignore[attr-defined]
    assert set(query.fields["sessions"].args) - {"filter", "first", "after"} == {"last", "before"}  # type: ignore[attr-defined]
    mutation = SERVED.type_map["Mutation"]
    added_mutations = set(mutation.fields) - set(PINNED.type_map["Mutation"].fields)  # type: ignore[attr-defined]
    assert added_mutations == {"startRun", "cancelRun"} | BEYOND_MUTATIONS
    assert set(SERVED.type_map["Subscription"].fields) == {"runEvents"}  # type: ignore[attr-defined]
    assert set(mutation.fields["runAgent"].args) - set(
        PINNED.type_map["Mutation"].fields["runAgent"].args
    ) == {"userId"}  # type: ignore[attr-defined]


async def test_introspection_is_on_by_default_and_off_with_the_setting() -> None:
    query = "{ __schema { queryType { name } } }"
    on = await build_served_schema().execute(query)
    assert on.data == {"__schema": {"queryType": {"name": "Query"}}}
    off = await build_served_schema(introspection=False).execute(query)
    assert off.data is None
    assert "introspection" in off.errors[0].message.lower()
    assert off.errors[0].extensions == {"code": "BAD_USER_INPUT"}
    # Everything but introspection still works.
    assert (await build_served_schema(introspection=False).execute("{ __typename }")).data == {
        "__typename": "Query"
    }


BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}


def _described() -> list[tuple[str, object]]:
    """Every type, field, argument and enum value of the printed schema, by name."""
    items: list[tuple[str, object]] = []
    for name, type_ in _named_types(SERVED).items():
        if name in BUILT_IN:
            continue
        items.append((name, type_))
        if isinstance(type_, GraphQLEnumType):
            items += [(f"{name}.{v}", value) for v, value in type_.values.items()]
        if isinstance(type_, (GraphQLObjectType, GraphQLInputObjectType)):
            for field_name, field in type_.fields.items():
                items.append((f"{name}.{field_name}", field))
                for arg_name, arg in getattr(field, "args", {}).items():
                    items.append((f"{name}.{field_name}({arg_name})", arg))
    return items


def test_every_type_field_and_argument_has_a_description() -> None:
    items = _described()
    kinds = {type(item) for _, item in items}
    assert {GraphQLObjectType, GraphQLField, GraphQLArgument, GraphQLInputField} <= kinds
    undescribed = [name for name, item in items if not (item.description or "").strip()]  # type: ignore[attr-defined]
    assert undescribed == [], f"{len(undescribed)} of {len(items)} undescribed"
    assert len(items) > 200
