"""Shared fixtures: one embedded database per test session (or ``MONGODB_URI`` when set),
a fresh database name per test, the real ASGI app, and clients named for who calls. What
tests share besides fixtures is in ``helpers``."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from agent_sessions.app import build_app
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.embedded import start_embedded
from agent_sessions.storage.layout import DEFAULT_BOUNDS, Bounds

from .helpers import BASE_URL, CommandLog, GraphQLClient


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = Settings().mongodb_uri
    if configured:
        yield configured
        return
    server = start_embedded(tmp_path_factory.mktemp("embedded"))
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
def commands() -> CommandLog:
    return CommandLog()


@pytest.fixture
def bounds() -> Bounds:
    """The storage bounds of a test; a module overrides this fixture to run on both."""
    return DEFAULT_BOUNDS


@pytest.fixture
async def storage(mongo_uri: str, commands: CommandLog, bounds: Bounds) -> AsyncIterator[Storage]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    st = await Storage.connect(mongo_uri, name, listeners=[commands], bounds=bounds)
    commands.reset()
    try:
        yield st
    finally:
        await st.client.drop_database(name)
        await st.client.close()


@pytest.fixture(
    params=[True, pytest.param(False, marks=pytest.mark.slow)], ids=["compiled", "normal"]
)
def compiled(request: pytest.FixtureRequest) -> bool:
    """Every test that builds the app runs twice: queries through compiled plans (the
    default) and through normal Strawberry execution only (in the full run: the fast inner
    loop, ``-m "not slow"``, keeps the compiled one)."""
    return request.param


@pytest.fixture
def settings(tmp_path: Any, compiled: bool) -> Settings:
    """Open mode: every request is the administrator ``local``."""
    return Settings(data_dir=tmp_path, compiled_execution=compiled)


@pytest.fixture
async def app(settings: Settings, storage: Storage) -> AsyncIterator[Any]:
    application = build_app(settings, storage=storage)
    yield application
    await application.state.services.agents.aclose()


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as c:
        yield c


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(client)
