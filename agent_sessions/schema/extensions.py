"""The schema's own steps in Strawberry's pipeline: one cache of valid documents (with
their compiled plans), compiled execution as an ``on_execute`` extension, and error codes
on every result as a result-processing extension (Strawberry's ``MaskErrors`` pattern).

Because compiled answers are set as ``execution_context.result`` (Strawberry then skips
its executor), every other extension (limits, tracing, ``MaskErrors``) sees them too.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import strawberry
from graphql import DocumentNode, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import DEFAULT_ALLOWED_OPERATION_TYPES
from strawberry.types import ExecutionResult
from strawberry.types.graphql import OperationType

from agent_sessions.errors import DatabaseUnavailable, ServiceError
from agent_sessions.resolvers.compiled import CompiledExecutor, DocumentPlans

log = logging.getLogger("agent_sessions.graphql")

INTERNAL_MESSAGE = "Internal server error"

# A parsed document weighs about 100 bytes per character of its text (REVIEW.md measured
# 6.1 MB for a 58.8 KB document), so the cache is bounded by the summed length of the
# texts it holds: 256 KiB of text keeps the trees under ~26 MB. A document over 8 KiB of
# text (comments are free of the token limit) is parsed and validated each time instead.
CACHE_TEXT_CHARS = 256 * 1024
CACHED_DOCUMENT_CHARS = 8 * 1024


def coded(error: GraphQLError, request_id: str | None) -> GraphQLError:
    """The error as a client may see it, with ``extensions.code``. A ``ServiceError``
    stays the ``original_error`` (never shown to clients) so the REST shim can read its
    status from the class."""
    original = error.original_error
    while isinstance(original, GraphQLError) and original.original_error is not None:
        original = original.original_error
    if isinstance(original, DatabaseUnavailable):
        log.warning("request %s: database unavailable: %s", request_id, original.__cause__)
    kept: Exception | None = None
    if isinstance(original, ServiceError):
        message, extensions, kept = original.message, original.extensions, original
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
        original_error=kept,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Every error of a result gets ``extensions.code``, whichever stage raised it (parse,
    validation, execution, compiled or not); internal ones are masked and logged."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            request_id = getattr(self.execution_context.context, "request_id", None)
            result.errors = [coded(e, request_id) for e in result.errors]


@dataclass(slots=True)
class CachedDocument:
    document: DocumentNode
    plans: DocumentPlans = field(default_factory=DocumentPlans)


class Documents:
    """Documents that parsed and validated, by text, least recently used out first; the
    texts held sum to at most ``max_chars``. Invalid documents are never kept: a client
    sending new bad ones costs itself parse time, not our memory."""

    def __init__(
        self, max_chars: int = CACHE_TEXT_CHARS, max_document: int = CACHED_DOCUMENT_CHARS
    ) -> None:
        self.max_chars, self.max_document = max_chars, max_document
        self._entries: OrderedDict[str, CachedDocument] = OrderedDict()
        self.chars = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, query: str | None) -> CachedDocument | None:
        entry = self._entries.get(query) if query is not None else None
        if entry is not None:
            self._entries.move_to_end(query)  # type: ignore[arg-type]
        return entry

    def add(self, query: str, document: DocumentNode) -> None:
        if len(query) > self.max_document or query in self._entries:
            return
        self._entries[query] = CachedDocument(document)
        self.chars += len(query)
        while self.chars > self.max_chars:
            dropped, _ = self._entries.popitem(last=False)
            self.chars -= len(dropped)


class DocumentCache(SchemaExtension):
    """Strawberry's ParserCache and ValidationCache in one, for valid documents only."""

    def __init__(self, documents: Documents) -> None:
        self.documents = documents
        self.hit = False

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        entry = self.documents.get(context.query)
        if entry is not None:
            context.graphql_document = entry.document
            self.hit = True
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if self.hit:
            context.pre_execution_errors = []  # validated when it was cached
        yield
        if not self.hit and not context.pre_execution_errors and context.query is not None:
            assert context.graphql_document is not None
            self.documents.add(context.query, context.graphql_document)


class CompiledExecution(SchemaExtension):
    """Answers the queries a compiled plan serves, before Strawberry's executor runs (it
    skips itself when ``execution_context.result`` is set). Only cached documents are
    compiled: their plans live beside them."""

    def __init__(self, executor: CompiledExecutor, documents: Documents) -> None:
        self.executor, self.documents = executor, documents

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context
        entry = self.documents.get(context.query)
        if entry is not None and context.context is not None:
            result = await self.executor.execute(
                entry.document,
                context.operation_name,
                context.variables,
                context.context,
                entry.plans,
            )
            if result is not None:
                context.result = result
        yield


class ServiceSchema(strawberry.Schema):
    """The schema; ``documents`` its document cache, ``compiled`` the compiled executor
    when compiled execution is on."""

    documents: Documents
    compiled: CompiledExecutor | None = None

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        # A subscription runs through ``stream`` (the WebSocket); ``execute`` would run it as
        # a query, so it is refused here as an operation type this path does not serve.
        allowed = set(allowed_operation_types or DEFAULT_ALLOWED_OPERATION_TYPES)
        return await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed - {OperationType.SUBSCRIPTION},
            operation_extensions,
        )

    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        """Business errors are answers, not incidents; ``coded`` logs the internal ones."""
