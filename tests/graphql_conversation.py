"""A recorded conversation (two runs, tool calls, chunks, diagnostics) and what reading it
back must give, shared by the GraphQL query tests."""

from __future__ import annotations

import re
import uuid
from datetime import datetime

from .helpers import GraphQLClient, record

DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")

CREATE_SESSION = """
mutation Create($input: CreateSessionInput!) {
  createSession(input: $input) { id updatedAt }
}
"""

RECORD_FULL = """
mutation Record($input: RecordRunInput!) { recordRun(input: $input) { id sessionId } }
"""

CHUNKS = [
    {
        "id": "c-a",
        "text": "Q1 revenue: $4.2M",
        "score": 0.91,
        "retrievalScore": 0.8,
        "rerankerScore": 0.95,
        "sourceId": "doc-1",
        "sourceName": "q1-report.pdf",
        "knowledgeBaseId": "kb-1",
        "kbName": "Finance",
        "indexingStrategy": "semantic",
        "meta": {"page": 3, "section": "revenue", "tags": ["q1", {"k": None}]},
        "includedInContext": True,
    },
    {"id": "c-b", "text": "Q1 costs", "score": 0.95, "includedInContext": False},
    {"id": "c-c", "text": "Q1 headcount", "score": 0.5},  # includedInContext defaults to true
    {"id": "c-d", "text": "unscored note"},
    {"id": "c-e", "text": "Q4 outlook", "score": 0.7, "includedInContext": False},
]

DIAGNOSTICS = {
    "query": "Q1 revenue",
    "latency_ms": 42,
    "strategies": ["semantic", "keyword"],
    "rerank": {"model": "rr-1", "enabled": True, "threshold": 0.25},
}

RUN1_MESSAGES = [
    {"role": "USER", "content": "What is our Q1 revenue?"},
    {
        "role": "ASSISTANT",
        "content": "Let me look that up.",
        "toolCalls": [
            {"id": "call-1", "name": "lookup_revenue", "arguments": '{"quarter": "Q1"}'},
            {"id": "call-2", "name": "lookup_costs"},
        ],
    },
    {
        "role": "TOOL",
        "content": '{"revenue": 4200000}',
        "toolCallId": "call-1",
        "name": "lookup_revenue",
        "createdAt": "2026-05-06T10:00:03.500Z",
    },
    {"role": "ASSISTANT", "content": "Q1 revenue was $4.2 million."},
]

EXPECTED_MESSAGES = [
    ("USER", "What is our Q1 revenue?", "run-1"),
    ("ASSISTANT", "Let me look that up.", "run-1"),
    ("TOOL", '{"revenue": 4200000}', "run-1"),
    ("ASSISTANT", "Q1 revenue was $4.2 million.", "run-1"),
    ("USER", "And Q2?", "run-2"),
    ("USER", "Compare Q1 and Q2", "run-3"),
    ("ASSISTANT", "Q2 was higher.", "run-3"),
]


async def conversation(gql: GraphQLClient, session_id: str = "conv-1") -> None:
    """A session with three runs: one with tools, chunks and diagnostics, one FAILED
    without an answer, one whose final content was given explicitly."""
    await gql.data(
        CREATE_SESSION,
        {
            "input": {
                "id": session_id,
                "title": "Q1 review",
                "agentId": "finance_agent",
                "metadata": {"team": "finance", "tags": ["q1", "rev"], "nested": {"level": 2}},
            }
        },
    )
    await record(
        gql,
        sessionId=session_id,
        runId="run-1",
        createdAt="2026-05-06T10:00:00Z",
        completedAt="2026-05-06T10:00:05.250Z",
        messages=RUN1_MESSAGES,
        retrievedContext=CHUNKS,
        retrievalDiagnostics=DIAGNOSTICS,
        reasoning={"enabled": True, "effort": "high", "budgetTokens": 2048},
        usage={"inputTokens": 120, "outputTokens": 40, "reasoningTokens": 300, "totalTokens": 460},
    )
    await record(
        gql,
        sessionId=session_id,
        runId="run-2",
        agentId="backup_agent",
        status="FAILED",
        error="backend timed out",
        createdAt="2026-05-06T10:01:00Z",
        messages=[{"role": "USER", "content": "And Q2?"}],
    )
    await record(
        gql,
        sessionId=session_id,
        runId="run-3",
        createdAt="2026-05-06T10:02:00Z",
        content="Q2 beat Q1 by 10%.",
        messages=[
            {"role": "USER", "content": "Compare Q1 and Q2"},
            {"role": "ASSISTANT", "content": "Q2 was higher."},
        ],
    )


def parse_dt(value: str) -> datetime:
    assert DATETIME_RE.match(value), value
    return datetime.fromisoformat(value)


def is_uuid4(value: str) -> bool:
    try:
        return uuid.UUID(value).version == 4 and str(uuid.UUID(value)) == value
    except ValueError:
        return False
