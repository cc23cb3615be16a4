"""``agent-sessions reindex`` as a user runs it: a real process on the session's database
and a real data directory; the index file lost, then rebuilt; and a bad configuration
(a bad setting, a data directory that is a file, a database that does not answer, an
index file that is not one) ends it with one clear line, never a stack trace."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from agent_sessions.demo import demo_sessions
from agent_sessions.storage.search import FILE, Hit, SearchIndex

from .test_transfer_cli import COMMAND, database, env

__all__ = ["database"]  # the fixture, used by name


def reindex(mongo_uri: str, database: str, data_dir: Path, *args: str, **extra: str):
    environ = env(mongo_uri, database) | {"AGENT_SESSIONS_DATA_DIR": str(data_dir)} | extra
    return subprocess.run(
        [COMMAND, *args], env=environ, capture_output=True, timeout=120, check=False
    )


def test_reindex_rebuilds_a_lost_index(mongo_uri: str, database: str, tmp_path: Path) -> None:
    assert reindex(mongo_uri, database, tmp_path, "demo").returncode == 0
    for f in tmp_path.glob(f"{FILE}*"):  # the index and its write-ahead log: lost
        f.unlink()
    done = reindex(mongo_uri, database, tmp_path, "reindex")
    assert done.returncode == 0, done.stderr
    every = [m for s in demo_sessions() for m in s["messages"]]
    worded = [m for m in every if m.get("content")]
    assert done.stderr.decode().endswith(
        f"{len(worded)} message(s) indexed for search, {len(every) - len(worded)} without text\n"
    )
    first = demo_sessions()[0]
    question = first["messages"][0]["content"]

    async def look() -> tuple[int, list[Hit]]:
        index = SearchIndex(tmp_path / FILE)
        try:
            found = await index.search([question], owner=first["user_id"], limit=5)
            return await index.count(), found
        finally:
            index.close()

    count, [hit] = asyncio.run(look())
    assert count == len(worded)
    assert (hit.session_id, hit.message_id) == (first["id"], first["messages"][0]["id"])


@pytest.mark.parametrize(
    ("setting", "code", "says"),
    [
        ({"AGENT_SESSIONS_RETENTION_DAYS": "-3"}, 2, "invalid settings: retention_days"),
        ({"MONGODB_URI": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300"}, 1,
         "the database failed: 127.0.0.1:9"),
        ({"AGENT_SESSIONS_DATA_DIR": "FILE"}, 1, "a-file"),
        ({"INDEX": "not sqlite"}, 1, "the search index failed: file is not a database"),
    ],
    ids=["setting", "database", "data-dir", "index-file"],
)  # fmt: skip
def test_reindex_on_a_bad_configuration(
    mongo_uri: str, database: str, tmp_path: Path, setting: dict[str, str], code: int, says: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if setting.pop("INDEX", None):
        (data_dir / FILE).write_bytes(b"not a database, but text " * 100)
    if setting.get("AGENT_SESSIONS_DATA_DIR") == "FILE":
        (tmp_path / "a-file").write_text("")
        setting["AGENT_SESSIONS_DATA_DIR"] = str(tmp_path / "a-file")
    done = reindex(mongo_uri, database, data_dir, "reindex", **setting)
    err = done.stderr.decode()
    assert done.returncode == code, err
    assert says in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
