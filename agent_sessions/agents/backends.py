"""The two kinds of agent backend, over one shared ``httpx.AsyncClient``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent_sessions.settings import AgentConfig

Message = dict[str, Any]


class AgentBackendError(Exception):
    """The backend did not produce an answer; the message says why."""


@dataclass(frozen=True, slots=True)
class AgentTurn:
    """What a backend is asked: the new message after the replayed history."""

    session_id: str
    run_id: str
    agent_id: str
    message: str
    history: list[Message]  # earlier messages, OpenAI chat format, in order
    reasoning: dict[str, Any] | None  # {enabled, effort, budget_tokens}


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ReplyToolCall(_Lenient):
    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    arguments: str | None = None


class ReplyMessage(_Lenient):
    role: Literal["assistant", "tool", "system"]
    content: str | None = None
    name: str | None = None
    tool_calls: list[ReplyToolCall] | None = None
    tool_call_id: str | None = None


# What the API can serve back: GraphQL's Int is 32 bits, and JSON has no NaN or infinity.
Score = Annotated[float, Field(allow_inf_nan=False)]
Tokens = Annotated[int, Field(ge=0, le=2**31 - 1)]


class ReplyChunk(_Lenient):
    id: str = Field(min_length=1)
    text: str
    score: Score | None = None
    retrieval_score: Score | None = None
    reranker_score: Score | None = None
    source_id: str | None = None
    source_name: str | None = None
    knowledge_base_id: str | None = None
    kb_name: str | None = None
    indexing_strategy: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    included_in_context: bool = True


class ReplyUsage(_Lenient):
    input_tokens: Tokens | None = None
    output_tokens: Tokens | None = None
    reasoning_tokens: Tokens | None = None
    total_tokens: Tokens | None = None


class AgentReply(_Lenient):
    """An agent's answer: ``http`` agents send it as is; ``openai`` answers are mapped to it."""

    content: str | None
    messages: list[ReplyMessage] | None = None
    retrieved_context: list[ReplyChunk] | None = None
    retrieval_diagnostics: dict[str, Any] | None = None
    usage: ReplyUsage | None = None


def _openai_usage(usage: Any) -> ReplyUsage | None:
    if not isinstance(usage, dict):
        return None
    details = usage.get("completion_tokens_details") or {}
    return ReplyUsage(
        input_tokens=usage.get("prompt_tokens"),
        output_tokens=usage.get("completion_tokens"),
        reasoning_tokens=details.get("reasoning_tokens") if isinstance(details, dict) else None,
        total_tokens=usage.get("total_tokens"),
    )


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

    async def ask(self, agent: AgentConfig, turn: AgentTurn) -> AgentReply:
        """The agent's answer to ``turn``; raises ``AgentBackendError``."""
        try:
            if agent.backend == "openai":
                return await self._openai(agent, turn)
            return await self._http(agent, turn)
        except httpx.TimeoutException:
            raise AgentBackendError(
                f"the agent backend did not answer within {agent.timeout_s:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise AgentBackendError(f"the agent backend could not be reached: {exc}") from None

    async def _post(
        self, url: str, body: dict[str, Any], agent: AgentConfig, headers: dict[str, str]
    ) -> Any:
        response = await self.client.post(url, json=body, headers=headers, timeout=agent.timeout_s)
        if response.status_code >= 400:
            snippet = response.text[:200]
            raise AgentBackendError(f"the agent backend answered {response.status_code}: {snippet}")
        try:
            return response.json()
        except ValueError:
            raise AgentBackendError("the agent backend's answer is not JSON") from None

    async def _openai(self, agent: AgentConfig, turn: AgentTurn) -> AgentReply:
        messages: list[Message] = []
        if agent.system_prompt:
            messages.append({"role": "system", "content": agent.system_prompt})
        messages += turn.history
        messages.append({"role": "user", "content": turn.message})
        body: dict[str, Any] = {"model": agent.model, "messages": messages}
        reasoning = turn.reasoning
        if reasoning and reasoning.get("enabled") and reasoning.get("effort"):
            body["reasoning_effort"] = reasoning["effort"]
        headers = {}
        if agent.api_key is not None:
            headers["Authorization"] = f"Bearer {agent.api_key.get_secret_value()}"
        url = str(agent.base_url).rstrip("/") + "/chat/completions"
        answer = await self._post(url, body, agent, headers)
        try:
            message = answer["choices"][0]["message"]
            content = message.get("content")
            if content is not None and not isinstance(content, str):
                raise TypeError
            calls = [
                ReplyToolCall(
                    id=c["id"], name=c["function"]["name"], arguments=c["function"].get("arguments")
                )
                for c in message.get("tool_calls") or ()
            ]
            usage = _openai_usage(answer.get("usage"))
        except (KeyError, IndexError, TypeError, AttributeError, ValidationError):
            raise AgentBackendError("the agent backend's answer is not a chat completion") from None
        reply = ReplyMessage(role="assistant", content=content, tool_calls=calls or None)
        return AgentReply(content=content, messages=[reply], usage=usage)

    async def _http(self, agent: AgentConfig, turn: AgentTurn) -> AgentReply:
        body = {
            "session_id": turn.session_id,
            "run_id": turn.run_id,
            "agent_id": turn.agent_id,
            "message": turn.message,
            "history": turn.history,
            "reasoning": turn.reasoning,
        }
        answer = await self._post(str(agent.url), body, agent, {})
        try:
            return AgentReply.model_validate(answer)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(map(str, first["loc"])) or "answer"
            raise AgentBackendError(
                f"the agent backend's answer is malformed at {where}: {first['msg']}"
            ) from None
