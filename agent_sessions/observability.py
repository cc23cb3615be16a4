"""What an operator sees: request ids, one log line per request, Prometheus metrics.

Logs are JSON lines (``time``, ``level``, ``logger``, ``message`` and the request's fields),
or plain text on a terminal. Every line logged while a request runs carries its request id
(``X-Request-ID`` as the client sent it, or a new one; returned on every response), so the
id in a masked ``INTERNAL`` error finds the traceback. A request's line has its method,
path, route, status, duration and user id; never a key, a query string or a body.

Metrics use ``prometheus-client``'s default registry. Under several workers, ``serve``
sets ``PROMETHEUS_MULTIPROC_DIR`` before they start, and ``/metrics`` adds up every
worker's figures from it.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LogFormat = Literal["auto", "json", "text"]

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
access_log = logging.getLogger("agent_sessions.access")

# A client's id is kept when it is a plain token; anything else (or nothing) gets a new one.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


# --- logs ------------------------------------------------------------------------------------

# LogRecord attributes that are not a caller's ``extra``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the record's extra fields,
    and the traceback (``exc``) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }  # fmt: skip
        for key, value in vars(record).items():
            if key not in _STANDARD and value is not None:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


class TextFormatter(logging.Formatter):
    """For a person at a terminal: the usual line, then the request's fields as key=value."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = [
            f"{k}={v}" for k, v in vars(record).items() if k not in _STANDARD and v is not None
        ]
        if not extra:
            return line
        head, sep, tail = line.partition("\n")  # a traceback stays below the fields
        return f"{head} {' '.join(extra)}{sep}{tail}"


class RequestIdFilter(logging.Filter):
    """Gives every record logged during a request that request's id."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get()
        return True


def configure_logging(level: str, fmt: LogFormat = "auto") -> None:
    """Route every logger (uvicorn's too) to stderr in ``fmt``: ``auto`` is text on a
    terminal and JSON otherwise."""
    if fmt == "auto":
        fmt = "text" if sys.stderr.isatty() else "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # Our own line per request replaces uvicorn's access log.
    logging.getLogger("uvicorn.access").disabled = True


# --- metrics ---------------------------------------------------------------------------------

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
HTTP_REQUESTS = Counter(
    "agent_sessions_http_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "agent_sessions_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by route template.",
    ["method", "route"],
    buckets=_LATENCY_BUCKETS,
)
DB_LATENCY = Histogram(
    "agent_sessions_db_command_duration_seconds",
    "Database command round trips as the driver measured them, by command.",
    ["command"],
    buckets=(0.001, 0.0025, *_LATENCY_BUCKETS),
)
DB_FAILURES = Counter(
    "agent_sessions_db_command_failures",
    "Database commands that failed (including network errors), by command.",
    ["command"],
)
DATABASE_UP = Gauge(
    "agent_sessions_database_up",
    "1 when the database (embedded or MONGODB_URI) answers, else 0.",
    multiprocess_mode="mostrecent",
)
RUNS = Gauge(
    "agent_sessions_runs",
    "Stored runs by status, counted in the database when scraped (at most every 30 s).",
    ["status"],
    multiprocess_mode="mostrecent",
)


def observe_command(name: str, seconds: float, failed: bool) -> None:
    """Feeds the database histograms (storage.monitoring.CommandTimer calls it)."""
    DB_LATENCY.labels(name).observe(seconds)
    if failed:
        DB_FAILURES.labels(name).inc()


def metrics_exposition() -> tuple[bytes, str]:
    """The Prometheus text of every metric, every worker's under ``serve --workers``."""
    if values.ValueClass is not values.MutexValue:  # multiprocess mode
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# --- the middleware --------------------------------------------------------------------------


class RequestLog:
    """Outermost middleware: takes or makes the request id (``scope["state"]``), returns it
    as ``X-Request-ID``, logs one line per request and counts it in the metrics. Handlers
    put the caller's user id in ``scope["state"]["user_id"]`` once they know it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _CLIENT_ID.fullmatch(given) else uuid.uuid4().hex
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        token = request_id_var.set(request_id)
        status = 500  # what the client sees when the app fails before answering
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", ()))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            duration = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(duration)
            access_log.info(
                "%s %s %d %.1f ms",
                method,
                scope["path"],
                status,
                duration * 1000,
                extra={
                    "method": method,
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(duration * 1000, 3),
                    "user_id": state.get("user_id"),
                },
            )
            request_id_var.reset(token)
