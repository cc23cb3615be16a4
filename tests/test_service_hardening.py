"""Defects a review found in the service's edges, each kept fixed: cursor milliseconds,
deep page numbers, the embedded database's file modes, its previous log, durable writes."""

from __future__ import annotations

import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from agent_sessions.resolvers.cursors import _decode, decode_session_cursor, session_cursor
from agent_sessions.resolvers.reads import PAGE_MAX
from agent_sessions.storage import Storage
from agent_sessions.storage.embedded import start_embedded

from .helpers import GraphQLClient


def test_session_cursor_milliseconds_are_exact() -> None:
    # timestamp() * 1000 goes through a float: 1092302330477 for this instant.
    instant = datetime(2004, 8, 12, 9, 18, 50, 478000, tzinfo=UTC)
    cursor = session_cursor(instant, "s")
    assert _decode(cursor, "after") == ["s", 1092302330478, "s"]
    assert decode_session_cursor(cursor) == (instant, "s")
    late = datetime(2038, 6, 1, 12, 0, 0, 1000, tzinfo=UTC)
    assert decode_session_cursor(session_cursor(late, "t")) == (late, "t")


async def test_session_page_numbers_are_bounded(
    gql: GraphQLClient, client: httpx.AsyncClient
) -> None:
    query = "query($p: Int!) { sessionPage(page: $p, size: 100) { page totalElements } }"
    assert (await gql.data(query, {"p": PAGE_MAX}))["sessionPage"]["page"] == PAGE_MAX
    body = await gql(query, {"p": PAGE_MAX + 1})
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "sessions(after:)" in body["errors"][0]["message"]
    rest = await client.get("/api/sessions", params={"page": 1_000_000, "size": 100})
    assert (rest.status_code, set(rest.json())) == (400, {"error"})


def _argv(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_embedded_databases_files_are_this_users_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_embedded(data)
    try:
        assert _mode(data) == 0o700
        assert _mode(data / "db") == 0o700
        for name in ("server.json", "agent-sessions.lock", "secantusd.log", "secantusd.toml"):
            assert _mode(data / name) == 0o600, name
        files = [p for p in (data / "db").rglob("*") if p.is_file()]
        assert files and all(_mode(p) & 0o077 == 0 for p in files)
    finally:
        server.stop()


def test_a_given_directory_keeps_its_mode_and_its_db_is_made_private(tmp_path: Path) -> None:
    # --data-dir may name a directory the user made (even a shared one): its own mode is
    # theirs, but the database directory inside is made this user's only.
    (tmp_path / "db").mkdir(mode=0o755)
    before = _mode(tmp_path)
    start_embedded(tmp_path).stop()
    assert _mode(tmp_path) == before
    assert _mode(tmp_path / "db") == 0o700


def test_the_previous_log_is_kept(tmp_path: Path) -> None:
    first = start_embedded(tmp_path)
    first_port = first.port
    first.stop()
    start_embedded(tmp_path).stop()
    previous = (tmp_path / "secantusd.log.1").read_text()
    assert f"listening on 127.0.0.1:{first_port}" in previous


async def test_writes_are_journaled_and_the_database_syncs_on_commit(tmp_path: Path) -> None:
    server = start_embedded(tmp_path)
    storage = await Storage.connect(server.uri, f"t_{uuid.uuid4().hex[:8]}", embedded=server)
    try:
        assert storage.client.write_concern.document == {"j": True}
        assert server.process is not None
        assert b"--sync-on-commit" in _argv(server.process.pid)
    finally:
        await storage.client.close()
        server.stop()


def test_sync_on_commit_can_be_turned_off_for_measuring(tmp_path: Path) -> None:
    server = start_embedded(tmp_path, sync_on_commit=False)
    try:
        assert server.process is not None
        assert b"--sync-on-commit" not in _argv(server.process.pid)
    finally:
        server.stop()
