"""The two kinds of agent backend, over one shared ``httpx.AsyncClient``.

A backend call is a stream of ``BackendEvent``s ending with ``Finished``: an answer that
streams (OpenAI's chunks, or an ``http`` agent's NDJSON or SSE events) yields its pieces
as they arrive; a backend that answers with one JSON document yields the same events at
once. Every failure is an ``AgentBackendError`` whose message names the agent and the
backend URL (never its key).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from agent_sessions.settings import AgentConfig

from . import streams
from .answers import AgentBackendError, BackendEvent

OpenAIMessage = dict[str, Any]  # a message in OpenAI chat format


@dataclass(frozen=True, slots=True)
class AgentTurn:
    """What a backend is asked: the new message after the replayed history."""

    session_id: str
    run_id: str
    agent_id: str
    message: str
    history: list[OpenAIMessage]  # earlier messages, OpenAI chat format, in order
    reasoning: dict[str, Any] | None  # {enabled, effort, budget_tokens}


def public_url(url: str) -> str:
    """``url`` without credentials, query or fragment: fit for an error message."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class AgentRunner:
    """The configured agents, and one HTTP client for all of them."""

    def __init__(
        self, agents: dict[str, AgentConfig], client: httpx.AsyncClient | None = None
    ) -> None:
        self.agents = agents
        self.client = client or httpx.AsyncClient()

    async def aclose(self) -> None:
        await self.client.aclose()

    def get(self, agent_id: str) -> AgentConfig | None:
        return self.agents.get(agent_id)

    @staticmethod
    def url(agent: AgentConfig) -> str:
        if agent.backend == "openai":
            return str(agent.base_url).rstrip("/") + "/chat/completions"
        return str(agent.url)

    def failure(self, agent_id: str, agent: AgentConfig, why: str) -> AgentBackendError:
        """An error that names the agent and where it was asked, never its key."""
        if agent.api_key is not None:
            why = why.replace(agent.api_key.get_secret_value(), "***")
        return AgentBackendError(f"agent {agent_id} ({public_url(self.url(agent))}): {why}")

    def timed_out(self, agent_id: str, agent: AgentConfig) -> AgentBackendError:
        return self.failure(
            agent_id, agent, f"the agent backend did not answer within {agent.timeout_s:g}s"
        )

    async def stream(self, agent: AgentConfig, turn: AgentTurn) -> AsyncIterator[BackendEvent]:
        """The backend's answer to ``turn`` as events; raises ``AgentBackendError``.

        The caller holds the deadline (``agent.timeout_s`` for the whole call, see
        ``timed_out``): httpx's own timeout is per read, so a backend that trickles a byte
        at a time would never trip it.
        """
        try:
            async with self._request(agent, turn) as response:
                if response.status_code >= 400:
                    snippet = (await response.aread())[:200].decode("utf-8", "replace")
                    raise AgentBackendError(
                        f"the agent backend answered {response.status_code}: {snippet}"
                    )
                parse = streams.openai if agent.backend == "openai" else streams.http_agent
                async for event in parse(response):
                    yield event
        except AgentBackendError as exc:
            raise self.failure(turn.agent_id, agent, str(exc)) from None
        except httpx.TimeoutException:
            raise self.timed_out(turn.agent_id, agent) from None
        except httpx.HTTPError as exc:
            why = f"the agent backend could not be reached: {exc}"
            if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
                why = f"the connection to the agent backend broke: {exc}"
            raise self.failure(turn.agent_id, agent, why) from None

    def _request(self, agent: AgentConfig, turn: AgentTurn) -> Any:
        headers = {"Accept": "text/event-stream, application/x-ndjson, application/json"}
        if agent.backend == "openai":
            messages: list[OpenAIMessage] = []
            if agent.system_prompt:
                messages.append({"role": "system", "content": agent.system_prompt})
            messages += turn.history
            messages.append({"role": "user", "content": turn.message})
            body: dict[str, Any] = {
                "model": agent.model,
                "messages": messages,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
            reasoning = turn.reasoning
            if reasoning and reasoning.get("enabled") and reasoning.get("effort"):
                body["reasoning_effort"] = reasoning["effort"]
            if agent.api_key is not None:
                headers["Authorization"] = f"Bearer {agent.api_key.get_secret_value()}"
        else:
            body = {
                "session_id": turn.session_id,
                "run_id": turn.run_id,
                "agent_id": turn.agent_id,
                "message": turn.message,
                "history": turn.history,
                "reasoning": turn.reasoning,
            }
        return self.client.stream(
            "POST", self.url(agent), json=body, headers=headers, timeout=agent.timeout_s
        )
