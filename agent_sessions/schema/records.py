"""GraphQL types built from a record's declaration (``storage.model.About`` annotations,
read by ``resolvers.fields.record_fields``): the output type and the input type, their
fields in the record's order with its descriptions, so a field added to the record is in
both without another line."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, get_origin

import strawberry
from strawberry import ID, UNSET

from agent_sessions.resolvers.fields import RecordField

from .scalars import JSON


def graphql_type(f: RecordField) -> Any:
    """The Python type Strawberry reads for ``f``: identifiers are ``ID``, JSON objects
    ``JSON``, the rest as declared; nullable where null is a value."""
    if f.about.identifier:
        base: Any = ID
    elif f.type is dict or get_origin(f.type) is dict:
        base = JSON
    else:
        base = f.type
    return base | None if f.optional else base


def output_type(name: str, fields: Iterable[RecordField], description: str, **methods: Any) -> Any:
    """A Strawberry object type with a plain field per record field (and ``methods``)."""
    fields = tuple(fields)
    namespace: dict[str, Any] = {
        "__annotations__": {f.key: graphql_type(f) for f in fields},
        "__module__": "agent_sessions.schema.types",
        **{f.key: strawberry.field(description=f.about.description) for f in fields},
        **methods,
    }
    return strawberry.type(type(name, (), namespace), description=description)


def input_type(name: str, fields: Iterable[RecordField], description: str, base: type) -> Any:
    """A Strawberry input with a field per record field: required when the record has no
    null and no default for it; otherwise optional, left out meaning the default."""
    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {"__module__": "agent_sessions.schema.inputs"}
    for f in fields:
        text = f.about.input or f.about.description
        kind = graphql_type(f)
        if f.optional or f.about.default is not None:
            annotations[f.key] = kind if f.optional else kind | None
            default = UNSET if f.about.default is None else f.about.default
            namespace[f.key] = strawberry.field(default=default, description=text)
        else:
            annotations[f.key] = kind
            namespace[f.key] = strawberry.field(description=text)
    namespace["__annotations__"] = annotations
    return strawberry.input(type(name, (base,), namespace), description=description)
