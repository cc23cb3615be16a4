"""Schemathesis against /api/openapi.json on a live server: no 5xx, and every response
matches the document (status codes, content types, bodies)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from .agent_servers import AgentBackend, agent_configs
from .helpers import LiveServer, live_settings

SESSION = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


@pytest.fixture(scope="module")
def live(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with (
        AgentBackend() as backend,
        LiveServer(
            live_settings(mongo_uri, tmp_path_factory.mktemp("live"), agents=agent_configs(backend))
        ) as server,
    ):
        server.graphql(
            "mutation($i: RecordRunInput!) { recordRun(input: $i) { id } }",
            {
                "i": {
                    "sessionId": SESSION,
                    "runId": "run-1",
                    "agentId": "finance_agent",
                    "messages": [
                        {"role": "USER", "content": "q"},
                        {
                            "role": "ASSISTANT",
                            "content": "a",
                            "toolCalls": [{"id": "t1", "name": "f", "arguments": "{}"}],
                        },
                        {"role": "TOOL", "content": "42", "toolCallId": "t1", "name": "f"},
                        {"role": "ASSISTANT", "content": "done"},
                    ],
                    "retrievalDiagnostics": {"latency_ms": 3},
                    "retrievedContext": [
                        {"id": "c1", "text": "t", "score": 0.5, "meta": {"page": 1}}
                    ],
                    "reasoning": {"effort": "low"},
                    "usage": {"inputTokens": 1, "outputTokens": 2, "totalTokens": 3},
                }
            },
        )
        yield server


@pytest.fixture(scope="module")
def api_schema(live: LiveServer) -> Any:
    return schemathesis.openapi.from_url(f"{live.url}/api/openapi.json")


def test_document_is_openapi_3_1(live: LiveServer) -> None:
    document = httpx.get(f"{live.url}/api/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {
        "/api/agents/{agentId}/runs",
        "/api/sessions",
        "/api/sessions/{session_id}",
        "/api/sessions/{session_id}/messages",
        "/api/sessions/{session_id}/runs",
        "/api/sessions/{session_id}/runs/{run_id}/retrieved-context",
        "/api/sessions/{session_id}/runs/{run_id}/events",
        "/api/sessions/{session_id}/runs/{run_id}/cancel",
        # Beyond the reference (issue 17).
        "/api/sessions/search",
        "/api/sessions/{session_id}/runs/{run_id}",
        "/api/sessions/{session_id}/fork",
    }


# Generated cases for every operation, valid (positive) and invalid (negative) inputs; the
# seeded session's id is offered too, so the 200 paths are exercised, not only the 404s.
@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms(api_schema: Any, mode: GenerationMode) -> None:
    @given(case=api_schema.as_strategy(mode), seeded=st.booleans())
    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,  # the same cases on every run: CI must not pass or fail on luck
    )
    def check(case: Any, seeded: bool) -> None:
        params = case.path_parameters or {}
        if seeded and "session_id" in params:
            if case.method == "DELETE":
                return  # deleting the seeded session would hide the other paths' data
            params["session_id"] = SESSION
        if seeded and "agentId" in params:
            params["agentId"] = "finance_agent"  # a configured agent: real runs, 201s
        response = case.call()
        if response.status_code == 413:
            # A generated body past the 8 MiB limit is refused before it is read; 413 is
            # documented, but the negative-data check does not count it as a rejection.
            assert response.json().keys() == {"error"}
            return
        case.validate_response(response)

    check()


@pytest.mark.parametrize(
    "path",
    [
        f"/api/sessions/{SESSION}",
        f"/api/sessions/{SESSION}/messages",
        f"/api/sessions/{SESSION}/runs",
        f"/api/sessions/{SESSION}/runs/run-1/retrieved-context",
        "/api/sessions?page=0&size=1",
    ],
)
def test_real_data_matches_the_document(live: LiveServer, api_schema: Any, path: str) -> None:
    response = httpx.get(f"{live.url}{path}")
    assert response.status_code == 200
    operation = api_schema.find_operation_by_path(
        "GET", path.split("?")[0].replace(SESSION, "{session_id}").replace("run-1", "{run_id}")
    )
    operation.validate_response(response)
