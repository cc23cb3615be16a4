"""What tests share besides fixtures: clients named for who calls, the command log, a
live server on a loopback port, and small builders. Imported one way: ``from .helpers
import ...``; ``conftest.py`` holds only fixtures."""

from __future__ import annotations

import uuid
from typing import Any

import bson
import httpx
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from agent_sessions.app import build_app
from agent_sessions.settings import Settings
from agent_sessions.storage.layout import Bounds

# Bounds so small that a few turns fill a head: the paged layout, in tests of a few runs.
TINY_BOUNDS = Bounds(head_entries=6, head_bytes=2048, page_seqs=4, page_bytes=4096)

BASE_URL = "http://localhost"  # open mode serves loopback host names only


_IGNORED = frozenset({"endSessions", "ping", "hello", "isMaster", "ismaster"})


class CommandLog(CommandListener):
    """Every database command a test's client sends, and the bytes of each reply."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.reply_bytes: list[int] = []
        self.sent: list[dict[str, Any]] = []  # the commands themselves

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name not in _IGNORED:
            self.names.append(event.command_name)
            self.sent.append(dict(event.command))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        if event.command_name not in _IGNORED:
            self.reply_bytes.append(len(bson.encode(event.reply)))

    def failed(self, event: CommandFailedEvent) -> None:
        pass

    def reset(self) -> None:
        self.names.clear()
        self.reply_bytes.clear()
        self.sent.clear()

    @property
    def count(self) -> int:
        return len(self.names)


class GraphQLClient:
    """Posts GraphQL documents to the real app and returns the JSON a client would see."""

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str] | None = None) -> None:
        self.http = http
        self.headers = headers or {}

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, **kw: Any
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=self.headers, **kw
        )
        assert response.headers["content-type"].startswith("application/json"), response.text
        return response.json()

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of a response that must have no errors."""
        body = await self(query, variables)
        assert "errors" not in body, body
        return body["data"]


RECORD_RUN = """
mutation Record($input: RecordRunInput!) {
  recordRun(input: $input) { id sessionId status input content }
}
"""


async def record(gql: GraphQLClient, **fields: Any) -> dict[str, Any]:
    """Record a run through GraphQL; by default a user question and an assistant answer."""
    payload: dict[str, Any] = {
        "agentId": "finance_agent",
        "messages": [
            {"role": "USER", "content": "What is our Q1 revenue?"},
            {"role": "ASSISTANT", "content": "Your Q1 revenue was $4.2 million."},
        ],
    }
    payload.update(fields)
    return (await gql.data(RECORD_RUN, {"input": payload}))["recordRun"]


class LiveServer:
    """The app under uvicorn on a loopback port, in a thread with its own event loop and its
    own storage (a fresh database on the session's server); for clients that need a real
    socket (curl, requests, schemathesis)."""

    def __init__(self, settings: Settings) -> None:
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        config = uvicorn.Config(
            build_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.url = f"http://127.0.0.1:{port}"
        self.settings = settings

    def __enter__(self) -> LiveServer:
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive(), "the live server failed to start"
            assert time.monotonic() < deadline, "the live server did not start within 30 s"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        from pymongo import MongoClient

        self.server.should_exit = True
        self.thread.join(timeout=30)
        if self.settings.mongodb_uri:
            with MongoClient(self.settings.mongodb_uri) as client:
                client.drop_database(self.settings.database)

    def graphql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables},
            headers=headers,
            timeout=30,
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]


def live_settings(mongo_uri: str, tmp_path: Any, **overrides: Any) -> Settings:
    """Settings for a live server on the session's database server, with a fresh database."""
    return Settings(
        mongodb_uri=mongo_uri, database=f"t_{uuid.uuid4().hex[:16]}", data_dir=tmp_path, **overrides
    )


def curl(server: LiveServer, command: str) -> tuple[int, str]:
    """Run a curl command from the reference documents as written, pointed at ``server``
    instead of localhost:8080; the status and the body."""
    import shlex
    import subprocess

    argv = shlex.split(command.replace("http://localhost:8080", server.url))
    argv[1:1] = ["-sS", "-w", "\n%{http_code}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    body, _, status = out.rpartition("\n")
    return int(status), body
