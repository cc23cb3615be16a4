"""The Python client's methods for issue 17: update_session, metadata lists, fork,
delete_run, search, through the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from agent_sessions import AgentSessionsError, AsyncClient

from .helpers import BASE_URL, GraphQLClient, record


@pytest.fixture
async def api(app: Any) -> AsyncIterator[AsyncClient]:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app))
    async with http, AsyncClient(BASE_URL, http_client=http) as client:
        yield client


async def test_the_client_does_all_of_it(api: AsyncClient, gql: GraphQLClient) -> None:
    for i in range(2):
        await record(gql, sessionId="c", runId=f"r{i}", messages=[
            {"role": "USER", "content": f"compare the lighthouse budgets {i}"},
            {"role": "ASSISTANT", "content": f"budget {i} is fine"},
        ])  # fmt: skip
    when = datetime(2100, 1, 1, tzinfo=UTC)
    s = await api.update_session("c", title="Budgets", metadata={"team": "ops"}, expires_at=when)
    assert (s.title, s.metadata, s.expires_at) == ("Budgets", {"team": "ops"}, when)
    listed = [x.id async for x in api.sessions(metadata={"team": "ops"})]
    assert listed == ["c"] and [x async for x in api.sessions(metadata={"team": "x"})] == []
    hits = await api.search("lighthouse")
    assert {h.run_id for h in hits} == {"r0", "r1"} and hits[0].role == "user"
    assert "<mark>lighthouse</mark>" in hits[0].snippet
    messages = await api.messages("c")
    fork = await api.fork("c", messages[1].id, title="first answer")
    assert fork.forked_from is not None and fork.forked_from.message_id == messages[1].id
    assert fork.message_count == 2 and fork.title == "first answer"
    await api.delete_run("c", "r0")
    assert [r.id for r in await api.runs("c")] == ["r1"]
    with pytest.raises(AgentSessionsError) as missing:
        await api.delete_run("c", "r0")
    assert missing.value.status == 404
    cleared = await api.update_session("c", expires_at=None)
    assert cleared.expires_at is None and cleared.title == "Budgets"
