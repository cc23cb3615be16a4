"""``agent-sessions export|import|demo``: sessions as JSON lines, out of and into the database.

The database work is ``storage.transfer``'s; this module reads and writes the lines,
reports, and shows a progress bar (tqdm, on standard error) only when that is a terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
from tqdm import tqdm

from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.migrate import migrate
from agent_sessions.storage.mongo_search import open_search
from agent_sessions.storage.transfer import (
    ImportOutcome,
    count_sessions,
    export_sessions,
    import_line,
    import_session,
)

COMMANDS = ("export", "import", "demo", "migrate", "reindex")
# Imports in flight at once: this process validates the next sessions while the database
# stores the last ones. More buys nothing on two cores.
IMPORT_WINDOW = 4


def since_time(value: str) -> datetime:
    """``--since``: an RFC 3339 time or a date; without a zone, UTC."""
    try:
        t = datetime.fromisoformat(value.upper())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date or RFC 3339 time (e.g. 2026-05-01 or 2026-05-01T10:00:00Z)"
        ) from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def add_parsers(commands: Any, common: Callable[[argparse.ArgumentParser], None]) -> None:
    """The data subcommands, on the main parser's ``commands``."""
    export = commands.add_parser(
        "export",
        help="write sessions as JSON lines (one session per line, everything in it)",
        description="Write sessions as JSON lines, newest first: one session per line with "
        "its messages, runs, chunks, diagnostics, reasoning and usage (see README, Export "
        "format). Streams: memory does not grow with the database.",
    )
    export.add_argument("--user", help="only this user's sessions")
    export.add_argument("--agent", help="only this agent's sessions")
    export.add_argument(
        "--since",
        type=since_time,
        help="only sessions updated at or after this time (RFC 3339 or a date; UTC if no zone)",
    )
    export.add_argument(
        "-o", "--output", type=Path, help="write to FILE (default: standard output)"
    )
    common(export)
    imp = commands.add_parser(
        "import",
        help="read sessions from JSON lines written by export",
        description="Store the sessions of an export file with their ids and timestamps. "
        "A session whose id exists is skipped, so importing twice changes nothing; a bad "
        "line is reported with its number and the rest go on. Exit status 1 if any line "
        "was invalid.",
    )
    imp.add_argument("file", help="the JSON lines file, or - for standard input")
    common(imp)
    demo = commands.add_parser(
        "demo",
        help="seed a few realistic sessions to explore (users alice and bob)",
        description="Seed demo sessions (multi-turn, tool calls, retrieved chunks with "
        "their scores, reasoning, token usage) for users alice and bob. Running it again "
        "changes nothing.",
    )
    common(demo)
    migrate = commands.add_parser(
        "migrate",
        help="upgrade sessions an earlier version stored to this version's layout",
        description="Upgrade sessions written by an earlier agent-sessions (one document "
        "per session) to this version's layout (a head, and pages for long sessions), with "
        "a progress bar. serve does the same at start-up; this lets you do it beforehand.",
    )
    common(migrate)
    reindex = commands.add_parser(
        "reindex",
        help="rebuild the search index of the data directory from the database",
        description="Rebuild the full-text search index (search.sqlite3 in the data "
        "directory) from every stored message. Servers keep it in step on their own; run "
        "this after restoring a database, or if the index was lost. Servers may run "
        "meanwhile: their searches miss what is not indexed again yet.",
    )
    common(reindex)


@asynccontextmanager
async def _storage(settings: Settings, *, upgrade: bool = True) -> AsyncIterator[Storage]:
    storage = await Storage.open(
        mongodb_uri=settings.mongodb_uri,
        database=settings.database,
        data_dir=settings.data_dir,
        secantusd=settings.secantusd,
        upgrade=upgrade,
    )
    # What these commands write (imports, the demo) goes into the search index too.
    try:
        storage.sessions.search, _ = await open_search(
            settings.search_backend, storage.client[storage.database], settings.data_dir
        )
    except BaseException:
        await storage.close()
        raise
    try:
        yield storage
    finally:
        await storage.sessions.search.settle()  # what the command queued
        storage.sessions.search.close()
        await storage.close()


def _progress(**kw: Any) -> tqdm:
    # disable=None: tqdm stays quiet unless standard error is a terminal.
    return tqdm(file=sys.stderr, disable=None, dynamic_ncols=True, **kw)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "migrate":
        async with _storage(settings, upgrade=False) as storage:
            return await _migrate(storage)
    async with _storage(settings) as storage:
        if args.command == "export":
            return await _export(storage, args)
        if args.command == "import":
            return await _import(storage, args)
        if args.command == "reindex":
            return await _reindex(storage)
        return await _demo(storage)


async def _migrate(storage: Storage) -> int:
    bar = _progress(desc="upgrading", unit=" sessions")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        upgraded = await migrate(storage, progress)
    finally:
        bar.close()
    print(f"{upgraded} session(s) upgraded; the database is in this version's layout",
          file=sys.stderr)  # fmt: skip
    return 0


async def _reindex(storage: Storage) -> int:
    bar = _progress(desc="indexing", unit=" messages")

    def progress(done: int) -> None:
        bar.n = done
        bar.refresh()

    try:
        count = await storage.sessions.reindex(progress)
    finally:
        bar.close()
    assert storage.sessions.search is not None  # opened by _storage
    indexed = await storage.sessions.search.count()
    print(f"{indexed} message(s) indexed for search, {count - indexed} without text",
          file=sys.stderr)  # fmt: skip
    return 0


# --- export -----------------------------------------------------------------------------


@dataclass
class ExportCount:
    sessions: int = 0
    messages: int = 0
    runs: int = 0


async def write_jsonl(
    storage: Storage,
    out: IO[bytes],
    *,
    user_id: str | None = None,
    agent_id: str | None = None,
    since: datetime | None = None,
    progress: tqdm | None = None,
) -> ExportCount:
    """Every matching session as one JSON line on ``out``."""
    count = ExportCount()
    async for record in export_sessions(storage, user_id=user_id, agent_id=agent_id, since=since):
        out.write(orjson.dumps(record) + b"\n")
        count.sessions += 1
        count.messages += len(record["messages"])
        count.runs += len(record["runs"])
        if progress is not None:
            progress.update()
    return count


async def _export(storage: Storage, args: argparse.Namespace) -> int:
    filters = {"user_id": args.user, "agent_id": args.agent, "since": args.since}
    total = await count_sessions(storage, **filters)
    target = args.output
    partial = target.with_name(target.name + ".partial") if target is not None else None
    out = partial.open("wb") if partial is not None else sys.stdout.buffer
    try:
        with _progress(total=total, unit="session") as bar:
            count = await write_jsonl(storage, out, progress=bar, **filters)
    except BaseException:
        if partial is not None:
            out.close()
            partial.unlink(missing_ok=True)
        raise
    out.flush()
    if partial is not None and target is not None:
        out.close()
        os.replace(partial, target)  # a file that exists is a whole export
    where = f" to {target}" if target is not None else ""
    print(
        f"exported {count.sessions} sessions ({count.messages} messages, {count.runs} runs){where}",
        file=sys.stderr,
    )
    return 0


# --- import -----------------------------------------------------------------------------


async def import_lines(
    storage: Storage,
    lines: Iterable[bytes],
    report: Callable[[int, ImportOutcome], None],
) -> Counter[str]:
    """Import every non-blank line; ``report(line number, outcome)`` in line order."""
    counts: Counter[str] = Counter()
    pending: deque[tuple[int, asyncio.Task[ImportOutcome]]] = deque()

    def done(number: int, outcome: ImportOutcome) -> None:
        counts[outcome.status] += 1
        report(number, outcome)

    async def settle(limit: int) -> None:
        while len(pending) > limit:
            number, task = pending.popleft()
            done(number, await task)

    try:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            pending.append((number, asyncio.create_task(import_line(storage, line))))
            await settle(IMPORT_WINDOW - 1)
        await settle(0)
    finally:
        for _, task in pending:
            task.cancel()
    return counts


def _lines(stream: IO[bytes], bar: tqdm) -> Iterable[bytes]:
    for line in stream:
        bar.update(len(line))
        yield line


async def _import(storage: Storage, args: argparse.Namespace) -> int:
    path = args.file

    def report(number: int, outcome: ImportOutcome) -> None:
        if outcome.status != "imported":
            what = f" {outcome.session_id}" if outcome.session_id else ""
            tqdm.write(f"line {number}: {outcome.status}{what}: {outcome.reason}", file=sys.stderr)

    if path == "-":
        stream, size = sys.stdin.buffer, None
    else:
        try:
            # A command with one task: blocking file reads hold up nothing else.
            stream = Path(path).open("rb")  # noqa: ASYNC230, SIM115 - closed below
        except OSError as exc:
            print(f"agent-sessions: cannot read {path}: {exc.strerror}", file=sys.stderr)
            return 1
        size = os.fstat(stream.fileno()).st_size
    try:
        with _progress(total=size, unit="B", unit_scale=True) as bar:
            counts = await import_lines(storage, _lines(stream, bar), report)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
    print(
        f"imported {counts['imported']} sessions, skipped {counts['skipped']} "
        f"(they exist already), {counts['invalid']} invalid",
        file=sys.stderr,
    )
    return 1 if counts["invalid"] else 0


# --- demo -------------------------------------------------------------------------------


async def _demo(storage: Storage) -> int:
    from agent_sessions.demo import demo_sessions

    counts: Counter[str] = Counter()
    for record in demo_sessions():
        outcome = await import_session(storage, record)
        counts[outcome.status] += 1
        if outcome.status == "invalid":  # a bug in the demo data, not the user's doing
            print(f"demo session {outcome.session_id}: {outcome.reason}", file=sys.stderr)
    print(
        f"demo: {counts['imported']} sessions added, {counts['skipped']} there already "
        "(users alice and bob)",
        file=sys.stderr,
    )
    return 1 if counts["invalid"] else 0
