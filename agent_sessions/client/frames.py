"""pandas DataFrames of sessions, messages, runs and chunks, with the ids to join them.

Every frame has the same columns and dtypes whether it has rows or not: ids and text as
strings, timestamps as UTC datetimes, ``role`` and ``status`` as categories (all their
values, in the API's order), scores as floats (NaN when absent), token counts as nullable
integers, and the run's reasoning and usage flattened into ``reasoning_*`` / ``usage_*``.
Join ``messages``, ``runs`` and ``chunks`` on ``session_id`` and ``run_id``.

Needs the ``notebook`` extra: ``pip install 'agent-sessions[notebook]'``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, NamedTuple

try:
    import pandas as pd
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("to_pandas() needs pandas: pip install 'agent-sessions[notebook]'") from exc

if TYPE_CHECKING:
    from .models import Message, RetrievedChunk, Run, Session

ROLES = pd.CategoricalDtype(["user", "assistant", "tool", "system"])
STATUSES = pd.CategoricalDtype(["QUEUED", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"])
UTC_TIME = pd.DatetimeTZDtype(unit="ms", tz="UTC")  # BSON dates keep milliseconds
STRING = pd.StringDtype()

SESSION_DTYPES: dict[str, Any] = {
    "session_id": STRING,
    "user_id": STRING,
    "agent_id": STRING,
    "title": STRING,
    "metadata": object,
    "created_at": UTC_TIME,
    "updated_at": UTC_TIME,
    "message_count": "int64",
    "run_count": "int64",
}
MESSAGE_DTYPES: dict[str, Any] = {
    "message_id": STRING,
    "session_id": STRING,
    "position": "int64",  # the message's place in its session, from 0
    "role": ROLES,
    "content": STRING,
    "run_id": STRING,
    "created_at": UTC_TIME,
    "name": STRING,
    "tool_call_id": STRING,
    "tool_calls": object,  # list of {id, name, arguments}
}
RUN_DTYPES: dict[str, Any] = {
    "run_id": STRING,
    "session_id": STRING,
    "agent_id": STRING,
    "status": STATUSES,
    "input": STRING,
    "content": STRING,
    "error": STRING,
    "created_at": UTC_TIME,
    "started_at": UTC_TIME,
    "completed_at": UTC_TIME,
    "reasoning_enabled": "boolean",
    "reasoning_effort": STRING,
    "reasoning_budget_tokens": "Int64",
    "usage_input_tokens": "Int64",
    "usage_output_tokens": "Int64",
    "usage_reasoning_tokens": "Int64",
    "usage_total_tokens": "Int64",
    "retrieval_diagnostics": object,
}
CHUNK_DTYPES: dict[str, Any] = {
    "chunk_id": STRING,
    "run_id": STRING,
    "session_id": STRING,
    "rank": "int64",  # the chunk's place in its run's retrieved context, from 0
    "text": STRING,
    "score": "float64",
    "retrieval_score": "float64",
    "reranker_score": "float64",
    "source_id": STRING,
    "source_name": STRING,
    "knowledge_base_id": STRING,
    "kb_name": STRING,
    "indexing_strategy": STRING,
    "meta": object,
    "included_in_context": "bool",
}


class Frames(NamedTuple):
    sessions: pd.DataFrame
    messages: pd.DataFrame
    runs: pd.DataFrame
    chunks: pd.DataFrame


def _frame(rows: list[dict[str, Any]], dtypes: dict[str, Any]) -> pd.DataFrame:
    columns = {}
    for name, dtype in dtypes.items():
        values = [row[name] for row in rows]
        if dtype is UTC_TIME:
            # Aware datetimes; to_datetime with utc=True keeps None as NaT.
            columns[name] = pd.to_datetime(pd.Series(values, dtype=object), utc=True).astype(
                UTC_TIME
            )
        elif dtype is object:
            columns[name] = pd.Series(values, dtype=object)
        else:
            columns[name] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(columns)


def sessions_frame(sessions: Iterable[Session]) -> pd.DataFrame:
    rows = [
        {
            "session_id": s.id,
            "user_id": s.user_id,
            "agent_id": s.agent_id,
            "title": s.title,
            "metadata": s.metadata,
            "created_at": s.created_at,
            "updated_at": s.updated_at,
            "message_count": s.message_count,
            "run_count": s.run_count,
        }
        for s in sessions
    ]
    return _frame(rows, SESSION_DTYPES)


def messages_frame(messages: Iterable[Message]) -> pd.DataFrame:
    positions: dict[str, int] = {}
    rows = []
    for m in messages:
        position = positions.get(m.session_id, 0)
        positions[m.session_id] = position + 1
        rows.append(
            {
                "message_id": m.id,
                "session_id": m.session_id,
                "position": position,
                "role": m.role,
                "content": m.content,
                "run_id": m.run_id,
                "created_at": m.created_at,
                "name": m.name,
                "tool_call_id": m.tool_call_id,
                "tool_calls": [c.model_dump() for c in m.tool_calls],
            }
        )
    return _frame(rows, MESSAGE_DTYPES)


def runs_frame(runs: Iterable[Run]) -> pd.DataFrame:
    rows = []
    for r in runs:
        reasoning, usage = r.reasoning, r.usage
        rows.append(
            {
                "run_id": r.id,
                "session_id": r.session_id,
                "agent_id": r.agent_id,
                "status": r.status,
                "input": r.input,
                "content": r.content,
                "error": r.error,
                "created_at": r.created_at,
                "started_at": r.started_at,
                "completed_at": r.completed_at,
                "reasoning_enabled": reasoning.enabled if reasoning else None,
                "reasoning_effort": reasoning.effort if reasoning else None,
                "reasoning_budget_tokens": reasoning.budget_tokens if reasoning else None,
                "usage_input_tokens": usage.input_tokens if usage else None,
                "usage_output_tokens": usage.output_tokens if usage else None,
                "usage_reasoning_tokens": usage.reasoning_tokens if usage else None,
                "usage_total_tokens": usage.total_tokens if usage else None,
                "retrieval_diagnostics": r.retrieval_diagnostics,
            }
        )
    return _frame(rows, RUN_DTYPES)


def chunks_frame(
    runs: Iterable[tuple[str, str, Iterable[RetrievedChunk]]],
) -> pd.DataFrame:
    """Chunks of (session id, run id, chunks) triples, in rank order within each run."""
    rows = []
    for session_id, run_id, chunks in runs:
        for rank, c in enumerate(chunks):
            rows.append(
                {
                    "chunk_id": c.id,
                    "run_id": run_id,
                    "session_id": session_id,
                    "rank": rank,
                    "text": c.text,
                    "score": c.score,
                    "retrieval_score": c.retrieval_score,
                    "reranker_score": c.reranker_score,
                    "source_id": c.source_id,
                    "source_name": c.source_name,
                    "knowledge_base_id": c.knowledge_base_id,
                    "kb_name": c.kb_name,
                    "indexing_strategy": c.indexing_strategy,
                    "meta": c.meta,
                    "included_in_context": c.included_in_context,
                }
            )
    return _frame(rows, CHUNK_DTYPES)
