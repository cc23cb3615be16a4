"""The two reference documents' own client examples, run as written against a live server
(only the host differs) on data recorded through GraphQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from .helpers import LiveServer, curl, live_settings

SESSION = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
ADMIN_KEY = "seed-admin-key-for-tests"

RECORD = """
mutation Record($input: RecordRunInput!) { recordRun(input: $input) { id } }
"""


def _seed_004(server: LiveServer, headers: dict[str, str] | None = None) -> None:
    """The conversation seed 004 shows: user-123 asking finance_agent, two runs."""
    turns = [
        (
            "run-abc123",
            "What is our refund policy for enterprise customers?",
            "Enterprise customers are eligible for a full refund within 30 days...",
        ),
        (
            "run-def456",
            "And after 30 days?",
            "In summary: 30-day full refund, 90-day partial refund.",
        ),
    ]
    for run_id, question, answer in turns:
        server.graphql(
            RECORD,
            {
                "input": {
                    "sessionId": SESSION,
                    "runId": run_id,
                    "userId": "user-123",
                    "agentId": "finance_agent",
                    "messages": [
                        {"role": "USER", "content": question},
                        {"role": "ASSISTANT", "content": answer},
                    ],
                    "retrievalDiagnostics": {"query": question, "latency_ms": 42},
                    "retrievedContext": [
                        {
                            "id": f"chunk-{run_id}-{i}",
                            "text": f"Refund policy, section {i}",
                            "score": 0.84 - i / 10,
                            "retrievalScore": 0.71 - i / 10,
                            "rerankerScore": 0.84 - i / 10,
                            "sourceId": "src-uuid",
                            "sourceName": "Q3-2025.pdf",
                            "knowledgeBaseId": "kb-uuid",
                            "kbName": "Finance docs",
                            "indexingStrategy": "chunk_embed",
                            "meta": {},
                            "includedInContext": i == 0,
                        }
                        for i in range(2)
                    ],
                }
            },
            headers=headers,
        )
    # Another user's session, so the filters have something to leave out.
    server.graphql(
        RECORD,
        {
            "input": {
                "userId": "user-456",
                "agentId": "support_agent",
                "messages": [{"role": "USER", "content": "hi"}],
            }
        },
        headers=headers,
    )


@pytest.fixture
def open_server(mongo_uri: str, tmp_path: Any) -> Iterator[LiveServer]:
    with LiveServer(live_settings(mongo_uri, tmp_path)) as server:
        _seed_004(server)
        yield server


def test_seed_004_listing_sessions(open_server: LiveServer) -> None:
    status, body = curl(open_server, "curl http://localhost:8080/api/sessions")
    everyone = json.loads(body)
    assert status == 200
    assert everyone["totalElements"] == 2
    assert everyone["totalPages"] == 1
    assert set(everyone["content"][0]) == {
        "sessionId",
        "userId",
        "agentId",
        "createdAt",
        "updatedAt",
    }

    _, body = curl(open_server, 'curl "http://localhost:8080/api/sessions?userId=user-123"')
    mine = json.loads(body)
    assert [s["sessionId"] for s in mine["content"]] == [SESSION]
    assert mine["content"][0]["userId"] == "user-123"
    assert mine["content"][0]["agentId"] == "finance_agent"
    assert mine["content"][0]["createdAt"].endswith("Z")
    assert (mine["totalElements"], mine["totalPages"]) == (1, 1)

    _, body = curl(open_server, 'curl "http://localhost:8080/api/sessions?agentId=finance_agent"')
    assert [s["sessionId"] for s in json.loads(body)["content"]] == [SESSION]

    _, body = curl(
        open_server,
        'curl "http://localhost:8080/api/sessions?userId=user-123&agentId=finance_agent"',
    )
    assert [s["sessionId"] for s in json.loads(body)["content"]] == [SESSION]
    _, body = curl(
        open_server,
        'curl "http://localhost:8080/api/sessions?userId=user-123&agentId=support_agent"',
    )
    assert json.loads(body) == {
        "content": [],
        "totalElements": 0,
        "totalPages": 0,
        "page": 0,
        "size": 20,
    }


def test_seed_004_session_details_runs_and_delete(open_server: LiveServer) -> None:
    status, body = curl(open_server, f"curl http://localhost:8080/api/sessions/{SESSION}")
    session = json.loads(body)
    assert status == 200
    assert set(session) == {"sessionId", "userId", "agentId", "messages", "createdAt", "updatedAt"}
    assert session["sessionId"] == SESSION
    assert session["messages"][:2] == [
        {"role": "user", "content": "What is our refund policy for enterprise customers?"},
        {
            "role": "assistant",
            "content": "Enterprise customers are eligible for a full refund within 30 days...",
        },
    ]

    status, body = curl(open_server, f"curl http://localhost:8080/api/sessions/{SESSION}/runs")
    runs = json.loads(body)
    assert status == 200
    assert [(r["runId"], r["sessionId"], r["status"]) for r in runs] == [
        ("run-abc123", SESSION, "COMPLETED"),
        ("run-def456", SESSION, "COMPLETED"),
    ]
    assert runs[1]["content"] == "In summary: 30-day full refund, 90-day partial refund."
    assert runs[0]["createdAt"] <= runs[1]["createdAt"]

    status, body = curl(open_server, f"curl -X DELETE http://localhost:8080/api/sessions/{SESSION}")
    assert (status, body) == (204, "")
    status, body = curl(open_server, f"curl http://localhost:8080/api/sessions/{SESSION}")
    assert status == 404
    assert json.loads(body) == {"error": "session not found"}


@pytest.fixture
def keyed_server(mongo_uri: str, tmp_path: Any) -> Iterator[LiveServer]:
    with LiveServer(live_settings(mongo_uri, tmp_path, admin_key=ADMIN_KEY)) as server:
        _seed_004(server, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
        yield server


def test_seed_000_client_calls(keyed_server: LiveServer) -> None:
    # The API reference's examples, verbatim but for these three names.
    BASE_URL = keyed_server.url
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    session_id = SESSION
    run_id = "run-abc123"

    response = requests.get(f"{BASE_URL}/api/sessions/{session_id}", headers=headers)
    assert response.status_code == 200
    assert response.json()["sessionId"] == session_id

    response = requests.get(f"{BASE_URL}/api/sessions/{session_id}/messages", headers=headers)
    messages = response.json()
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    first_answer = messages[1]
    assert set(first_answer) == {
        "id",
        "role",
        "content",
        "run_id",
        "created_at",
        "retrieved_context",
    }
    assert first_answer["run_id"] == run_id
    assert [c["id"] for c in first_answer["retrieved_context"]] == [
        "chunk-run-abc123-0",
        "chunk-run-abc123-1",
    ]
    assert "retrieved_context" not in messages[0]

    response = requests.get(f"{BASE_URL}/api/sessions/{session_id}/runs", headers=headers)
    assert [r["runId"] for r in response.json()] == ["run-abc123", "run-def456"]

    response = requests.get(
        f"{BASE_URL}/api/sessions/{session_id}/runs/{run_id}/retrieved-context", headers=headers
    )
    body = response.json()
    assert body["session_id"] == session_id
    assert body["run_id"] == run_id
    diagnostics, chunk, _ = body["retrieved_context"]
    assert diagnostics == {
        "_type": "retrieval_diagnostics",
        "query": "What is our refund policy for enterprise customers?",
        "latency_ms": 42,
    }
    assert chunk == {
        "id": "chunk-run-abc123-0",
        "text": "Refund policy, section 0",
        "score": 0.84,
        "retrieval_score": 0.71,
        "reranker_score": 0.84,
        "source_id": "src-uuid",
        "source_name": "Q3-2025.pdf",
        "knowledge_base_id": "kb-uuid",
        "kb_name": "Finance docs",
        "indexing_strategy": "chunk_embed",
        "meta": {},
        "included_in_context": True,
    }

    response = requests.delete(f"{BASE_URL}/api/sessions/{session_id}", headers=headers)
    assert response.status_code == 204
    assert response.content == b""

    # Errors return {"error": "<message>"}: a missing session, a run not in this session.
    response = requests.get(f"{BASE_URL}/api/sessions/{session_id}", headers=headers)
    assert (response.status_code, response.json()) == (404, {"error": "session not found"})
    response = requests.get(f"{BASE_URL}/api/sessions/{session_id}", headers={})
    assert response.status_code == 401
    assert set(response.json()) == {"error"}
