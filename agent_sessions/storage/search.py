"""Full-text search over messages: a contentless SQLite FTS5 index in the data directory.

The embedded database (SecantusDB) has no text index, so the words of every message go
into ``search.sqlite3`` beside it, through apsw (SQLite 3.54 with FTS5; the standard
library's SQLite here is 3.40, whose contentless tables cannot delete a row). The table
is *contentless*: it keeps the words' positions, never the text, so nothing is stored
twice; snippets are cut from the message as read from the database, which is also what
makes a deleted (or expired) session vanish from results at once, before its rows go.

Matching: words (unicode61 tokens, case- and accent-insensitive: ``cafe`` finds
``Café``), every word must match, ``"a phrase"`` in quotes. Ranked by BM25 or newest
first. Each row also carries an owner token (and an agent token), matched inside FTS5,
so a user's query only walks that user's postings.

Several server processes (``serve --workers N``) share the file: SQLite lets one writer
at a time in (WAL mode, readers never wait; a writer waits up to ``BUSY_MS`` for
another's transaction, each of which is one short write). The index is kept in step by
``SessionStore`` (appends, live runs as they are stored, deleted sessions and runs,
forks, imports, the retention sweep) and can be rebuilt from the database:
``agent-sessions reindex``. Writes are queued in order and run in the background; a
search waits for the writes its process queued before it.

Where the database has a text index of its own, ``mongo_search`` serves instead.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

import apsw

from agent_sessions.errors import BadInput

log = logging.getLogger("agent_sessions.storage")

FILE = "search.sqlite3"
BUSY_MS = 10_000
MAX_QUERY_CHARS = 512
MAX_TERMS = 16
SNIPPET_CHARS = 160
MAX_QUEUED = 16  # index writes queued before the next writer waits for its own
# What makes a query term: a letter or digit (the same class in the OpenAPI document).
WORD_CLASS = "[A-Za-z0-9\u00c0-\uffff]"
WORD = re.compile(WORD_CLASS)

# A message's words are a row of ``words``; each message that holds them is a row of
# ``hits`` naming it (``text_id``). A fork's messages share their original's rows: the
# same text of the same owner, indexed once, whatever the number of forks.
SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS words USING fts5(
    who, content, content='', contentless_delete=1,
    tokenize='unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS hits (
    rowid INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL, seq INTEGER NOT NULL, message_id TEXT NOT NULL,
    run_id TEXT, role TEXT NOT NULL, created_at REAL NOT NULL, text_id INTEGER,
    UNIQUE (session_id, seq)
);
CREATE INDEX IF NOT EXISTS hits_run ON hits (session_id, run_id);
CREATE INDEX IF NOT EXISTS hits_text ON hits (text_id);
"""
VERSION = 1
# Version 0 (no ``text_id``) had one ``words`` row per hit, of the same rowid.
UPGRADE_FROM_0 = """
ALTER TABLE hits ADD COLUMN text_id INTEGER;
UPDATE hits SET text_id = rowid;
"""

# A server of version 0 still running beside one of version 1 (a rolling restart) adds
# hits without ``text_id``; their words row has the hit's own rowid, as in version 0.
UNNUMBERED = "SELECT 1 FROM hits WHERE text_id IS NULL LIMIT 1"
NUMBER = "UPDATE hits SET text_id = rowid WHERE text_id IS NULL"

_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"

_SELECT = (
    "SELECT h.session_id, h.seq, h.message_id, h.run_id, h.role, h.created_at, w.rank "
    "FROM words AS w JOIN hits AS h ON h.text_id = w.rowid WHERE words MATCH ? "
)
_BEST = _SELECT + "ORDER BY w.rank, h.rowid DESC LIMIT ? OFFSET ?"
_NEWEST = _SELECT + "ORDER BY h.rowid DESC LIMIT ? OFFSET ?"
_UNSHARED = "SELECT 1 FROM hits WHERE text_id = ? LIMIT 1"


@dataclass(frozen=True, slots=True)
class Hit:
    """One message that matched, as the index has it (its text is read from the database)."""

    session_id: str
    seq: int
    message_id: str
    run_id: str | None
    role: str
    created_at: datetime
    score: float


def _token(prefix: str, value: str) -> str:
    """A user or agent id as one FTS5 token (ids may hold ``.:-``, which split words)."""
    return prefix + value.encode().hex()


def terms(query: str) -> list[str]:
    """The words and quoted phrases of a query; ``BadInput`` when there are none."""
    if len(query) > MAX_QUERY_CHARS:
        raise BadInput(f"query must be at most {MAX_QUERY_CHARS} characters")
    found = [
        " ".join(p.split()) for p in re.findall(r'"([^"]*)"|(\S+)', query) for p in p if p
    ]  # the phrase or the word of each match
    found = [t for t in (t.strip('"') for t in found) if WORD.search(t)]
    if not found:
        raise BadInput("query must have at least one word")
    if len(found) > MAX_TERMS:
        raise BadInput(f"query may have at most {MAX_TERMS} words and phrases")
    return found


def match_expression(query_terms: Sequence[str], owner: str | None, agent_id: str | None) -> str:
    """The FTS5 query: every term (as a quoted string: no FTS5 syntax gets through) in
    the text, and the owner's and agent's tokens."""
    parts = ["content: " + '"' + t.replace('"', '""') + '"' for t in query_terms]
    if owner is not None:
        parts.append(f"who: {_token('u', owner)}")
    if agent_id is not None:
        parts.append(f"who: {_token('a', agent_id)}")
    return " AND ".join(parts)


def _normal(text: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    ).casefold()


def snippet(text: str, query_terms: Sequence[str], width: int = SNIPPET_CHARS) -> str:
    """The part of ``text`` around its first match, as HTML: escaped, each match in
    ``<mark>``. Matching is the index's: case and accents do not count."""
    where: Sequence[int]  # the position in ``text`` of each folded character
    if text.isascii():  # most text: folding keeps every character where it is
        flat, where = text.lower(), range(len(text))
    else:
        folded: list[str] = []
        where_folded: list[int] = []
        for i, c in enumerate(text):
            for f in _normal(c):
                folded.append(f)
                where_folded.append(i)
        flat, where = "".join(folded), where_folded
    spans: list[tuple[int, int]] = []
    for t in query_terms:
        words = [re.escape(w) for w in _normal(t).split()]
        pattern = r"(?<!\w)" + r"\W+".join(words) + r"(?!\w)"
        for m in re.finditer(pattern, flat):
            spans.append((where[m.start()], where[m.end() - 1] + 1))
    spans = sorted(spans)
    start = 0
    if spans:
        start = max(0, spans[0][0] - width // 3)
        while start > 0 and not text[start - 1].isspace() and spans[0][0] - start < width // 2:
            start -= 1
    end = min(len(text), start + width)
    out, at = [], start
    for a, b in spans:
        if a < at or a >= end:
            continue
        out.append(escape(text[at:a]))
        out.append(f"<mark>{escape(text[a:b])}</mark>")
        at = b
    out.append(escape(text[at:end]))
    return ("…" if start > 0 else "") + "".join(out) + ("…" if end < len(text) else "")


class SearchIndex:
    """The index file of one data directory; every method is safe to call from the event
    loop (the work runs in a thread, one at a time per process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = apsw.Connection(str(path))
        self._db.set_busy_timeout(BUSY_MS)
        # The index can be rebuilt from the database: no fsync per commit.
        self._db.execute("PRAGMA synchronous=NORMAL")
        # Another worker may be writing: the schema is created (a write, which waits for
        # the lock) only when the file has none yet, so a worker restarted under load
        # starts without waiting for it.
        if not self._current():
            self._db.execute("PRAGMA journal_mode=WAL")
            # IMMEDIATE: another worker opening the file now waits, then finds it done.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if not self._current():
                    self._create()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self._lock = threading.Lock()
        self._last: asyncio.Future[Any] | None = None  # the write queued last
        self._queued = 0

    def _current(self) -> bool:
        tables = {name for (name,) in self._db.execute(_TABLES).fetchall()}
        version: Any = self._db.execute("PRAGMA user_version").fetchall()[0][0]
        if not ({"words", "hits"} <= tables and version == VERSION):
            return False
        return not self._db.execute(UNNUMBERED).fetchall()  # through the hits_text index

    def _create(self) -> None:
        tables = {name for (name,) in self._db.execute(_TABLES).fetchall()}
        if "hits" in tables:
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(hits)").fetchall()}
            if "text_id" not in columns:
                self._db.execute(UPGRADE_FROM_0)
        self._db.execute(SCHEMA)
        self._db.execute(NUMBER)
        self._db.execute(f"PRAGMA user_version = {VERSION}")

    def close(self) -> None:
        self._db.close()

    async def _run(self, fn: Any, *args: Any) -> Any:
        def locked() -> Any:
            with self._lock:
                return fn(*args)

        return await asyncio.to_thread(locked)

    def _queue(self, fn: Any, *args: Any) -> asyncio.Future[Any]:
        """Run a write after every write queued before it (in order, one at a time), in
        the background: the caller may go on without waiting for it."""
        before = self._pending()

        async def write() -> Any:
            if before is not None:
                await asyncio.wait([before])
            return await self._run(fn, *args)

        task = asyncio.ensure_future(write())
        self._queued += 1
        task.add_done_callback(self._written)
        self._last = task
        return task

    def _written(self, task: asyncio.Future[Any]) -> None:
        """A queued write's end: a failure loses nothing stored (the messages are in the
        database; ``agent-sessions reindex`` puts them back), so it is logged, not raised."""
        self._queued -= 1
        if not task.cancelled() and task.exception() is not None:
            log.warning("the search index missed a write: %s", task.exception())

    def _pending(self) -> asyncio.Future[Any] | None:
        last = self._last
        if last is None or last.done() or last.get_loop() is not asyncio.get_running_loop():
            return None
        return last

    async def settle(self) -> None:
        """Wait for the writes queued so far (reads do, before they read)."""
        last = self._pending()
        if last is not None:
            await asyncio.wait([last])

    # --- writes -------------------------------------------------------------------------

    def _forget(self, rowid: int, text_id: int | None) -> None:
        """Drop one hit, and its words once no other message holds them."""
        if text_id is None:  # added by a server of version 0 (see UNNUMBERED)
            text_id = rowid
        self._db.execute("DELETE FROM hits WHERE rowid = ?", (rowid,))
        if not self._db.execute(_UNSHARED, (text_id,)).fetchall():
            self._db.execute("DELETE FROM words WHERE rowid = ?", (text_id,))

    def _add(self, session_id: str, user_id: str, agent_id: str | None,
             messages: Sequence[tuple[int, dict[str, Any]]], fresh: bool) -> None:  # fmt: skip
        who = _token("u", user_id) + (f" {_token('a', agent_id)}" if agent_id else "")
        with self._db:
            for seq, m in messages:
                if not fresh:  # an answer that streamed in: its words change
                    old = self._db.execute(
                        "SELECT rowid, text_id FROM hits WHERE session_id = ? AND seq = ?",
                        (session_id, seq),
                    ).fetchall()
                    for rowid, text_id in old:
                        self._forget(int(rowid), text_id)  # type: ignore[arg-type]
                if not m.get("content"):
                    continue
                created = m.get("created_at")
                t = created.replace(tzinfo=created.tzinfo or UTC).timestamp() if created else 0.0
                self._db.execute(
                    "INSERT INTO words (who, content) VALUES (?, ?)", (who, m["content"])
                )
                self._db.execute(
                    "INSERT INTO hits (session_id, seq, message_id, run_id, role, created_at,"
                    " text_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (session_id, seq, m["id"], m.get("run_id"), m["role"], t,
                     self._db.last_insert_rowid()),
                )  # fmt: skip

    async def add(self, session_id: str, user_id: str, agent_id: str | None,
                  messages: Sequence[tuple[int, dict[str, Any]]], *,
                  fresh: bool = False) -> None:  # fmt: skip
        """Index (or index again) messages of a session, each with its seq. ``fresh``: the
        session has nothing indexed at these seqs yet (a new session): nothing to replace.

        Queued, not waited for: a write's reply does not wait for its words to be indexed
        (they are, a moment later, before any search of this process reads the index)."""
        if messages:
            task = self._queue(self._add, session_id, user_id, agent_id, list(messages), fresh)
            if self._queued > MAX_QUEUED:  # a writer faster than the index (a rebuild) waits
                await asyncio.wait([task])

    def _share(self, source_id: str, session_id: str, below: int) -> int:
        with self._db:
            self._db.execute(
                "INSERT INTO hits (session_id, seq, message_id, run_id, role, created_at,"
                " text_id) SELECT ?, seq, message_id, run_id, role, created_at, text_id"
                " FROM hits WHERE session_id = ? AND seq < ? ORDER BY rowid",
                (session_id, source_id, below),
            )
        return int(self._db.changes())

    async def share(self, source_id: str, session_id: str, below: int) -> int:
        """Index the messages of ``source_id`` with seqs below ``below`` as ``session_id``'s
        too (a fork: the same seqs, owner and agent) without reading their words again;
        how many."""
        return int(await self._queue(self._share, source_id, session_id, below))

    _BY_SESSION = "SELECT rowid, text_id FROM hits WHERE session_id = ?"
    _BY_RUN = "SELECT rowid, text_id FROM hits WHERE session_id = ? AND run_id = ?"

    def _delete(self, select: str, args: tuple[Any, ...]) -> None:
        with self._db:
            for rowid, text_id in self._db.execute(select, args).fetchall():
                self._forget(int(rowid), text_id)  # type: ignore[arg-type]

    async def delete_session(self, session_id: str) -> None:
        await self._queue(self._delete, self._BY_SESSION, (session_id,))

    async def delete_run(self, session_id: str, run_id: str) -> None:
        await self._queue(self._delete, self._BY_RUN, (session_id, run_id))

    def _clear(self) -> None:
        with self._db:
            self._db.execute("DELETE FROM words")
            self._db.execute("DELETE FROM hits")

    async def clear(self) -> None:
        await self._queue(self._clear)

    # --- reads --------------------------------------------------------------------------

    def _search(self, expression: str, newest: bool, limit: int, offset: int) -> list[Hit]:
        rows: list[Any] = self._db.execute(
            _NEWEST if newest else _BEST, (expression, limit, offset)
        ).fetchall()  # (session_id, seq, message_id, run_id, role, created_at, rank)
        return [
            Hit(s, q, mid, rid, role, datetime.fromtimestamp(t, UTC), -float(rank))
            for s, q, mid, rid, role, t, rank in rows
        ]

    async def search(
        self,
        query_terms: Sequence[str],
        *,
        owner: str | None,
        agent_id: str | None = None,
        newest: bool = False,
        limit: int,
        offset: int = 0,
    ) -> list[Hit]:
        """Hits for every term, best (BM25) or newest first."""
        expression = match_expression(query_terms, owner, agent_id)
        await self.settle()
        return await self._run(self._search, expression, newest, limit, offset)

    def _count(self) -> int:
        rows: list[Any] = self._db.execute("SELECT count(*) FROM hits").fetchall()
        return int(rows[0][0])

    async def count(self) -> int:
        """How many messages are indexed."""
        await self.settle()
        return await self._run(self._count)
