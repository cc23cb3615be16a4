"""The Starlette application: /graphql (HTTP and WebSocket), the REST shim under /api,
/healthz, /metrics, and the pages (home, GraphiQL, API docs, their static files).

The lifespan opens storage (starting the embedded database when no MONGODB_URI is set),
says where everything is, starts the reaper of abandoned runs, and at shutdown drains
the runs in progress before closing storage. Every error a client can see is JSON; no
stack trace leaves the process. ``/graphql`` follows the GraphQL-over-HTTP spec:
``application/json`` as before, and ``application/graphql-response+json`` (when the
client accepts it) with 4xx statuses for requests that cannot be executed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
from cross_web import HTTPException as GraphQLHTTPException
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL

from agent_sessions import pages
from agent_sessions.agents import AgentRunner
from agent_sessions.agents.live import LiveRuns
from agent_sessions.auth import authenticate
from agent_sessions.errors import ServiceError, Unauthenticated
from agent_sessions.observability import (
    DATABASE_UP,
    RUNS,
    RequestLog,
    configure_logging,
    metrics_exposition,
    observe_command,
)
from agent_sessions.resolvers.context import Context
from agent_sessions.rest.beyond import routes as beyond_routes
from agent_sessions.rest.responses import JSONResponse, error_response
from agent_sessions.rest.routes import SESSION_NOT_FOUND
from agent_sessions.rest.routes import routes as rest_routes
from agent_sessions.schema import build_schema
from agent_sessions.settings import Settings, load_settings
from agent_sessions.storage import EmbeddedServer, Storage, retention
from agent_sessions.storage.model import STATUSES
from agent_sessions.storage.mongo_search import MongoTextIndex, open_search
from agent_sessions.storage.monitoring import CommandTimer
from agent_sessions.storage.search import FILE as SEARCH_FILE
from agent_sessions.storage.search import SearchIndex
from agent_sessions.subscriptions import SocketView

log = logging.getLogger("agent_sessions")

MAX_BODY_BYTES = 8 * 1024 * 1024
GRAPHQL_RESPONSE = "application/graphql-response+json"


def graphql_error(message: str, code: str, status: int, **extensions: Any) -> JSONResponse:
    body = {"errors": [{"message": message, "extensions": {"code": code, **extensions}}]}
    return JSONResponse(body, status_code=status)


def wants_graphql_response(accept: str | None) -> bool:
    """Whether the client prefers ``application/graphql-response+json`` to
    ``application/json`` (the GraphQL-over-HTTP spec's two media types). No Accept header,
    or neither type, means ``application/json``, today's behaviour."""
    quality: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[media.lower()] = max(q, quality.get(media.lower(), 0.0))
    new = quality.get(GRAPHQL_RESPONSE, 0.0)
    return new > 0 and new >= quality.get("application/json", 0.0)


def request_failed(result: Any) -> bool:
    """A request error in the spec's sense: nothing was executed (a document that does not
    parse or validate, variables that do not coerce), so the result has no ``data``."""
    errors = result.errors or ()
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


class GraphQLView(GraphQL):
    """Strawberry's HTTP handling (GET/POST, GraphiQL) with orjson on both sides; a body
    that is not a JSON object (or batch) is 400, and a request error answered as
    ``application/graphql-response+json`` has no ``data`` entry."""

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    def parse_json(self, data: str | bytes) -> Any:
        value = super().parse_json(data)
        if not isinstance(value, dict):
            raise GraphQLHTTPException(400, "the request body must be a JSON object")
        if not isinstance(value.get("operationName"), str | None):
            raise GraphQLHTTPException(400, "operationName must be a string or null")
        return value

    async def process_result(self, request: Request, result: Any) -> Any:
        response = await super().process_result(request, result)
        if request_failed(result):
            request.state.graphql_request_failed = True
            if request.state.graphql_response:
                response.pop("data", None)
        return response


class Services:
    """What a request needs: settings, schema, storage (set by the lifespan), agents."""

    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        self.settings = settings
        self.schema = build_schema(
            introspection=settings.introspection, compiled=settings.compiled_execution
        )
        self.view = GraphQLView(self.schema, graphql_ide="graphiql", allow_queries_via_get=True)
        self._storage = storage
        if storage is not None:
            self.configure_storage(storage)
        self.agents = AgentRunner(settings.agents)
        self.runs_counted_at = -RUNS_COUNTED_EVERY_S  # when /metrics last counted runs
        self.runs = LiveRuns(self.agents, lambda: self.storage, settings)
        self.socket_view = SocketView(self)

    def configure_storage(self, storage: Storage) -> None:
        """New sessions expire ``retention_days`` after they are created; messages go into
        the search index of the data directory (README, "Beyond the reference")."""
        days = self.settings.retention_days
        storage.sessions.retention = None if days is None else timedelta(days=days)
        if storage.sessions.search is None:
            storage.sessions.search = SearchIndex(self.settings.data_dir / SEARCH_FILE)

    async def choose_search(self, storage: Storage) -> None:
        """The search index ``search_backend`` asks for, in place of the SQLite file of
        ``configure_storage`` (kept when the database has no text index and it is auto)."""
        sessions = storage.sessions
        chosen, line = await open_search(
            self.settings.search_backend, storage.client[storage.database], self.settings.data_dir
        )
        logging.getLogger("agent_sessions.storage").info("%s", line)
        if isinstance(chosen, MongoTextIndex):
            if sessions.search is not None:
                sessions.search.close()
            sessions.search = chosen
        else:
            chosen.close()  # the one configure_storage opened is that file already

    async def forget_session(self, session_id: str) -> None:
        """Drop what is kept about a deleted session outside its documents."""
        await self.storage.live.forget_session(session_id)

    @property
    def storage(self) -> Storage:
        assert self._storage is not None, "storage is opened by the app's lifespan"
        return self._storage

    async def context(self, request: Request) -> Context:
        """The request's context; raises ``DatabaseUnavailable`` at once while the database
        is known to be down, ``Unauthenticated`` for a missing or bad key."""
        await self.storage.require_available()
        caller = await authenticate(
            request.headers.get("authorization"), self.settings, self.storage
        )
        request.state.user_id = caller.user_id  # for the request's log line
        request_id = getattr(request.state, "request_id", None)
        if request_id is None:  # an app served without RequestLog in front (tests)
            return Context(self.storage, self.settings, caller, agents=self.agents, runs=self.runs)
        return Context(
            self.storage,
            self.settings,
            caller,
            agents=self.agents,
            runs=self.runs,
            request_id=request_id,
        )


async def graphql_endpoint(request: Request) -> Response:
    services: Services = request.app.state.services
    view = services.view
    if request.method == "GET" and view.should_render_graphql_ide(
        view.request_adapter_class(request)
    ):
        return pages.graphiql(request)  # the explorer page holds no data
    request.state.graphql_response = wants_graphql_response(request.headers.get("accept"))
    request.state.graphql_request_failed = False
    response = await _graphql(request, services)
    if request.state.graphql_response:
        if request.state.graphql_request_failed:
            response.status_code = 400
        response.headers["content-type"] = f"{GRAPHQL_RESPONSE}; charset=utf-8"
    return response


async def _graphql(request: Request, services: Services) -> Response:
    try:
        context = await services.context(request)
    except ServiceError as exc:
        return graphql_error(exc.message, exc.code, exc.status)
    try:
        return await services.view.run(request, context=context)
    except GraphQLHTTPException as exc:
        reason = exc.reason
        if reason.startswith("subscriptions are not allowed"):
            reason += "; subscribe over a WebSocket at /graphql (graphql-transport-ws)"
        headers = {"Allow": "GET, POST"} if exc.status_code == 405 else None
        response = graphql_error(reason, "BAD_USER_INPUT", exc.status_code)
        response.headers.update(headers or {})
        return response


async def graphql_socket(websocket: WebSocket) -> None:
    await websocket.app.state.services.socket_view.run(websocket)


async def healthz(request: Request) -> Response:
    ok, reason = await request.app.state.services.storage.healthy()
    if ok:
        return JSONResponse({"status": "ok"})
    # Why stays in the server's log: /healthz answers without a key.
    log.error("health check failed: %s", reason)
    return JSONResponse({"status": "unavailable"}, status_code=503)


RUNS_COUNTED_EVERY_S = 30.0


async def metrics(request: Request) -> Response:
    """Prometheus metrics. In key mode a valid key is needed, unless ``metrics_public``."""
    services: Services = request.app.state.services
    settings = services.settings
    if settings.auth_enabled and not settings.metrics_public:
        try:
            await authenticate(request.headers.get("authorization"), settings, services.storage)
        except Unauthenticated as exc:
            return error_response(exc.message, exc.status)
        except ServiceError as exc:
            return error_response(exc.message, exc.status)
    ok, _ = await services.storage.healthy()
    DATABASE_UP.set(1 if ok else 0)
    if ok and services.runs_counted_at + RUNS_COUNTED_EVERY_S < time.monotonic():
        # Counted in the database (the figure is the same whichever worker answers),
        # at most every 30 s: a scrape must not cost a scan each time.
        services.runs_counted_at = time.monotonic()
        counts = await services.storage.runs_by_status()
        for status in STATUSES:
            RUNS.labels(status).set(counts.get(status, 0))
    body, content_type = metrics_exposition()
    return Response(body, media_type=content_type)


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
        if scope["type"] in ("http", "websocket"):
            host = dict(scope["headers"]).get(b"host", b"")
            if not is_loopback(_host_name(host)):
                message = "without an admin key this server answers only loopback host names"
                if scope["type"] == "websocket":  # refused before the handshake: HTTP 403
                    await receive()  # websocket.connect
                    await send({"type": "websocket.close", "code": 1008, "reason": message})
                    return
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
    settings: Settings,
    storage: Storage | None = None,
    embedded: EmbeddedServer | None = None,
    *,
    worker: bool = False,
) -> Starlette:
    """The application. With ``storage`` given (tests, benchmarks) the lifespan uses it
    as it is and leaves closing it to the caller. With ``embedded`` (``serve`` starts it
    first, so a busy data directory is a clean error), the lifespan connects to it and its
    starter stops it; otherwise the lifespan opens storage (starting the embedded
    database when no MongoDB URI is set) and closes it."""
    services = Services(settings, storage)
    listeners = [CommandTimer(observe_command)]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        owned = services._storage is None
        if owned and embedded is not None:
            services._storage = await Storage.connect(
                embedded.uri, settings.database, embedded=embedded, listeners=listeners
            )
        elif owned:
            services._storage = await Storage.open(
                mongodb_uri=settings.mongodb_uri,
                database=settings.database,
                data_dir=settings.data_dir,
                secantusd=settings.secantusd,
                listeners=listeners,
                # A server never runs on a database another process may stop; a worker
                # of `serve --workers N` uses the one its parent started.
                join=worker,
            )
        services.configure_storage(services._storage)
        if owned and settings.search_backend != "sqlite":  # the database's own text index
            await services.choose_search(services._storage)
        sweeper = asyncio.create_task(
            retention.sweep_forever(
                services._storage.sessions, settings.retention_sweep_s, services.forget_session
            )
        )
        orphan_watch = asyncio.create_task(_exit_when_orphaned()) if worker else None
        services.runs.start_reaper()
        for line in pages.startup_lines(settings, services._storage):
            log.info("%s", line)
        try:
            yield
        finally:
            sweeper.cancel()
            if orphan_watch is not None:
                orphan_watch.cancel()
            # No new runs from here; the ones in progress get run_drain_s to finish.
            await services.runs.drain(settings.run_drain_s)
            await services.agents.aclose()
            if services._storage is not None and services._storage.sessions.search is not None:
                await services._storage.sessions.search.settle()  # queued index writes
            if owned and services._storage is not None:
                await services._storage.close(stop_embedded=embedded is None)
                services._storage = None

    routes = [
        Route("/graphql", graphql_endpoint, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql_socket),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *beyond_routes,  # before rest_routes: /api/sessions/search is not a session id
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
    # Added innermost first: RequestLog sees every answer, CORS headers are on refusals too.
    app.add_middleware(BodyLimit)
    if not settings.auth_enabled and not settings.insecure_no_auth:
        app.add_middleware(LoopbackOnly)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Accept", "X-Request-ID"],
            expose_headers=["X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(RequestLog)
    return app


async def _exit_when_orphaned() -> None:
    """A worker whose parent was killed outright (``kill -9``: it could not stop us) stops
    too, as if the parent had sent SIGTERM, instead of serving on without a supervisor."""
    parent = multiprocessing.parent_process()  # the serve process, however late we start
    if parent is None:
        return
    while parent.is_alive():  # noqa: ASYNC110 - no event says a parent died
        await asyncio.sleep(1)
    log.error("the serve process (pid %s) is gone; this worker stops", parent.pid)
    os.kill(os.getpid(), signal.SIGTERM)


def create_app() -> Starlette:
    """The app of one ``serve --workers N`` worker, built from the settings its parent
    passed down in the environment; it uses the embedded database the parent started."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    return build_app(settings, worker=True)
