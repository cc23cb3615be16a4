"""Runs in progress: each one a task of this server process that asks the backend, feeds
its events to followers at once, and stores its progress at a bounded rate.

A run's events (``start``, ``retrieval``, ``delta``, ``tool_call``, ``tool_result``, then
``end`` or ``error``) are numbered from 1. Followers in this process get each event as it
happens; every ``flush_s`` the run stores what is new in one go: the partial answer (as
its assistant message's content), the new events (one document) and its lease (renewed,
and read for a cancel request from another process). So the database writes of a run are
bounded by its duration, not by its token count, and a client of any server process on
the same database can replay and follow the run, at the flush rate.

A run whose server stops without ending it keeps a lease nobody renews; once it expires,
any server ends the run FAILED (its periodic reaper, or a client following it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

from agent_sessions.errors import DatabaseUnavailable, SessionTooLarge, TooLarge
from agent_sessions.resolvers.validation import check_json_keys
from agent_sessions.storage import StorageFailed
from agent_sessions.storage.live import StoredEvent
from agent_sessions.storage.model import TERMINAL, MessageSpec
from agent_sessions.storage.sessions import message_document, now

from .answers import (
    AgentBackendError,
    AgentReply,
    BackendEvent,
    Delta,
    Finished,
    Retrieved,
    ToolAnswered,
    ToolCalled,
)
from .backends import AgentRunner, AgentTurn
from .events import (
    TERMINAL_EVENTS,
    RunEvent,
    Transcript,
    openai_message,
    replay_of,
    start_payload,
    terminal_event,
)

if TYPE_CHECKING:
    from agent_sessions.settings import AgentConfig, Settings
    from agent_sessions.storage import Storage

log = logging.getLogger("agent_sessions.runs")

TERMINAL_STATUSES = TERMINAL
INTERRUPTED = "interrupted: the server shut down before the run finished"
ABANDONED = "interrupted: the server running it stopped"
MAX_ANSWER_CHARS = 8_000_000  # a session document holds 16 MB; an answer past this fails
FINISH_WRITE_S = 5.0  # what a run gets to store its end once it is told to stop
CANCEL_WAIT_S = 5.0  # how long a cancel waits for the run to end before answering


class LiveRun:
    """One run in progress in this process."""

    def __init__(
        self,
        runs: LiveRuns,
        *,
        session_id: str,
        run: dict[str, Any],
        user_message: dict[str, Any],
        owner: str | None,
        agent: AgentConfig,
    ) -> None:
        self.runs = runs
        self.session_id = session_id
        self.run = run
        self.run_id: str = run["id"]
        self.user_message = user_message
        self.owner = owner
        self.agent = agent
        self.events: list[RunEvent] = []
        self.transcript = Transcript(self.run_id)
        self.chunks: list[dict[str, Any]] = []
        self.diagnostics: dict[str, Any] | None = None
        self.usage: dict[str, Any] | None = None
        self.reply: AgentReply | None = None
        self.result: dict[str, Any] | None = None  # the run as stored at its end
        self.task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._flushed = 0  # events[:_flushed] are stored
        self._run_changes: dict[str, Any] = {}
        self._stop = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._renewed = 0.0
        self._stopping: str | None = None  # why the run was told to stop
        self._finishing = False
        self.detached = False  # lost its lease while running: its end is another's to store

    # --- events -------------------------------------------------------------------------

    def emit(self, name: str, data: dict[str, Any]) -> RunEvent:
        event = RunEvent(len(self.events) + 1, name, data)
        self.events.append(event)
        self._wake.set()
        self._wake = asyncio.Event()
        return event

    @property
    def ended(self) -> bool:
        return bool(self.events) and self.events[-1].terminal

    async def follow(
        self, after: int, keepalive_s: float | None = None
    ) -> AsyncIterator[RunEvent | None]:
        """Every event with a seq above ``after``, as it happens, to the last; ``None``
        after each ``keepalive_s`` without one."""
        i = after
        while True:
            wake = self._wake
            while i < len(self.events):
                i += 1
                yield self.events[i - 1]
            if self.ended:
                return
            if self.detached:  # another server took the run over: follow what it stores
                async for event in self.runs.follow_stored(
                    self.session_id, self.run_id, i, keepalive_s
                ):
                    yield event
                return
            try:
                async with asyncio.timeout(keepalive_s):  # no task per wait, as wait_for makes
                    await wake.wait()
            except TimeoutError:
                yield None

    # --- the run ------------------------------------------------------------------------

    def stop(self, why: str) -> None:
        """Stop the run (``cancel``, ``shutdown``, ``lost``); ignored once it is ending."""
        if self._finishing or self._stopping is not None or self.task is None:
            return
        self._stopping = why
        self.task.cancel()

    async def main(self, lease: Awaitable[None]) -> None:
        outcome: tuple[str, str | None]
        try:
            try:
                await lease
            except (DatabaseUnavailable, StorageFailed) as exc:
                # Without a lease nobody could end the run if this server stopped.
                log.error("run %s: its lease could not be stored: %s", self.run_id, exc)
                raise ValueError("the run could not be started: its lease was not stored") from None
            self._flusher = asyncio.create_task(self._flush_loop())
            turn = await self._turn()
            runner = self.runs.agents
            try:
                async with asyncio.timeout(self.agent.timeout_s):
                    async with contextlib.aclosing(runner.stream(self.agent, turn)) as events:
                        async for event in events:
                            self._apply(event)
            except TimeoutError:
                raise runner.timed_out(turn.agent_id, self.agent) from None
            outcome = ("COMPLETED", None)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            if self._stopping is None:  # not ours (the loop is closing): stop storing
                self._stop.set()
                raise
            outcome = {"cancel": ("CANCELLED", None), "shutdown": ("FAILED", INTERRUPTED)}.get(
                self._stopping, ("LOST", None)
            )
        except Exception as exc:
            error = _failure(exc)
            log.warning(
                "run %s of agent %s failed: %s",
                self.run_id,
                self.run.get("agent_id"),
                error,
                exc_info=not isinstance(exc, AgentBackendError | ValueError),
            )
            outcome = ("FAILED", error)
        self._finishing = True
        try:
            await self._finish(*outcome)
        finally:
            self.runs.forget(self)

    async def _turn(self) -> AgentTurn:
        """The replayed history, sent to the agent with the new message."""
        fields = frozenset({"id", "role", "content", "name", "tool_calls", "tool_call_id"})
        [page] = await self.runs.storage.sessions.page_messages(
            [(self.session_id, MessageSpec(fields=fields))], owner=self.owner
        )
        history = []
        for _, m in page.items if page else ():
            if m.get("id") == self.user_message["id"]:
                break  # messages after ours belong to runs that started later
            history.append(openai_message(m))
        return AgentTurn(
            session_id=self.session_id,
            run_id=self.run_id,
            agent_id=self.run["agent_id"],
            message=self.user_message["content"],
            history=history,
            reasoning=self.run["reasoning"],
        )

    def _apply(self, event: BackendEvent) -> None:
        if isinstance(event, Delta):
            self.transcript.delta(event.content)
            self.emit("delta", {"content": event.content})
        elif isinstance(event, ToolCalled):
            call = event.call.model_dump()
            self.transcript.tool_call(call)
            self.emit("tool_call", call)
        elif isinstance(event, ToolAnswered):
            self.transcript.tool_result(event.tool_call_id, event.name, event.content)
            self.emit(
                "tool_result",
                {"tool_call_id": event.tool_call_id, "name": event.name, "content": event.content},
            )
        elif isinstance(event, Retrieved):
            chunks = [c.model_dump() for c in event.chunks]
            for c in chunks:
                check_json_keys(c["meta"], "retrieved_context.meta")
            if event.diagnostics is not None:
                check_json_keys(event.diagnostics, "retrieval_diagnostics")
                self.diagnostics = event.diagnostics
            self.chunks += chunks
            self._run_changes |= {
                "retrieved_context": self.chunks,
                "retrieval_diagnostics": self.diagnostics,
            }
            self.emit(
                "retrieval",
                {"retrieved_context": chunks, "retrieval_diagnostics": event.diagnostics},
            )
        elif isinstance(event, Finished):
            self.usage = event.usage.model_dump() if event.usage else None
            self.reply = event.reply
        if self.transcript.chars > MAX_ANSWER_CHARS:
            raise AgentBackendError(f"the answer is longer than {MAX_ANSWER_CHARS} characters")

    # --- storing ------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        flush_s = self.runs.flush_s
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), flush_s)
            if self._stop.is_set():
                return
            try:
                await self._flush()
            except (DatabaseUnavailable, StorageFailed, SessionTooLarge, TooLarge) as exc:
                # Kept for the next flush; a run whose answer no longer fits fails at its end.
                log.warning("run %s: progress not stored: %s", self.run_id, exc)

    async def _flush(self) -> None:
        """Store what is new since the last flush, and renew (or read) the lease; the
        three writes go out together."""
        changes, new, mark = self.transcript.pending()
        run_changes, self._run_changes = self._run_changes, {}  # later ones: the next flush
        progress = bool(changes or new or run_changes)
        events = self.events[self._flushed :]
        writes: dict[str, Any] = {"lease": self._lease()}
        if progress:
            writes["progress"] = self.runs.storage.sessions.update_live_run(
                session_id=self.session_id,
                run_id=self.run_id,
                owner=self.owner,
                changes={"content": self.transcript.content} | run_changes,
                message_changes=changes,
                new_messages=new,
            )
        if events:
            writes["events"] = self._store_events(events)
        done = dict(
            zip(writes, await asyncio.gather(*writes.values(), return_exceptions=True), strict=True)
        )
        if done.get("progress") is True:
            self.transcript.stored(mark)
        elif progress and done["progress"] is not False:  # not stored: the next flush's
            self._run_changes = run_changes | self._run_changes
        if done.get("progress") is False:
            self.stop("lost")  # ended by someone else, or the session was deleted
        if events and not isinstance(done["events"], BaseException):
            self._flushed += len(events)
        failure = next((r for r in done.values() if isinstance(r, BaseException)), None)
        if failure is not None:
            raise failure

    async def _store_events(self, events: list[RunEvent]) -> None:
        await self.runs.storage.live.append_events(
            run_id=self.run_id,
            session_id=self.session_id,
            events=[StoredEvent(e.seq, e.name, e.data) for e in events],
            at=now(),
        )

    async def _lease(self) -> None:
        """Renew the lease when a third of it has passed, else only read it; either way,
        learn of a cancel request from another process, or that the lease was lost."""
        live, runs = self.runs.storage.live, self.runs
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._renewed >= runs.lease_s / 3:
            lease = await live.renew_lease(self.run_id, runs.server, now() + runs.lease)
            self._renewed = loop_time
        else:
            lease = await live.get_lease(self.run_id)
            if lease is not None and lease.server != runs.server:
                lease = None
        if lease is None:
            self.stop("lost")
        elif lease.cancel:
            self.stop("cancel")

    async def _finish(self, status: str, error: str | None) -> None:
        """Store how the run ended, then tell followers, then store the last events."""
        self._stop.set()
        if self._flusher is not None:
            await asyncio.wait([self._flusher])
        sessions = self.runs.storage.sessions
        stored: dict[str, Any] | None = None
        if status != "LOST":
            changes: dict[str, Any] = {
                "status": status,
                "completed_at": now(),
                "error": error,
                "usage": self.usage,
            }
            message_changes, new = {}, []
            if status == "COMPLETED" and self.reply is not None and not self.transcript.stored_any:
                changes |= _reply_changes(self.reply)
                new = _reply_messages(self.reply, self.run_id)
            else:
                if status == "COMPLETED":
                    self.transcript.end()
                message_changes, new, _ = self.transcript.pending()
                changes |= {
                    "content": self.transcript.content,
                    "retrieved_context": self.chunks,
                    "retrieval_diagnostics": self.diagnostics,
                }
            try:
                if await sessions.update_live_run(
                    session_id=self.session_id,
                    run_id=self.run_id,
                    owner=self.owner,
                    changes=changes,
                    message_changes=message_changes,
                    new_messages=new,
                ):
                    stored = self.run | changes
            except SessionTooLarge as exc:
                changes = {
                    "status": "FAILED",
                    "completed_at": now(),
                    "usage": self.usage,
                    "error": f"the answer is too large: {exc.message}",
                }
                if await sessions.update_live_run(
                    session_id=self.session_id,
                    run_id=self.run_id,
                    owner=self.owner,
                    changes=changes,
                ):
                    stored = self.run | changes
            except (DatabaseUnavailable, StorageFailed) as exc:
                # The database is gone: the run stays RUNNING, its lease expires, and the
                # next server that sees it ends it.
                log.error("run %s: its end could not be stored: %s", self.run_id, exc)
                self.result = self.run | {"status": "RUNNING"}
                self.emit(
                    "error",
                    {
                        "error": "the answer could not be stored",
                        "run_id": self.run_id,
                        "session_id": self.session_id,
                    },
                )
                return
        if stored is None:  # ended elsewhere: tell what the stored run says
            [stored] = await sessions.get_runs([(self.session_id, self.run_id)], None, owner=None)
            if stored is None:
                stored = self.run | {"status": "FAILED", "error": "the session was deleted"}
            elif stored["status"] == "RUNNING":
                # Its lease went to another server (this one looked dead): that one ends it.
                log.warning("run %s: lease lost; left to the server that took it", self.run_id)
                self.result = stored
                self.detached = True
                self._wake.set()
                return
        self.result = stored
        self.emit(*_named(terminal_event(0, self.session_id, stored)))
        with contextlib.suppress(DatabaseUnavailable, StorageFailed):
            await asyncio.gather(
                self._store_events(self.events[self._flushed :]),
                self.runs.storage.live.release_lease(self.run_id, self.runs.server),
            )


def _named(event: RunEvent) -> tuple[str, dict[str, Any]]:
    return event.name, event.data


def _reply_changes(reply: AgentReply) -> dict[str, Any]:
    chunks = [c.model_dump() for c in reply.retrieved_context or ()]
    for c in chunks:
        check_json_keys(c["meta"], "retrieved_context.meta")
    if reply.retrieval_diagnostics is not None:
        check_json_keys(reply.retrieval_diagnostics, "retrieval_diagnostics")
    return {
        "content": reply.content,
        "retrieved_context": chunks,
        "retrieval_diagnostics": reply.retrieval_diagnostics,
    }


def _reply_messages(reply: AgentReply, run_id: str) -> list[dict[str, Any]]:
    """The messages a whole (not streamed) answer adds, as the agent gave them."""
    t = now()
    messages = [
        message_document(
            role=m.role,
            content=m.content,
            run_id=run_id,
            created_at=t,
            name=m.name,
            tool_calls=[c.model_dump() for c in m.tool_calls] if m.tool_calls else None,
            tool_call_id=m.tool_call_id,
        )
        for m in reply.messages or ()
    ]
    if not messages or messages[-1]["role"] != "assistant":
        messages.append(
            message_document(role="assistant", content=reply.content, run_id=run_id, created_at=t)
        )
    return messages


def _failure(exc: Exception) -> str:
    """What the stored run says about a failure: the backend's own words, or what kind of
    failure it was (never a stack trace)."""
    if isinstance(exc, AgentBackendError | ValueError):
        return str(exc)
    if isinstance(exc, SessionTooLarge):
        return f"the answer is too large: {exc.message}"
    if isinstance(exc, DatabaseUnavailable | StorageFailed):
        return "the answer could not be stored"
    return f"the run failed ({type(exc).__name__})"


class ServerStopping(Exception):
    """The server is shutting down and starts no more runs."""


class LiveRuns:
    """The runs this server process is running, and what it does for runs anywhere:
    follow them, cancel them, end those a stopped server left behind."""

    def __init__(
        self, agents: AgentRunner, storage: Callable[[], Storage], settings: Settings
    ) -> None:
        self.agents = agents
        self._storage = storage
        self.flush_s = settings.run_flush_s
        self.lease_s = settings.run_lease_s
        self.server = uuid.uuid4().hex
        self.runs: dict[str, LiveRun] = {}
        self.accepting = True
        self._reaper: asyncio.Task[None] | None = None

    @property
    def storage(self) -> Storage:
        return self._storage()

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_s)

    # --- starting -----------------------------------------------------------------------

    async def start(
        self,
        *,
        session_id: str,
        owner: str | None,
        new_session: dict[str, Any],
        run: dict[str, Any],
        user_message: dict[str, Any],
        agent: AgentConfig,
    ) -> LiveRun:
        """Store the run RUNNING and send ``start``; the run's task then asks the backend.

        The lease goes to the database with the run (both writes are sent at once), but
        ``start`` waits only for the run: the task waits for the lease before it calls
        the backend, and ends the run FAILED if the lease could not be stored.
        """
        if not self.accepting:
            raise ServerStopping()
        storage = self.storage
        lease = asyncio.ensure_future(
            storage.live.take_lease(
                run_id=run["id"],
                session_id=session_id,
                user_id=new_session["user_id"],
                server=self.server,
                until=now() + self.lease,
            )
        )
        try:
            # The run as read back: ``input`` comes from its message, stored once.
            run, _ = await storage.sessions.record_run(
                session_id=session_id,
                owner=owner,
                new_session=new_session,
                run=run,
                messages=[user_message],
                fresh_id=True,
            )
        except BaseException:
            with contextlib.suppress(DatabaseUnavailable, StorageFailed):
                await lease
                await storage.live.release_lease(run["id"], self.server)
            raise
        live = LiveRun(
            self,
            session_id=session_id,
            run=run,
            user_message=user_message,
            owner=owner,
            agent=agent,
        )
        live.emit("start", start_payload(session_id, run))
        self.runs[live.run_id] = live
        live.task = asyncio.create_task(live.main(lease), name=f"run {live.run_id}")
        return live

    def forget(self, live: LiveRun) -> None:
        self.runs.pop(live.run_id, None)

    # --- following ----------------------------------------------------------------------

    async def follow(
        self, session_id: str, run_id: str, after: int = 0, keepalive_s: float | None = None
    ) -> AsyncIterator[RunEvent | None]:
        """The run's events with a seq above ``after``, then each as it happens, to the
        last; ``None`` after each ``keepalive_s`` without one. The caller has checked that
        the run is the caller's."""
        live = self.runs.get(run_id)
        if live is not None and live.session_id == session_id:
            async for event in live.follow(after, keepalive_s):
                yield event
            return
        async for event in self.follow_stored(session_id, run_id, after, keepalive_s):
            yield event

    async def follow_stored(
        self, session_id: str, run_id: str, after: int, keepalive_s: float | None = None
    ) -> AsyncIterator[RunEvent | None]:
        """A run of another process (or one that has ended), by polling what is stored."""
        storage = self.storage
        loop = asyncio.get_running_loop()
        poll_s = max(self.flush_s / 2, 0.05)
        last, polls, ended_seen = after, 0, False
        quiet_since = loop.time()
        while True:
            for e in await storage.live.events_after(run_id, session_id, last):
                last = e.seq
                quiet_since = loop.time()
                yield RunEvent(e.seq, e.event, e.data)
                if e.event in TERMINAL_EVENTS:
                    return
            if keepalive_s is not None and loop.time() - quiet_since >= keepalive_s:
                quiet_since = loop.time()
                yield None
            if polls % 4 == 0 or ended_seen:
                [run] = await storage.sessions.get_runs([(session_id, run_id)], None, owner=None)
                if run is None:
                    yield RunEvent(
                        last + 1,
                        "error",
                        {
                            "error": "the session was deleted",
                            "run_id": run_id,
                            "session_id": session_id,
                        },
                    )
                    return
                if run["status"] in TERMINAL_STATUSES:
                    if ended_seen or last == 0:
                        # Its last events were never stored, or are gone: rebuild them.
                        for event in await self._rebuilt(session_id, run, last):
                            yield event
                        return
                    ended_seen = True  # its last events may be on their way: one more poll
                elif run_id not in self.runs:
                    await self._reap_if_abandoned(session_id, run_id, run)
            polls += 1
            await asyncio.sleep(poll_s)

    async def _rebuilt(self, session_id: str, run: dict[str, Any], after: int) -> list[RunEvent]:
        if after > 0:
            return [terminal_event(after + 1, session_id, run)]
        [found] = await self.storage.sessions.get_run_messages(
            [(session_id, run["id"])], None, owner=None
        )
        return replay_of(session_id, run, [m for _, m in found])

    # --- cancelling ---------------------------------------------------------------------

    async def cancel(self, session_id: str, run: dict[str, Any]) -> dict[str, Any]:
        """Cancel a run (the caller found it theirs); the run as it is afterwards, RUNNING
        still if its server did not end it within ``CANCEL_WAIT_S``. A finished run is
        returned as it is."""
        if run["status"] in TERMINAL_STATUSES:
            return run
        run_id = run["id"]
        live = self.runs.get(run_id)
        if live is not None and live.task is not None:
            live.stop("cancel")
            await asyncio.wait([live.task], timeout=CANCEL_WAIT_S)
            if live.result is not None:
                return live.result
        elif await self.storage.live.request_cancel(run_id):
            deadline = asyncio.get_running_loop().time() + CANCEL_WAIT_S
            while asyncio.get_running_loop().time() < deadline:
                await asyncio.sleep(max(self.flush_s / 4, 0.05))
                [now_run] = await self.storage.sessions.get_runs(
                    [(session_id, run_id)], None, owner=None
                )
                if now_run is None or now_run["status"] in TERMINAL_STATUSES:
                    return now_run or run
        else:
            # No server runs it (a RUNNING run that was recorded, or left behind): end it.
            await self._end_stored(session_id, run_id, "CANCELLED", None)
        [now_run] = await self.storage.sessions.get_runs([(session_id, run_id)], None, owner=None)
        return now_run or run

    # --- runs that a stopped server left ------------------------------------------------

    async def _end_stored(
        self, session_id: str, run_id: str, status: str, error: str | None
    ) -> bool:
        """End a RUNNING run nobody runs, with its last event for anyone following it (and
        the events before it, rebuilt, when its server stored none)."""
        storage = self.storage
        changed = await storage.sessions.update_live_run(
            session_id=session_id,
            run_id=run_id,
            owner=None,
            changes={"status": status, "error": error, "completed_at": now()},
        )
        if changed:
            [run] = await storage.sessions.get_runs([(session_id, run_id)], None, owner=None)
            if run is not None:
                last = await storage.live.last_seq(run_id)
                events = await self._rebuilt(session_id, run, last)
                await storage.live.append_events(
                    run_id=run_id,
                    session_id=session_id,
                    events=[StoredEvent(e.seq, e.name, e.data) for e in events],
                    at=now(),
                )
            log.warning("run %s: ended %s (%s)", run_id, status, error or "cancelled")
        return changed

    async def _reap_if_abandoned(self, session_id: str, run_id: str, run: dict[str, Any]) -> None:
        lease = await self.storage.live.get_lease(run_id)
        if lease is not None and lease.expires_at.replace(tzinfo=UTC) < now():
            await self._reap(lease.run_id, lease.session_id)

    async def _reap(self, run_id: str, session_id: str) -> None:
        live = self.storage.live
        if await live.claim_lease(run_id, self.server, now(), now() + self.lease) is None:
            return  # renewed meanwhile, or another server is on it
        await self._end_stored(session_id, run_id, "FAILED", ABANDONED)
        await live.release_lease(run_id, self.server)

    async def reap(self) -> None:
        """End the runs whose lease has expired: their server stopped without ending them."""
        for lease in await self.storage.live.expired_leases(now()):
            if lease.run_id not in self.runs:
                await self._reap(lease.run_id, lease.session_id)

    async def _reap_forever(self) -> None:
        while True:
            try:
                await self.reap()
            except (DatabaseUnavailable, StorageFailed) as exc:
                log.warning("reaping abandoned runs failed: %s", exc)
            await asyncio.sleep(self.lease_s / 2)

    def start_reaper(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap_forever(), name="run reaper")

    # --- shutting down ------------------------------------------------------------------

    async def drain(self, grace_s: float) -> None:
        """Start no more runs, give the running ones ``grace_s`` seconds to finish, then
        end the rest FAILED (interrupted)."""
        self.accepting = False
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        tasks = [r.task for r in self.runs.values() if r.task is not None]
        if not tasks:
            return
        log.info("waiting up to %gs for %d run(s) to finish", grace_s, len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        if pending:
            log.warning("interrupting %d run(s) still running", len(pending))
            for live in list(self.runs.values()):
                live.stop("shutdown")
            await asyncio.wait(pending, timeout=FINISH_WRITE_S)
