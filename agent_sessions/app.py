"""The Starlette application: /graphql, the REST shim under /api, /healthz, and the pages
(home, GraphiQL, API docs, their static files).

The lifespan opens storage (starting the embedded database when no MONGODB_URI is set),
says where everything is, and closes storage. Every error a client can see is JSON; no
stack trace leaves the process.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
from cross_web import HTTPException as GraphQLHTTPException
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from strawberry.asgi import GraphQL

from agent_sessions import pages
from agent_sessions.agents import AgentRunner
from agent_sessions.errors import ServiceError
from agent_sessions.resolvers.context import Context
from agent_sessions.resolvers.identity import authenticate
from agent_sessions.rest.responses import JSONResponse, error_response
from agent_sessions.rest.routes import SESSION_NOT_FOUND
from agent_sessions.rest.routes import routes as rest_routes
from agent_sessions.schema import build_schema
from agent_sessions.settings import Settings
from agent_sessions.storage import EmbeddedServer, Storage

log = logging.getLogger("agent_sessions")

MAX_BODY_BYTES = 8 * 1024 * 1024


def graphql_error(message: str, code: str, status: int, **extensions: Any) -> JSONResponse:
    body = {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}
    return JSONResponse(body, status_code=status)


class GraphQLView(GraphQL):
    """Strawberry's HTTP handling (GET/POST, GraphiQL) with orjson on both sides."""

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)


class Services:
    """What a request needs: settings, schema, storage (set by the lifespan), agents."""

    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        self.settings = settings
        self.schema = build_schema(
            introspection=settings.introspection, compiled=settings.compiled_execution
        )
        self.view = GraphQLView(self.schema, graphql_ide="graphiql", allow_queries_via_get=True)
        self._storage = storage
        self.agents = AgentRunner(settings.agents)

    @property
    def storage(self) -> Storage:
        assert self._storage is not None, "storage is opened by the app's lifespan"
        return self._storage

    async def context(self, request: Request) -> Context:
        """The request's context; raises ``Unauthenticated`` for a missing or bad key."""
        caller = await authenticate(
            request.headers.get("authorization"), self.settings, self.storage
        )
        return Context(self.storage, self.settings, caller, agents=self.agents)


async def graphql_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    view = services.view
    if request.method == "GET" and view.should_render_graphql_ide(
        view.request_adapter_class(request)
    ):
        return pages.graphiql(request)  # the explorer page holds no data
    try:
        context = await services.context(request)
    except ServiceError as exc:
        return graphql_error(exc.message, exc.code, exc.status)
    try:
        return await view.run(request, context=context)
    except GraphQLHTTPException as exc:
        return graphql_error(exc.reason, "BAD_USER_INPUT", exc.status_code)


async def healthz(request: Request) -> Response:
    ok, reason = await request.app.state.services.storage.healthy()
    if ok:
        return JSONResponse({"status": "ok"})
    # Why stays in the server's log: /healthz answers without a key.
    log.error("health check failed: %s", reason)
    return JSONResponse({"status": "unavailable"}, status_code=503)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or address, no port) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: bytes) -> str:
    host = header.decode("latin-1").strip().lower()
    if host.startswith("["):  # [::1]:8080
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class LoopbackOnly:
    """Open mode answers only requests addressed to a loopback name: a web page elsewhere
    that rebinds its own domain to 127.0.0.1 cannot read or write through the browser."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            host = dict(scope["headers"]).get(b"host", b"")
            if not is_loopback(_host_name(host)):
                message = "without an admin key this server answers only loopback host names"
                await error_response(message, 421)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes with 413, before any handler reads them."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # disconnected
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"request body over {self.limit // (1024 * 1024)} MiB"
        if scope["path"].startswith("/graphql"):
            response = graphql_error(message, "BAD_USER_INPUT", 413)
        else:
            response = error_response(message, 413)
        await response(scope, receive, send)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        message = "method not allowed"
    elif exc.status_code == 404:
        # Under /api/sessions/ no route matched: an id with a slash in it (an encoded %2F)
        # or a path below a session that does not exist. Either way, no such session.
        message = (
            SESSION_NOT_FOUND if request.url.path.startswith("/api/sessions/") else "not found"
        )
    else:
        message = str(exc.detail)
    return error_response(message, exc.status_code, headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response("internal server error", 500)


def build_app(
    settings: Settings, storage: Storage | None = None, embedded: EmbeddedServer | None = None
) -> Starlette:
    """The application. With ``storage`` given (tests, benchmarks) the lifespan uses it
    as it is and leaves closing it to the caller. With ``embedded`` (``serve`` starts it
    first, so a busy data directory is a clean error), the lifespan connects to it and its
    starter stops it; otherwise the lifespan opens storage (starting the embedded
    database when no MongoDB URI is set) and closes it."""
    services = Services(settings, storage)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = services._storage is None
        if owned and embedded is not None:
            services._storage = await Storage.connect(
                embedded.uri, settings.database, embedded=embedded
            )
        elif owned:
            services._storage = await Storage.open(
                mongodb_uri=settings.mongodb_uri,
                database=settings.database,
                data_dir=settings.data_dir,
                secantusd=settings.secantusd,
                join=False,  # a server never runs on a database another process may stop
            )
        for line in pages.startup_lines(settings, services._storage):
            log.info("%s", line)
        try:
            yield
        finally:
            await services.agents.aclose()
            if owned and services._storage is not None:
                await services._storage.close(stop_embedded=embedded is None)
                services._storage = None

    routes = [
        Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        *rest_routes,
        *pages.routes,
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )
    app.router.redirect_slashes = False  # a redirect is never the answer to an API call
    app.state.services = services
    app.add_middleware(BodyLimit)
    if not settings.auth_enabled and not settings.insecure_no_auth:
        app.add_middleware(LoopbackOnly)
    return app
