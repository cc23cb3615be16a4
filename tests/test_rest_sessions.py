"""REST: GET /api/sessions, its paging, filters and bad parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from agent_sessions.storage import Storage

from .helpers import GraphQLClient
from .rest_expectations import (
    SESSION_KEYS,
    T0,
    _three_sessions,
    assert_error,
    listed,
    make_session,
)

# --- GET /api/sessions --------------------------------------------------------------------


async def test_list_sessions_shape_and_newest_updated_first(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    expected = await _three_sessions(gql, storage)
    response = await client.get("/api/sessions")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == "application/json"
    body = response.json()
    assert body == {
        "content": expected,
        "totalElements": 3,
        "totalPages": 1,
        "page": 0,
        "size": 20,
    }
    assert all(set(item) == SESSION_KEYS for item in body["content"])


async def test_list_sessions_millisecond_timestamps(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    created = datetime(2026, 5, 6, 10, 0, 0, 123000, tzinfo=UTC)
    updated = datetime(2026, 5, 6, 11, 30, 15, 7000, tzinfo=UTC)
    await make_session(gql, storage, "s-ms", created=created, updated=updated)
    body = (await client.get("/api/sessions")).json()
    assert body["content"] == [
        {
            "sessionId": "s-ms",
            "userId": "user-1",
            "agentId": "finance_agent",
            "createdAt": "2026-05-06T10:00:00.123Z",
            "updatedAt": "2026-05-06T11:30:15.007Z",
        }
    ]


async def test_list_sessions_paging(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    ids = [f"s-{n}" for n in range(5)]
    for n, sid in enumerate(ids):
        # s-4 is the newest; the ids' order is the reverse of the list's order
        await make_session(gql, storage, sid, updated=T0 + timedelta(minutes=n))
    newest_first = [
        listed(sid, "user-1", "finance_agent", T0, T0 + timedelta(minutes=n))
        for n, sid in reversed(list(enumerate(ids)))
    ]

    pages = []
    for page in range(4):
        response = await client.get("/api/sessions", params={"page": page, "size": 2})
        assert response.status_code == 200
        pages.append(response.json())
    assert pages == [
        {"content": newest_first[0:2], "totalElements": 5, "totalPages": 3, "page": 0, "size": 2},
        {"content": newest_first[2:4], "totalElements": 5, "totalPages": 3, "page": 1, "size": 2},
        {"content": newest_first[4:5], "totalElements": 5, "totalPages": 3, "page": 2, "size": 2},
        {"content": [], "totalElements": 5, "totalPages": 3, "page": 3, "size": 2},
    ]

    exact = (await client.get("/api/sessions", params={"size": 5})).json()
    assert exact == {
        "content": newest_first,
        "totalElements": 5,
        "totalPages": 1,
        "page": 0,
        "size": 5,
    }
    one = (await client.get("/api/sessions", params={"page": 4, "size": 1})).json()
    assert one == {
        "content": newest_first[4:5],
        "totalElements": 5,
        "totalPages": 5,
        "page": 4,
        "size": 1,
    }
    biggest = (await client.get("/api/sessions", params={"size": 100})).json()
    assert (biggest["content"], biggest["totalPages"], biggest["size"]) == (newest_first, 1, 100)


async def test_list_sessions_ties_keep_a_stable_order_across_pages(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    ids = ["t-1", "t-2", "t-3", "t-4"]
    for sid in ids:
        await make_session(gql, storage, sid, updated=T0)  # all the same updatedAt
    seen = []
    for page in range(2):
        body = (await client.get("/api/sessions", params={"page": page, "size": 2})).json()
        seen += [s["sessionId"] for s in body["content"]]
    assert sorted(seen) == ids
    assert len(set(seen)) == 4


@pytest.mark.parametrize(
    ("params", "expected_ids"),
    [
        ({"userId": "user-1"}, ["s-b", "s-a"]),
        ({"user_id": "user-1"}, ["s-b", "s-a"]),
        ({"userId": "user-2"}, ["s-c"]),
        ({"user_id": "user-2"}, ["s-c"]),
        ({"agentId": "finance_agent"}, ["s-c", "s-a"]),
        ({"agent_id": "finance_agent"}, ["s-c", "s-a"]),
        ({"agentId": "support_agent"}, ["s-b"]),
        ({"agent_id": "support_agent"}, ["s-b"]),
        ({"userId": "user-1", "agentId": "finance_agent"}, ["s-a"]),
        ({"user_id": "user-1", "agent_id": "finance_agent"}, ["s-a"]),
        ({"userId": "user-1", "agent_id": "support_agent"}, ["s-b"]),
        ({"user_id": "user-2", "agentId": "support_agent"}, []),
        ({"userId": "user-1", "user_id": "user-1"}, ["s-b", "s-a"]),
        ({"userId": "user-1", "user_id": "user-2"}, []),
        ({"userId": "nobody"}, []),
        ({"agent_id": "nobody"}, []),
    ],
)
async def test_list_sessions_filters_in_both_spellings(
    client: httpx.AsyncClient,
    gql: GraphQLClient,
    storage: Storage,
    params: dict[str, str],
    expected_ids: list[str],
) -> None:
    everything = {s["sessionId"]: s for s in await _three_sessions(gql, storage)}
    response = await client.get("/api/sessions", params=params)
    assert response.status_code == 200
    assert response.json() == {
        "content": [everything[sid] for sid in expected_ids],
        "totalElements": len(expected_ids),
        "totalPages": 1 if expected_ids else 0,
        "page": 0,
        "size": 20,
    }


async def test_list_sessions_filter_totals_across_pages(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage
) -> None:
    for n in range(3):
        await make_session(gql, storage, f"mine-{n}", user="u-x", updated=T0 + timedelta(minutes=n))
    await make_session(gql, storage, "other", user="u-y", updated=T0 + timedelta(hours=1))
    response = await client.get("/api/sessions", params={"user_id": "u-x", "page": 1, "size": 2})
    assert response.json() == {
        "content": [listed("mine-0", "u-x", "finance_agent", T0, T0)],
        "totalElements": 3,
        "totalPages": 2,
        "page": 1,
        "size": 2,
    }


async def test_list_sessions_empty(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/sessions")
    assert response.status_code == 200
    assert response.json() == {
        "content": [],
        "totalElements": 0,
        "totalPages": 0,
        "page": 0,
        "size": 20,
    }
    response = await client.get("/api/sessions", params={"page": 2, "size": 7})
    assert response.json() == {
        "content": [],
        "totalElements": 0,
        "totalPages": 0,
        "page": 2,
        "size": 7,
    }


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("page=-1", "page"),
        ("page=abc", "page"),
        ("page=", "page"),
        ("page=1.0", "page"),
        ("page=99999999999999999999", "page"),
        ("size=0", "size"),
        ("size=101", "size"),
        ("size=1.5", "size"),
        ("size=-5", "size"),
        ("size=ten", "size"),
        ("size=", "size"),
    ],
)
async def test_list_sessions_bad_paging_is_400(
    client: httpx.AsyncClient, gql: GraphQLClient, storage: Storage, query: str, name: str
) -> None:
    await make_session(gql, storage, "s-1")
    response = await client.get(f"/api/sessions?{query}")
    message = assert_error(response, 400)
    assert name in message
