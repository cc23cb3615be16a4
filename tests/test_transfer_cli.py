"""``agent-sessions demo|export|import`` and the keys output, as a user runs them: real
processes on the session's database, output piped, or on a terminal for the progress bar."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient

from agent_sessions.demo import demo_sessions

COMMAND = str(Path(sys.executable).with_name("agent-sessions"))


@pytest.fixture
def database(mongo_uri: str) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:16]}"
    yield name
    with MongoClient(mongo_uri) as client:
        client.drop_database(name)


def env(mongo_uri: str, database: str) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AGENT_SESSIONS_") and k != "MONGODB_URI"
    }
    return base | {"MONGODB_URI": mongo_uri, "AGENT_SESSIONS_DATABASE": database}


def run(mongo_uri: str, database: str, *args: str, stdin: bytes | None = None):
    return subprocess.run(
        [COMMAND, *args], env=env(mongo_uri, database), input=stdin, capture_output=True,
        timeout=120, check=False,
    )  # fmt: skip


def test_demo_export_import_round_trip_through_files_and_pipes(
    mongo_uri: str, database: str, tmp_path: Path
) -> None:
    seeded = run(mongo_uri, database, "demo")
    assert seeded.returncode == 0, seeded.stderr
    assert b"demo: 10 sessions added, 0 there already" in seeded.stderr
    again = run(mongo_uri, database, "demo")
    assert b"demo: 0 sessions added, 10 there already" in again.stderr

    piped = run(mongo_uri, database, "export", "--user", "alice")
    assert piped.returncode == 0, piped.stderr
    lines = piped.stdout.splitlines()
    assert len(lines) == 5 and all(json.loads(line)["user_id"] == "alice" for line in lines)
    assert b"\r" not in piped.stderr and b"%|" not in piped.stderr  # no progress bar in a pipe
    alice = [r for r in demo_sessions() if r["user_id"] == "alice"]
    messages, runs = sum(len(r["messages"]) for r in alice), sum(len(r["runs"]) for r in alice)
    assert piped.stderr.decode() == f"exported 5 sessions ({messages} messages, {runs} runs)\n"

    target = tmp_path / "all.jsonl"
    written = run(mongo_uri, database, "export", "-o", str(target))
    assert written.returncode == 0 and written.stdout == b""
    assert len(target.read_bytes().splitlines()) == 10
    assert not (tmp_path / "all.jsonl.partial").exists()

    fresh = f"{database}_copy"
    try:
        imported = run(mongo_uri, fresh, "import", str(target))
        assert imported.returncode == 0, imported.stderr
        assert b"imported 10 sessions, skipped 0 (they exist already), 0 invalid" in (
            imported.stderr
        )
        copy = run(mongo_uri, fresh, "export", "-o", str(tmp_path / "copy.jsonl"))
        assert copy.returncode == 0
        assert (tmp_path / "copy.jsonl").read_bytes() == target.read_bytes()
        from_stdin = run(mongo_uri, fresh, "import", "-", stdin=lines[0] + b"\n[]\n")
        assert from_stdin.returncode == 1  # a line was invalid
        report = from_stdin.stderr.decode()
        assert "line 1: skipped demo-" in report and "exists already" in report
        assert "line 2: invalid: a session must be a JSON object" in report
        assert "imported 0 sessions, skipped 1 (they exist already), 1 invalid" in report
    finally:
        with MongoClient(mongo_uri) as client:
            client.drop_database(fresh)


def test_bad_arguments_are_one_clear_line(mongo_uri: str, database: str, tmp_path: Path) -> None:
    since = run(mongo_uri, database, "export", "--since", "last tuesday")
    assert since.returncode == 2
    assert b"is not a date or RFC 3339 time" in since.stderr
    missing = run(mongo_uri, database, "import", str(tmp_path / "nothing.jsonl"))
    assert missing.returncode == 1
    assert b"cannot read" in missing.stderr and b"Traceback" not in missing.stderr


def run_on_a_terminal(mongo_uri: str, database: str, *args: str) -> tuple[bytes, bytes]:
    """Run with standard error on a pseudo-terminal; (stdout, what the terminal showed)."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    proc = subprocess.Popen(
        [COMMAND, *args], env=env(mongo_uri, database), stdout=subprocess.PIPE,
        stderr=follower,
    )  # fmt: skip
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    assert proc.stdout is not None
    out = proc.stdout.read()
    assert proc.wait(60) == 0, shown
    os.close(leader)
    return out, shown


def test_a_terminal_gets_a_progress_bar(mongo_uri: str, database: str, tmp_path: Path) -> None:
    assert run(mongo_uri, database, "demo").returncode == 0
    target = tmp_path / "out.jsonl"
    _, shown = run_on_a_terminal(mongo_uri, database, "export", "-o", str(target))
    assert b"10/10" in shown and b"session" in shown
    _, shown = run_on_a_terminal(mongo_uri, f"{database}_tty", "import", str(target))
    with MongoClient(mongo_uri) as client:
        client.drop_database(f"{database}_tty")
    assert b"100%" in shown and b"imported 10 sessions" in shown


def test_keys_create_prints_the_key_alone_and_list_speaks_json(
    mongo_uri: str, database: str
) -> None:
    created = run(mongo_uri, database, "keys", "create", "--user", "dana", "--admin")
    assert created.returncode == 0, created.stderr
    key = created.stdout.decode()
    assert key.startswith("ask_") and key.endswith("\n") and len(key.split()) == 1
    assert b"user:  dana" in created.stderr and b"shown only now" in created.stderr
    listed = run(mongo_uri, database, "keys", "list", "--json")
    [entry] = json.loads(listed.stdout)
    assert set(entry) == {"id", "user_id", "admin", "prefix", "created_at", "last_used_at",
                          "revoked_at"}  # fmt: skip
    assert (entry["user_id"], entry["admin"], entry["last_used_at"]) == ("dana", True, None)
    assert key.startswith(entry["prefix"]) and key.strip() not in listed.stdout.decode()
    assert entry["created_at"].endswith("Z")
