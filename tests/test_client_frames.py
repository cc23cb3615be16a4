"""``to_pandas()``: the frames' columns and dtypes, with rows and without, and that pandas is
imported only when a frame is asked for."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pandas as pd
import pytest

from agent_sessions.client import (
    Conversation,
    Dataset,
    Message,
    MessageList,
    RetrievedChunk,
    Run,
    RunList,
    Session,
    SessionList,
)
from agent_sessions.client.frames import (
    CHUNK_DTYPES,
    MESSAGE_DTYPES,
    RUN_DTYPES,
    SESSION_DTYPES,
)

T = datetime(2026, 5, 6, 10, 0, 0, 123000, tzinfo=UTC)


def graphql_run(**fields: object) -> Run:
    """A run as the GraphQL API spells it."""
    base = {"id": "r1", "sessionId": "s1", "agentId": "a", "status": "COMPLETED",
            "createdAt": "2026-05-06T10:00:00.123Z", "completedAt": None}  # fmt: skip
    return Run.model_validate(base | fields)


def test_runs_flatten_reasoning_and_usage_into_typed_columns() -> None:
    runs = RunList(
        [
            graphql_run(
                reasoning={"enabled": True, "effort": "high", "budgetTokens": 512},
                usage={
                    "inputTokens": 10,
                    "outputTokens": 5,
                    "reasoningTokens": None,
                    "totalTokens": 15,
                },
                retrievalDiagnostics={"latency_ms": 12},
            ),
            graphql_run(id="r2", status="FAILED", error="backend down"),
        ]
    )
    frame = runs.to_pandas()
    assert list(frame.columns) == list(RUN_DTYPES)
    assert frame["usage_total_tokens"].tolist() == [15, pd.NA]
    assert str(frame["usage_total_tokens"].dtype) == "Int64"
    assert frame["usage_reasoning_tokens"].isna().all()
    assert frame["reasoning_effort"].tolist() == ["high", pd.NA]
    assert frame["reasoning_budget_tokens"].tolist() == [512, pd.NA]
    assert frame["reasoning_enabled"].tolist() == [True, pd.NA]
    assert list(frame["status"].cat.categories) == [
        "QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED",
    ]  # fmt: skip
    assert frame["created_at"].iloc[0] == pd.Timestamp("2026-05-06T10:00:00.123Z")
    assert str(frame["created_at"].dt.tz) == "UTC"
    assert frame["completed_at"].isna().all()
    assert frame["retrieval_diagnostics"].iloc[0] == {"latency_ms": 12}


def test_messages_are_numbered_within_their_session_and_roles_are_categories() -> None:
    def message(id: str, session: str, role: str) -> Message:
        return Message(id=id, session_id=session, role=role, created_at=T)

    messages = MessageList(
        [message("m1", "s1", "USER"), message("m2", "s1", "assistant"), message("m3", "s2", "tool")]
    )
    frame = messages.to_pandas()
    assert list(frame.columns) == list(MESSAGE_DTYPES)
    assert frame["position"].tolist() == [0, 1, 0]
    assert frame["role"].tolist() == ["user", "assistant", "tool"]
    assert list(frame["role"].cat.categories) == ["user", "assistant", "tool", "system"]
    assert frame["tool_calls"].tolist() == [[], [], []]


def test_chunks_keep_rank_order_and_scores_as_floats() -> None:
    chunks = [
        RetrievedChunk(id="c1", text="a", score=0.9, retrieval_score=0.7, reranker_score=0.9),
        RetrievedChunk(id="c2", text="b", retrieval_score=0.6, included_in_context=False),
    ]
    frame = RunList(
        [graphql_run().model_copy(update={"retrieved_context": chunks})]
    ).chunks_to_pandas()
    assert list(frame.columns) == list(CHUNK_DTYPES)
    assert frame["rank"].tolist() == [0, 1]
    assert frame["score"].dtype == "float64"
    assert frame["score"].isna().tolist() == [False, True]
    assert frame["included_in_context"].tolist() == [True, False]
    assert (frame["session_id"] == "s1").all() and (frame["run_id"] == "r1").all()


@pytest.mark.parametrize(
    ("empty", "dtypes"),
    [
        (lambda: SessionList().to_pandas(), SESSION_DTYPES),
        (lambda: MessageList().to_pandas(), MESSAGE_DTYPES),
        (lambda: RunList().to_pandas(), RUN_DTYPES),
        (lambda: RunList().chunks_to_pandas(), CHUNK_DTYPES),
    ],
)
def test_empty_frames_have_the_same_columns_and_dtypes(empty, dtypes) -> None:
    frame = empty()
    assert len(frame) == 0
    assert list(frame.columns) == list(dtypes)
    for column, dtype in dtypes.items():
        assert frame[column].dtype == (dtype if dtype is not object else "object"), column


def test_a_dataset_gives_four_frames() -> None:
    session = Session(id="s1", user_id="u", created_at=T, updated_at=T, message_count=1)
    conversation = Conversation(
        session=session,
        messages=[Message(id="m1", session_id="s1", role="user", created_at=T, run_id="r1")],
        runs=[graphql_run(retrievedContext=[{"id": "c1", "text": "t"}])],
    )
    frames = Dataset([conversation]).to_pandas()
    assert [len(f) for f in frames] == [1, 1, 1, 1]
    assert frames.sessions["message_count"].tolist() == [1]
    assert frames.messages.merge(frames.runs, on=["session_id", "run_id"]).shape[0] == 1


def test_importing_the_package_and_the_client_does_not_import_pandas() -> None:
    code = (
        "import sys, agent_sessions\n"
        "assert 'agent_sessions.client' not in sys.modules\n"
        "from agent_sessions import Client, AsyncClient, AgentSessionsError\n"
        "assert 'pandas' not in sys.modules, 'pandas imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
