"""A run's events: their payloads (snake_case, as the server-sent events carry them), the
events of a finished run rebuilt from what is stored, and the messages a run adds as its
events build them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent_sessions.storage.sessions import message_document, now

TERMINAL_EVENTS = frozenset({"end", "error"})


def rfc3339(t: datetime) -> str:
    """The DateTime scalar's spelling: ``2026-05-06T10:00:00Z``, milliseconds if any."""
    t = t.astimezone(UTC).replace(tzinfo=None)
    return t.isoformat(timespec="milliseconds" if t.microsecond else "seconds") + "Z"


@dataclass(frozen=True, slots=True)
class RunEvent:
    seq: int
    name: str
    data: dict[str, Any]

    @property
    def terminal(self) -> bool:
        return self.name in TERMINAL_EVENTS


def usage_payload(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    if not usage:
        return None
    keys = ("input_tokens", "output_tokens", "reasoning_tokens", "total_tokens")
    return {k: usage.get(k) for k in keys}


def terminal_event(seq: int, session_id: str, run: dict[str, Any]) -> RunEvent:
    """The last event of a run that ended as ``run`` says."""
    if run["status"] == "FAILED":
        data = {
            "error": run.get("error") or "failed",
            "run_id": run["id"],
            "session_id": session_id,
        }
        return RunEvent(seq, "error", data)
    data = {
        "run_id": run["id"],
        "session_id": session_id,
        "status": run["status"],
        "content": run.get("content"),
        "usage": usage_payload(run.get("usage")),
    }
    return RunEvent(seq, "end", data)


def replay_of(
    session_id: str, run: dict[str, Any], messages: list[dict[str, Any]]
) -> list[RunEvent]:
    """The events of a finished run whose own events are gone (expired, or it was
    recorded rather than run here), rebuilt from what is stored."""
    out: list[tuple[str, dict[str, Any]]] = [("start", start_payload(session_id, run))]
    if run.get("retrieved_context") or run.get("retrieval_diagnostics") is not None:
        out.append(
            (
                "retrieval",
                {
                    "retrieved_context": run.get("retrieved_context") or [],
                    "retrieval_diagnostics": run.get("retrieval_diagnostics"),
                },
            )
        )
    for m in messages:
        for c in m.get("tool_calls") or ():
            out.append(
                ("tool_call", {"id": c["id"], "name": c["name"], "arguments": c.get("arguments")})
            )
        if m["role"] == "tool":
            out.append(
                (
                    "tool_result",
                    {
                        "tool_call_id": m.get("tool_call_id"),
                        "name": m.get("name"),
                        "content": m.get("content"),
                    },
                )
            )
    if run.get("content"):
        out.append(("delta", {"content": run["content"]}))
    events = [RunEvent(n, name, data) for n, (name, data) in enumerate(out, 1)]
    return [*events, terminal_event(len(events) + 1, session_id, run)]


def start_payload(session_id: str, run: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run["id"],
        "session_id": session_id,
        "agent_id": run.get("agent_id"),
        "created_at": rfc3339(run["created_at"]),
    }


class Transcript:
    """The messages a run adds after its user message, as its events build them: text goes
    to the open assistant message, a tool call joins it, a tool result closes it.

    Each message has a version, bumped at every change; ``pending()`` gives what differs
    from the versions stored, with a mark that ``stored(mark)`` records once the write
    succeeded. Changes made while a write is on its way are the next write's.
    """

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.messages: list[dict[str, Any]] = []
        self._versions: list[int] = []
        self._written: list[int] = []  # the stored version of messages[: len(_written)]
        self._parts: list[str] | None = None  # the open assistant message's text so far
        self.chars = 0

    def _add(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self._versions.append(0)

    def _assistant(self) -> dict[str, Any]:
        if self._parts is None:
            self._add(
                message_document(
                    role="assistant", content=None, run_id=self.run_id, created_at=now()
                )
            )
            self._parts = []
        self._versions[-1] += 1
        return self.messages[-1]

    def delta(self, text: str) -> None:
        self._assistant()
        assert self._parts is not None
        self._parts.append(text)
        self.chars += len(text)

    def tool_call(self, call: dict[str, Any]) -> None:
        self._assistant().setdefault("tool_calls", []).append(call)

    def tool_result(self, tool_call_id: str, name: str | None, content: str | None) -> None:
        self._close()
        self._add(
            message_document(
                role="tool",
                content=content,
                run_id=self.run_id,
                created_at=now(),
                name=name,
                tool_call_id=tool_call_id,
            )
        )
        self.chars += len(content or "")

    def _close(self) -> None:
        self._materialize()
        self._parts = None

    def _materialize(self) -> None:
        if self._parts is not None:
            self.messages[-1]["content"] = "".join(self._parts) or None

    @property
    def content(self) -> str | None:
        """The answer so far: the last assistant message's text."""
        self._materialize()
        return next(
            (m.get("content") for m in reversed(self.messages) if m["role"] == "assistant"), None
        )

    def end(self) -> None:
        """A completed answer ends with an assistant message, as every stored run does."""
        self._close()
        if not self.messages or self.messages[-1]["role"] != "assistant":
            self._add(
                message_document(
                    role="assistant", content=None, run_id=self.run_id, created_at=now()
                )
            )

    @property
    def stored_any(self) -> bool:
        return bool(self._written)

    def pending(self) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]], list[int]]:
        """What the database lacks: fields of stored messages that changed, by id; the new
        messages; and the mark to pass to ``stored()``."""
        self._materialize()
        written = len(self._written)
        changes = {
            m["id"]: {"content": m.get("content"), "tool_calls": m.get("tool_calls")}
            for m, version, stored in zip(
                self.messages,
                self._versions,
                self._written,
                strict=False,  # only stored ones
            )
            if version != stored
        }
        new = [dict(m) for m in self.messages[written:]]
        return changes, new, list(self._versions)

    def stored(self, mark: list[int]) -> None:
        """What ``pending()`` gave with ``mark`` is in the database."""
        self._written = mark


def openai_message(m: dict[str, Any]) -> dict[str, Any]:
    """A stored message in OpenAI's chat format."""
    out: dict[str, Any] = {"role": m["role"], "content": m.get("content")}
    if m["role"] == "assistant" and m.get("tool_calls"):
        out["tool_calls"] = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c.get("arguments")},
            }
            for c in m["tool_calls"]
        ]
    if m["role"] == "tool":
        out["tool_call_id"] = m.get("tool_call_id")
        if m.get("name") is not None:
            out["name"] = m["name"]
    return out
