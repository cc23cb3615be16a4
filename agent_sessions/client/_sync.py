"""``Client``: the blocking client, for scripts and notebooks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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


class SessionPager:
    """Every session that matches, fetched a page (100) at a time as you iterate."""

    def __init__(self, client: Client, first: op.Call[op.Page[Session]]) -> None:
        self._client = client
        self._first = first

    def __iter__(self) -> Iterator[Session]:
        call: op.Call[op.Page[Session]] | None = self._first
        while call is not None:
            page = self._client._send(call)
            yield from page.items
            call = page.next

    def to_list(self) -> SessionList:
        return SessionList(self)

    def to_pandas(self) -> pd.DataFrame:
        """One row per session (see ``SessionList.to_pandas``)."""
        return self.to_list().to_pandas()


class Client(ClientConfig):
    """A client of an agent-sessions server.

    >>> client = Client("http://127.0.0.1:8080", api_key=None)  # open mode needs no key
    >>> frames = client.load(user_id="alice").to_pandas()

    Failures raise ``AgentSessionsError`` (status, code, message); a server that cannot be
    reached raises httpx's ``TransportError``. Pass ``http_client`` to use your own
    ``httpx.Client`` (proxies, event hooks, a test transport); it is then yours to close.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = 120.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        super().__init__(base_url, api_key)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=timeout)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ----------------------------------------------------------------------

    def _send(self, call: op.Call[T]) -> T:
        request = self._http.build_request(
            call.method, self.url(call), json=call.json, headers=self.headers(call)
        )
        return call.read(self._http.send(request))

    def _run(self, flow: op.Flow[T]) -> T:
        try:
            call = next(flow)
            while True:
                call = flow.send(self._send(call))
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
    ) -> SessionPager:
        """Sessions, newest ``updated_at`` first, every page fetched as you iterate. The
        bounds are exclusive; datetimes must be aware."""
        return SessionPager(
            self,
            op.sessions(user_id=user_id, agent_id=agent_id, updated_after=updated_after,
                        updated_before=updated_before, metadata=metadata),
        )  # fmt: skip

    def session(self, session_id: str) -> Session:
        """One session's fields (``NOT_FOUND`` when it is missing or not yours)."""
        return self._send(op.session(session_id))

    def messages(self, session_id: str) -> MessageList:
        """Every message in order; assistant messages with their run's chunks."""
        return MessageList(self._run(op.messages(session_id)))

    def runs(self, session_id: str, *, retrieved_context: bool = False) -> RunList:
        """Every run, oldest first; with ``retrieved_context``, each with its chunks."""
        return RunList(self._run(op.runs(session_id, retrieved_context=retrieved_context)))

    def retrieved_context(self, session_id: str, run_id: str) -> RetrievedContext:
        """A run's diagnostics and chunks, in rank order."""
        return self._send(op.retrieved_context(session_id, run_id))

    def conversation(self, session_id: str) -> Conversation:
        """A session with every message and run (and chunks), in one request when it fits."""
        return self._run(op.conversation(session_id))

    def load(
        self,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        updated_after: datetime | str | None = None,
        updated_before: datetime | str | None = None,
    ) -> Dataset:
        """Every matching session with its messages, runs and chunks; ``.to_pandas()``
        gives the four frames. One request per page of sessions, then one per session."""
        return Dataset(
            self.conversation(s.id)
            for s in self.sessions(user_id=user_id, agent_id=agent_id,
                                   updated_after=updated_after, updated_before=updated_before)
        )  # fmt: skip

    # --- writes -------------------------------------------------------------------------

    def update_session(
        self,
        session_id: str,
        *,
        title: Any = op._UNSET,
        metadata: Any = op._UNSET,
        expires_at: Any = op._UNSET,
    ) -> Session:
        """Change a session's title, metadata or expiry: what is given (``None`` clears)."""
        return self._send(
            op.update_session(session_id, title=title, metadata=metadata, expires_at=expires_at)
        )

    def fork(self, session_id: str, at_message_id: str, *, title: str | None = None) -> Session:
        """A new session with the messages up to ``at_message_id`` and their runs."""
        return self._send(op.fork(session_id, at_message_id, title=title))

    def delete_run(self, session_id: str, run_id: str) -> None:
        """Delete one run with its messages and retrieved context."""
        self._send(op.delete_run(session_id, run_id))

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        agent_id: str | None = None,
        newest: bool = False,
        limit: int = 20,
    ) -> list[SearchHit]:
        """Messages matching words or "phrases" (case and accents do not count), best first."""
        return self._send(
            op.search(query, user_id=user_id, agent_id=agent_id, newest=newest, limit=limit)
        )

    def delete(self, session_id: str) -> None:
        """Delete a session with its messages, runs and context."""
        self._send(op.delete(session_id))

    @overload
    def run_agent(
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
    def run_agent(
        self,
        agent_id: str,
        message: str,
        *,
        session_id: str | None = ...,
        user_id: str | None = ...,
        reasoning: Mapping[str, Any] | None = ...,
        stream: Literal[True],
    ) -> Iterator[RunEvent | UnknownEvent]: ...
    def run_agent(
        self,
        agent_id: str,
        message: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        reasoning: Mapping[str, Any] | None = None,
        stream: bool = False,
    ) -> Run | Iterator[RunEvent | UnknownEvent]:
        """Run an agent on a new message and return the stored run (``AGENT_ERROR`` when
        the backend failed: the error names the FAILED run). Without ``session_id``, a new
        session. ``reasoning``: ``{"effort": "high", "budget_tokens": 2048}``. With
        ``stream=True``, the run's events as they happen (``stream_run``)."""
        kw = {"session_id": session_id, "user_id": user_id, "reasoning": reasoning}
        if stream:
            return self.stream_run(agent_id, message, **kw)
        return self._send(op.run_agent(agent_id, message, **kw))

    def stream_run(
        self,
        agent_id: str,
        message: str,
        *,
        session_id: str | None = None,
        user_id: str | None = None,
        reasoning: Mapping[str, Any] | None = None,
    ) -> Iterator[RunEvent | UnknownEvent]:
        """The run's events (``start`` first, ``end`` or ``error`` last) as the server sends
        them. The request is made when iteration starts; an answer that is not a stream
        (unknown agent, bad input) raises ``AgentSessionsError`` then. Leaving the loop
        early closes the connection (the run goes on, on the server)."""
        call = op.stream_run(agent_id, message, session_id=session_id, user_id=user_id,
                             reasoning=reasoning)  # fmt: skip
        with self._http.stream(
            call.method, self.url(call), json=call.json, headers=self.headers(call)
        ) as response:
            if not response.is_success:
                response.read()
            op.check_stream(response)
            for sse in EventSource(response).iter_sse():
                yield op.event(response, sse)
