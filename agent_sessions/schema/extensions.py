"""Error codes for every GraphQL error, with internal errors masked and logged."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import strawberry
from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES, validate_document
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from agent_sessions.errors import DatabaseUnavailable, ServiceError
from agent_sessions.resolvers.compiled import CompiledExecutor

log = logging.getLogger("agent_sessions.graphql")

INTERNAL_MESSAGE = "Internal server error"


def coded(error: GraphQLError, request_id: str | None) -> GraphQLError:
    """The error as a client may see it, with ``extensions.code``."""
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    if isinstance(original, DatabaseUnavailable):
        log.warning("request %s: database unavailable: %s", request_id, original.__cause__)
    if isinstance(original, ServiceError):
        message, extensions = original.message, original.extensions
    elif error.path is None:
        # Raised before execution: syntax, validation, limits, variable coercion. The
        # message describes the client's document, so it stays.
        message, extensions = error.message, {"code": "BAD_USER_INPUT"}
    else:
        log.error(
            "request %s: internal error at %s",
            request_id,
            ".".join(map(str, error.path)),
            exc_info=original,
        )
        message, extensions = INTERNAL_MESSAGE, {"code": "INTERNAL", "requestId": request_id}
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class CodedSchema(strawberry.Schema):
    """A Schema whose every result carries ``extensions.code`` on its errors, whichever
    stage raised them (parse, validation, execution), for HTTP and REST callers alike;
    and which answers the queries it can through compiled plans (``compiled``)."""

    compiled: CompiledExecutor | None = None

    async def execute(  # type: ignore[override]
        self,
        query: str | None = None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any = None,
        root_value: Any = None,
        operation_name: str | None = None,
        **kwargs: Any,
    ) -> ExecutionResult:
        # A subscription runs through ``stream`` (the WebSocket); ``execute`` would run it as
        # a query, so it is refused here as an operation type this path does not serve.
        allowed = kwargs.get("allowed_operation_types") or DEFAULT_ALLOWED_OPERATION_TYPES
        kwargs["allowed_operation_types"] = set(allowed) - {OperationType.SUBSCRIPTION}
        if self.compiled is not None and query is not None and context_value is not None:
            data = await self.compiled.execute(
                query, variable_values, context_value, operation_name
            )
            if data is not None:
                return ExecutionResult(data=data, errors=None, extensions={})
        result = await super().execute(
            query, variable_values, context_value, root_value, operation_name, **kwargs
        )
        if result.errors:
            request_id = getattr(context_value, "request_id", None)
            result.errors = [coded(e, request_id) for e in result.errors]
        return result

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Business errors are answers, not incidents; ``coded`` logs the internal ones."""


# Documents up to this size have their parse and validation cached; a cache keyed by
# larger ones (comments are free of the token limit) would hold megabytes per entry.
CACHED_DOCUMENT_CHARS = 64 * 1024


@lru_cache(maxsize=512)
def _parse(query: str, **options: Any) -> DocumentNode:
    return parse(query, **options)


@lru_cache(maxsize=512)
def _validate(
    schema: GraphQLSchema, document: DocumentNode, rules: tuple[Any, ...]
) -> list[GraphQLError]:
    return validate_document(schema, document, rules)


class DocumentCache(SchemaExtension):
    """Strawberry's ParserCache and ValidationCache in one, for documents of bounded size."""

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and len(context.query) <= CACHED_DOCUMENT_CHARS:
            context.graphql_document = _parse(context.query, **context.parse_options)
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None and len(context.query) <= CACHED_DOCUMENT_CHARS:
            assert context.graphql_document is not None
            context.pre_execution_errors = _validate(
                context.schema._schema, context.graphql_document, context.validation_rules
            )
        yield
