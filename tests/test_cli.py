"""The ``agent-sessions`` command as a user runs it: a real process on loopback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

COMMAND = str(Path(sys.executable).with_name("agent-sessions"))
pytestmark = pytest.mark.slow  # real processes: not in the fast inner loop


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AGENT_SESSIONS_") and k != "MONGODB_URI"
    }
    return env | extra


@contextmanager
def serving(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``agent-sessions serve`` until /healthz answers 200 (within 30 s); stop it with SIGINT."""
    port = _free_port()
    proc = subprocess.Popen(
        [COMMAND, "serve", "--port", str(port), "--data-dir", str(data_dir), *args],
        env=env or _env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "no 200 from /healthz within 30 s"
            time.sleep(0.1)
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        assert code == 0, proc.stdout.read().decode() if proc.stdout else ""


def _gql(base: str, query: str, variables: dict | None = None) -> dict:
    response = httpx.post(
        f"{base}/graphql", json={"query": query, "variables": variables}, timeout=10
    )
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


def test_serve_answers_health_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    with serving(tmp_path) as base:
        recorded = _gql(
            base,
            "mutation($i: RecordRunInput!) { recordRun(input: $i) { sessionId } }",
            {"i": {"agentId": "a", "messages": [{"role": "USER", "content": "remember me"}]}},
        )
        session_id = recorded["recordRun"]["sessionId"]
        child_pid = json.loads((tmp_path / "server.json").read_text())["child_pid"]
    # The embedded database stopped with the server.
    assert not (tmp_path / "server.json").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(child_pid, 0)
    with serving(tmp_path) as base:
        data = _gql(
            base,
            "query($id: ID!) { session(id: $id) { messages { nodes { content } } } }",
            {"id": session_id},
        )
        assert data["session"]["messages"]["nodes"] == [{"content": "remember me"}]


def test_open_mode_refuses_a_public_address(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            COMMAND,
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            str(_free_port()),
            "--data-dir",
            str(tmp_path),
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--insecure-no-auth" in result.stderr


def _keys(data_dir: Path, *args: str) -> str:
    result = subprocess.run(
        [COMMAND, "keys", *args, "--data-dir", str(data_dir)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_keys_commands_reach_the_running_servers_database(tmp_path: Path) -> None:
    env = _env(AGENT_SESSIONS_ADMIN_KEY="cli-admin-key")
    with serving(tmp_path, env=env) as base:
        key = _keys(tmp_path, "create", "--user", "carol").strip()  # the key alone on stdout
        [listed] = json.loads(_keys(tmp_path, "list", "--json"))
        assert (listed["user_id"], listed["admin"], listed["revoked_at"]) == ("carol", False, None)
        assert key.startswith(listed["prefix"])
        key_id = listed["id"]
        viewer = httpx.post(
            f"{base}/graphql",
            json={"query": "{ viewer { userId isAdmin } }"},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        ).json()
        assert viewer == {"data": {"viewer": {"userId": "carol", "isAdmin": False}}}
        listing = _keys(tmp_path, "list")
        assert key_id in listing and "user=carol" in listing and key not in listing
        assert f"revoked {key_id}" in _keys(tmp_path, "revoke", key_id)
        response = httpx.get(
            f"{base}/api/sessions", headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        assert response.status_code == 401


def test_a_second_server_on_a_busy_data_directory_says_so_and_leaves_the_first_alone(
    tmp_path: Path,
) -> None:
    with serving(tmp_path) as base:
        result = subprocess.run(
            [COMMAND, "serve", "--port", str(_free_port()), "--data-dir", str(tmp_path)],
            env=_env(), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 1
        assert "is in use by another agent-sessions process" in result.stderr
        assert "Traceback" not in result.stderr
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
