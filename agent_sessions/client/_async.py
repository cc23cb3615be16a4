"""``AsyncClient``: the asyncio client; the same methods as ``Client``, awaited."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import httpx
from httpx_sse import EventSource

from . import _operations as op
from ._config import ClientConfig
from .events import RunEvent, UnknownEvent
from .models import (
    Conversation,
    Dataset,
    MessageList,
    RetrievedContext,
    Run,
    RunList,
    SearchHit,
    Session,
    SessionList,
)

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")


class AsyncSessionPager:
    """Every session that matches, fetched a page (100) at a time as you ``async for``."""

    def __init__(self, client: AsyncClient, first: op.Call[op.Page[Session]]) -> None:
        self._client = client
        self._first = first

    async def __aiter__(self) -> AsyncIterator[Session]:
        call: op.Call[op.Page[Session]] | None = self._first
        while call is not None:
            page = await self._client._send(call)
            for item in page.items:
                yield item
            call = page.next

    async def to_list(self) -> SessionList:
        return SessionList([s async for s in self])

    async def to_pandas(self) -> pd.DataFrame:
        return (await self.to_list()).to_pandas()


class AsyncClient(ClientConfig):
    """The asyncio twin of ``Client``: ``async with AsyncClient(url) as client: ...``."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = 120.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(base_url, api_key)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(timeout=timeout)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # --- transport ----------------------------------------------------------------------

    async def _send(self, call: op.Call[T]) -> T:
        request = self._http.build_request(
            call.method, self.url(call), json=call.json, headers=self.headers(call)
        )
        return call.read(await self._http.send(request))

    async def _run(self, flow: op.Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                call = flow.send(await self._send(call))
        except StopIteration as done:
            return done.value

    # --- reads --------------------------------------------------------------------------

    def sessions(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        updated_after: datetime | str | None = None,
        updated_before: datetime | str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> AsyncSessionPager:
        return AsyncSessionPager(
            self,
            op.sessions(user_id=user_id, agent_id=agent_id, updated_after=updated_after,
                        updated_before=updated_before, metadata=metadata),
        )  # fmt: skip

    async def session(self, session_id: str) -> Session:
        return await self._send(op.session(session_id))

    async def messages(self, session_id: str) -> MessageList:
        return MessageList(await self._run(op.messages(session_id)))

    async def runs(self, session_id: str, *, retrieved_context: bool = False) -> RunList:
        return RunList(await self._run(op.runs(session_id, retrieved_context=retrieved_context)))

    async def retrieved_context(self, session_id: str, run_id: str) -> RetrievedContext:
        return await self._send(op.retrieved_context(session_id, run_id))

    async def conversation(self, session_id: str) -> Conversation:
        return await self._run(op.conversation(session_id))

    async def load(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        updated_after: datetime | str | None = None,
        updated_before: datetime | str | None = None,
    ) -> Dataset:
        pager = self.sessions(user_id=user_id, agent_id=agent_id, updated_after=updated_after,
                              updated_before=updated_before)  # fmt: skip
        return Dataset([await self.conversation(s.id) async for s in pager])

    # --- writes -------------------------------------------------------------------------

    async def update_session(
        self,
        session_id: str,
        *,
        title: Any = op._UNSET,
        metadata: Any = op._UNSET,
        expires_at: Any = op._UNSET,
    ) -> Session:
        """Change a session's title, metadata or expiry: what is given (``None`` clears)."""
        return await self._send(
            op.update_session(session_id, title=title, metadata=metadata, expires_at=expires_at)
        )

    async def fork(
        self, session_id: str, at_message_id: str, *, title: str | None = None
    ) -> Session:
        """A new session with the messages up to ``at_message_id`` and their runs."""
        return await self._send(op.fork(session_id, at_message_id, title=title))

    async def delete_run(self, session_id: str, run_id: str) -> None:
        """Delete one run with its messages and retrieved context."""
        await self._send(op.delete_run(session_id, run_id))

    async def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        newest: bool = False,
        limit: int = 20,
    ) -> list[SearchHit]:
        """Messages matching words or "phrases" (case and accents do not count), best first."""
        return await self._send(
            op.search(query, user_id=user_id, agent_id=agent_id, newest=newest, limit=limit)
        )

    async def delete(self, session_id: str) -> None:
        await self._send(op.delete(session_id))

    @overload
    async def run_agent(
        self,
        agent_id: str,
        message: str,
        *,
        session_id: str | None = ...,
        user_id: str | None = ...,
        reasoning: Mapping[str, Any] | None = ...,
        stream: Literal[False] = ...,
    ) -> Run: ...
    @overload
    async def run_agent(
        self,
        agent_id: str,
        message: str,
        *,
        session_id: str | None = ...,
        user_id: str | None = ...,
        reasoning: Mapping[str, Any] | None = ...,
        stream: Literal[True],
    ) -> AsyncIterator[RunEvent | UnknownEvent]: ...
    async def run_agent(
        self,
        agent_id: str,
        message: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        reasoning: Mapping[str, Any] | None = None,
        stream: bool = False,
    ) -> Run | AsyncIterator[RunEvent | UnknownEvent]:
        """See ``Client.run_agent``; with ``stream=True``, ``async for`` over the result."""
        kw = {"session_id": session_id, "user_id": user_id, "reasoning": reasoning}
        if stream:
            return self.stream_run(agent_id, message, **kw)
        return await self._send(op.run_agent(agent_id, message, **kw))

    async def stream_run(
        self,
        agent_id: str,
        message: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        reasoning: Mapping[str, Any] | None = None,
    ) -> AsyncIterator[RunEvent | UnknownEvent]:
        """See ``Client.stream_run``: ``async for event in client.stream_run(...)``."""
        call = op.stream_run(agent_id, message, session_id=session_id, user_id=user_id,
                             reasoning=reasoning)  # fmt: skip
        async with self._http.stream(
            call.method, self.url(call), json=call.json, headers=self.headers(call)
        ) as response:
            if not response.is_success:
                await response.aread()
            op.check_stream(response)
            async for sse in EventSource(response).aiter_sse():
                yield op.event(response, sse)
