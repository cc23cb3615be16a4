"""GraphQL over WebSocket at ``/graphql`` (``graphql-transport-ws``), for ``runEvents``.

In key mode the key comes in the ``connection_init`` payload (``{"Authorization": "Bearer
<key>"}``) or in the handshake's ``Authorization`` header; a missing or wrong key closes
the socket with 4403. Each operation on the socket gets a fresh request context (its own
loaders), and its errors are coded and masked as over HTTP.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import TYPE_CHECKING, Any

import orjson
from starlette.websockets import WebSocket
from strawberry import UNSET
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.types.unset import UnsetType

from agent_sessions.auth import Caller, authenticate
from agent_sessions.errors import ServiceError
from agent_sessions.resolvers.context import Context
from agent_sessions.schema.extensions import coded

if TYPE_CHECKING:
    from agent_sessions.app import Services


class SocketSession:
    """What one WebSocket connection knows: who it is (after ``connection_init``)."""

    def __init__(self, services: Services, websocket: WebSocket) -> None:
        self.services = services
        self.websocket = websocket
        self.connection_params: dict[str, Any] | None = None  # set by Strawberry
        self.caller: Caller | None = None

    def operation_context(self) -> Context:
        assert self.caller is not None, "operations start after connection_ack"
        services = self.services
        return Context(
            services.storage,
            services.settings,
            self.caller,
            agents=services.agents,
            runs=services.runs,
        )


class _CodedStream:
    """The schema as the socket handler sees it: ``stream`` runs each operation with its
    own context and codes its errors; everything else is the schema's."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema

    def __getattr__(self, name: str) -> Any:
        return getattr(self._schema, name)

    async def stream(
        self, query: str | None, variable_values: Any = None, context_value: Any = None,
        *args: Any, **kwargs: Any,
    ) -> AsyncGenerator[Any, None]:  # fmt: skip
        context = context_value.operation_context()
        source = await self._schema.stream(query, variable_values, context, *args, **kwargs)
        return self._coded(source, context.request_id)

    @staticmethod
    async def _coded(source: AsyncIterator[Any], request_id: str) -> AsyncGenerator[Any, None]:
        async with contextlib.aclosing(source):  # type: ignore[type-var]
            async for result in source:
                if getattr(result, "errors", None):
                    result.errors = [coded(e, request_id) for e in result.errors]
                yield result


class SocketView(GraphQL):
    """Strawberry's WebSocket handling with our authentication and contexts."""

    def __init__(self, services: Services) -> None:
        super().__init__(
            _CodedStream(services.schema),  # type: ignore[arg-type]
            graphql_ide=None,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )
        self.services = services

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    async def get_context(self, request: Any, response: Any) -> SocketSession:  # type: ignore[override]
        return SocketSession(self.services, request)

    async def on_ws_connect(self, context: SocketSession) -> UnsetType:  # type: ignore[override]
        params = context.connection_params or {}
        header = params.get("Authorization") or params.get("authorization")
        if not isinstance(header, str):
            header = context.websocket.headers.get("authorization")
        services = self.services
        try:
            context.caller = await authenticate(header, services.settings, services.storage)
        except ServiceError as exc:
            raise ConnectionRejectionError({"message": exc.message, "code": exc.code}) from None
        return UNSET  # a plain connection_ack
