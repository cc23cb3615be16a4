"""The embedded database: start, stop, restart with data intact, a shared data directory,
a missing program, a child that dies."""

from __future__ import annotations

import json
import logging
import socket
import uuid
from pathlib import Path

import pytest
from pymongo import MongoClient

from agent_sessions.app import build_app
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage
from agent_sessions.storage.embedded import EmbeddedServerError, start_embedded

pytestmark = pytest.mark.slow  # real database processes: not in the fast inner loop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_data_survives_a_restart(tmp_path: Path) -> None:
    server = start_embedded(tmp_path)
    try:
        with MongoClient(server.uri) as client:
            client.db.things.insert_one({"_id": "kept", "n": 1})
        assert (tmp_path / "server.json").exists()
    finally:
        server.stop()
    assert not server.alive
    assert not (tmp_path / "server.json").exists()
    again = start_embedded(tmp_path)
    try:
        with MongoClient(again.uri) as client:
            assert client.db.things.find_one({"_id": "kept"}) == {"_id": "kept", "n": 1}
    finally:
        again.stop()


def test_second_process_on_a_busy_directory_uses_the_running_server(tmp_path: Path) -> None:
    first = start_embedded(tmp_path)
    try:
        second = start_embedded(tmp_path)
        assert second.owner is False and second.uri == first.uri
        second.stop()  # stopping a joined server leaves the owner's running
        assert first.alive
        with MongoClient(second.uri, serverSelectionTimeoutMS=3000) as client:
            assert client.admin.command("ping")["ok"] == 1
    finally:
        first.stop()


def test_busy_directory_whose_database_does_not_answer_is_a_clear_error(tmp_path: Path) -> None:
    first = start_embedded(tmp_path)
    try:
        # The lock is held, but the recorded address no longer answers.
        record = json.loads((tmp_path / "server.json").read_text())
        (tmp_path / "server.json").write_text(json.dumps(record | {"port": _free_port()}))
        with pytest.raises(EmbeddedServerError, match="does not answer"):
            start_embedded(tmp_path)
    finally:
        first.stop()


def test_missing_program_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedServerError, match="does not exist"):
        start_embedded(tmp_path, executable=str(tmp_path / "no-such-secantusd"))
    # The directory is not left locked: a real start works afterwards.
    start_embedded(tmp_path).stop()


def test_program_that_fails_to_start_reports_its_output(tmp_path: Path) -> None:
    fake = tmp_path / "fake-secantusd"
    fake.write_text("#!/bin/sh\necho 'cannot open storage: disk on fire' >&2\nexit 7\n")
    fake.chmod(0o755)
    with pytest.raises(EmbeddedServerError, match="code 7") as excinfo:
        start_embedded(tmp_path / "data", executable=str(fake))
    assert "disk on fire" in str(excinfo.value)


async def test_healthz_is_503_when_the_child_dies(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import httpx

    server = start_embedded(tmp_path)
    storage = await Storage.connect(server.uri, f"t_{uuid.uuid4().hex[:8]}", embedded=server)
    app = build_app(Settings(data_dir=tmp_path), storage=storage)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert server.process is not None
        server.process.kill()
        server.process.wait()
        with caplog.at_level(logging.ERROR, logger="agent_sessions"):
            response = await client.get("/healthz")
        assert (response.status_code, response.json()) == (503, {"status": "unavailable"})
        assert "exited with code" in caplog.text  # the log says why; the answer does not
    await storage.close()


def test_a_database_orphaned_by_a_killed_server_is_stopped_and_the_data_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import os
    import subprocess
    import sys

    # A process that starts the embedded database, writes, and is then killed outright,
    # so it never stops its child (which keeps the WiredTiger files locked).
    script = (
        "import sys, time; from pathlib import Path; from pymongo import MongoClient; "
        "from agent_sessions.storage.embedded import start_embedded; "
        "s = start_embedded(Path(sys.argv[1])); "
        "MongoClient(s.uri, journal=True).db.things.insert_one({'_id': 'kept'}); "
        "print('up', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
        child = json.loads((tmp_path / "server.json").read_text())["child_pid"]
        proc.kill()
        proc.wait()
        os.kill(child, 0)  # the orphan runs
        with caplog.at_level(logging.WARNING, logger="agent_sessions.embedded"):
            again = start_embedded(tmp_path)
        try:
            assert f"stopping the embedded database (pid {child})" in caplog.text
            with pytest.raises(ProcessLookupError):
                os.kill(child, 0)
            with MongoClient(again.uri) as client:
                assert client.db.things.find_one({"_id": "kept"}) == {"_id": "kept"}
        finally:
            again.stop()
    finally:
        proc.kill()


def test_a_recorded_pid_that_is_not_our_database_is_never_touched(tmp_path: Path) -> None:
    import subprocess
    import sys

    # Another program now has the recorded child pid (pids are reused): same pid, but
    # not started at the recorded time, not the embedded database.
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        first = start_embedded(tmp_path)
        first.stop()
        record = {"pid": 1, "child_pid": stranger.pid, "child_started": 1,
                  "host": "127.0.0.1", "port": _free_port()}  # fmt: skip
        (tmp_path / "server.json").write_text(json.dumps(record))
        start_embedded(tmp_path).stop()
        assert stranger.poll() is None, "a process that was not ours was stopped"
        record["child_started"] = json.loads(Path(f"/proc/{stranger.pid}/stat").read_text()
                                             .rsplit(")", 1)[1].split()[19])  # fmt: skip
        (tmp_path / "server.json").write_text(json.dumps(record))
        start_embedded(tmp_path).stop()  # the right start time, but not secantusd-py
        assert stranger.poll() is None, "a process that was not ours was stopped"
    finally:
        stranger.kill()
        stranger.wait()


def test_a_process_that_fails_without_stopping_still_stops_its_database(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import time

    script = (
        "import sys, json; from pathlib import Path; from agent_sessions.storage.embedded import start_embedded; "
        "start_embedded(Path(sys.argv[1])); "
        "print(json.loads((Path(sys.argv[1]) / 'server.json').read_text())['child_pid'], flush=True); "
        "raise RuntimeError('crash')"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "RuntimeError: crash" in result.stderr
    child = int(result.stdout.strip())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child, 9)
        raise AssertionError("the embedded database outlived the process that started it")
    start_embedded(tmp_path).stop()  # and the directory is free again
