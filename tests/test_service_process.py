"""The service as a service manager runs it: real ``agent-sessions serve`` processes, real
signals, a real embedded database child killed outright, several workers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from .test_cli import COMMAND, _env, _free_port

RECORD = "mutation($i: RecordRunInput!) { recordRun(input: $i) { id } }"


class Serve:
    """``agent-sessions serve`` on a free port, its log in a file; ``up()`` waits for 200
    from /healthz."""

    def __init__(self, data_dir: Path, *args: str) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.log = data_dir.parent / f"serve-{self.port}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [COMMAND, "serve", "--port", str(self.port), "--data-dir", str(data_dir), *args],
                env=_env(AGENT_SESSIONS_LOG_FORMAT="json"),
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def up(self, within: float = 30) -> Serve:
        deadline = time.monotonic() + within
        while True:
            assert self.proc.poll() is None, self.text()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"no 200 from /healthz within {within} s"
            time.sleep(0.05)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def child_pid(self) -> int:
        return json.loads((self.data_dir / "server.json").read_text())["child_pid"]

    def record(self, session_id: str, run_id: str) -> httpx.Response:
        run = {"sessionId": session_id, "runId": run_id, "agentId": "a",
               "messages": [{"role": "USER", "content": run_id}]}  # fmt: skip
        return httpx.post(
            f"{self.url}/graphql", json={"query": RECORD, "variables": {"i": run}}, timeout=30
        )

    def run_ids(self, session_id: str) -> list[str]:
        response = httpx.get(f"{self.url}/api/sessions/{session_id}/runs", timeout=30)
        assert response.status_code == 200, response.text
        return [r["runId"] for r in response.json()]

    def __enter__(self) -> Serve:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.stop()


def _gone(pid: int, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _children(pid: int) -> list[tuple[int, str]]:
    """The processes whose parent is ``pid``: (pid, command line)."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            out.append((int(entry.name), cmdline))
    return out


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_each_stop_signal_stops_the_database_and_the_next_start_has_the_data(
    tmp_path: Path, sig: int
) -> None:
    data = tmp_path / "data"
    with Serve(data) as first:
        first.up()
        assert first.record("kept", "r-1").status_code == 200
        child = first.child_pid()
        assert first.stop(sig) == 0, first.text()
    assert _gone(child), "the embedded database outlived the server"
    assert not (data / "server.json").exists()
    assert "Traceback" not in first.text()
    with Serve(data) as again:
        again.up()
        assert again.run_ids("kept") == ["r-1"]


def test_after_kill_9_of_the_server_the_next_start_stops_its_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Serve(data) as first:
        first.up()
        assert first.record("kept", "r-1").status_code == 200
        child = first.child_pid()
        first.proc.kill()
        first.proc.wait()
    os.kill(child, 0)  # left running: nobody stopped it
    with Serve(data) as again:
        again.up()
        assert _gone(child)
        assert f"stopping the embedded database (pid {child})" in again.text()
        assert again.run_ids("kept") == ["r-1"]
        assert again.child_pid() != child


def test_kill_9_of_the_database_right_after_50_acknowledged_writes_loses_none(
    tmp_path: Path,
) -> None:
    with Serve(tmp_path / "data") as server:
        server.up()
        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(lambda i: server.record("busy", f"r-{i}"), range(50)))
        assert [a.status_code for a in answers] == [200] * 50
        assert all("errors" not in a.json() for a in answers)
        child = server.child_pid()
        os.kill(child, signal.SIGKILL)  # at once: nothing had time to reach the disk lazily
        assert _gone(child)
        server.up()  # the server restarts its database
        assert sorted(server.run_ids("busy")) == sorted(f"r-{i}" for i in range(50))
        assert server.child_pid() != child
        log = server.text()
        assert "exited with code -9" in log and "restarting it in" in log
        assert "the embedded database is back on" in log


def test_a_busy_data_directory_is_reported_at_once(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Serve(data) as first:
        first.up()
        with Serve(data) as second:
            deadline = time.monotonic() + 10
            expected = f"waiting up to 15 s for {data}, held by pid {first.proc.pid}"
            while expected not in second.text():
                assert time.monotonic() < deadline, second.text()
                assert second.proc.poll() is None, second.text()
                time.sleep(0.05)
            assert second.stop() == 0  # a stop while it waits is a clean stop
            assert "Traceback" not in second.text()
        assert httpx.get(f"{first.url}/healthz", timeout=5).status_code == 200


def test_a_port_in_use_is_found_before_the_database_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [COMMAND, "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            env=_env(), capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "secantusd.log").exists()  # the database never started


def test_two_workers_share_one_database_and_stop_with_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Serve(data, "--workers", "2") as server:
        server.up()
        children = _children(server.proc.pid)
        databases = [pid for pid, cmd in children if "secantusd-py" in cmd]
        workers = [pid for pid, cmd in children if "secantusd-py" not in cmd
                   and "spawn_main" in cmd]  # fmt: skip
        assert len(databases) == 1 and databases[0] == server.child_pid()
        assert len(workers) == 2
        with ThreadPoolExecutor(8) as pool:  # new connections, spread over both workers
            answers = list(pool.map(lambda i: server.record("shared", f"w-{i}"), range(40)))
        assert [a.status_code for a in answers] == [200] * 40
        assert len(server.run_ids("shared")) == 40
        # Metrics add up both workers' figures, whichever one answers the scrape.
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        line = next(
            ln for ln in metrics.splitlines()
            if ln.startswith("agent_sessions_http_requests_total{")
            and 'route="/graphql"' in ln and 'status="200"' in ln
        )  # fmt: skip
        assert float(line.rsplit(" ", 1)[1]) == 40
        # A worker killed outright is replaced; the service keeps answering.
        os.kill(workers[0], signal.SIGKILL)
        assert _gone(workers[0])
        for i in range(10):
            assert server.record("shared", f"after-{i}").status_code == 200
        assert server.stop(signal.SIGTERM) == 0, server.text()
    assert _gone(databases[0])
    assert all(_gone(pid) for pid, _ in children)
    assert not (data / "server.json").exists()
    assert server.text().count("embedded database listening on") == 1  # started once


async def test_while_the_database_is_down_requests_answer_503_at_once(tmp_path: Path) -> None:
    import uuid

    from agent_sessions.app import build_app
    from agent_sessions.settings import Settings
    from agent_sessions.storage import Storage
    from agent_sessions.storage.embedded import start_embedded

    # Not the owner's view (an owner knows its child died): a worker's, or a MONGODB_URI
    # user's, who only has the driver's word for it.
    server = start_embedded(tmp_path / "data", supervise=False)
    joined = start_embedded(tmp_path / "data")  # as a worker sees it: owner=False
    storage = await Storage.connect(joined.uri, f"t_{uuid.uuid4().hex[:8]}", embedded=joined)
    app = build_app(Settings(data_dir=tmp_path), storage=storage)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost"
        ) as c:
            assert (await c.get("/api/sessions")).status_code == 200
            assert server.process is not None
            server.process.kill()
            server.process.wait()
            for attempt in range(4):
                start = time.monotonic()
                rest = await c.get("/api/sessions")
                graphql = await c.post("/graphql", json={"query": "{ sessions { totalCount } }"})
                # The request that finds it gone waits out the driver's retry (at most 2 s
                # on the embedded database); later ones are refused before any command.
                assert time.monotonic() - start < (3.0 if attempt == 0 else 1.5)
                assert (rest.status_code, rest.json()) == (
                    503, {"error": "the database is unavailable"}
                )  # fmt: skip
                assert graphql.json()["errors"][0]["extensions"]["code"] == "DATABASE_UNAVAILABLE"
    finally:
        await storage.client.close()
        server.stop()


def test_workers_of_a_server_killed_outright_stop_and_the_next_start_is_healthy(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    with Serve(data, "--workers", "2") as first:
        first.up()
        assert first.record("kept", "r-1").status_code == 200
        workers = [pid for pid, cmd in _children(first.proc.pid) if "spawn_main" in cmd]
        assert len(workers) == 2
        first.proc.kill()
        first.proc.wait()
        assert all(_gone(pid) for pid in workers), "a worker served on without its parent"
    with Serve(data) as again:
        again.up()
        assert again.run_ids("kept") == ["r-1"]


@pytest.mark.parametrize(("backend_s", "grace_s", "finished"), [(1.5, 10, True), (8, 1, False)])
def test_a_stop_signal_lets_requests_in_flight_finish_within_the_grace(
    tmp_path: Path, backend_s: float, grace_s: float, finished: bool
) -> None:
    import threading

    from starlette.responses import JSONResponse

    from .agent_servers import AgentBackend, chat_completion

    async def answer_slowly(body: dict) -> JSONResponse:
        import asyncio

        await asyncio.sleep(backend_s)
        return JSONResponse(chat_completion("worth the wait"))

    with AgentBackend(answer_slowly) as backend:
        config = tmp_path / "agents.toml"
        config.write_text(
            f'graceful_shutdown_s = {grace_s}\n[agents.slow]\nbackend = "openai"\n'
            f'base_url = "{backend.url}/v1"\nmodel = "m"\ntimeout_s = 30\n'
        )
        with Serve(tmp_path / "data", "--config", str(config)) as server:
            server.up()
            answers: list[httpx.Response | Exception] = []

            def ask() -> None:
                try:
                    answers.append(httpx.post(f"{server.url}/api/agents/slow/runs",
                                              json={"message": "hi"}, timeout=30))  # fmt: skip
                except httpx.HTTPError as exc:
                    answers.append(exc)

            asking = threading.Thread(target=ask)
            asking.start()
            while not backend.received:  # the request is in flight, at the backend
                time.sleep(0.02)
            start = time.monotonic()
            assert server.stop(signal.SIGTERM) == 0, server.text()
            stopped_after = time.monotonic() - start
            asking.join(30)
    if finished:
        assert isinstance(answers[0], httpx.Response), answers
        assert (answers[0].status_code, answers[0].json()["content"]) == (201, "worth the wait")
    else:
        # Cut off when the grace ran out, well before the backend would have answered.
        assert not isinstance(answers[0], httpx.Response) or answers[0].status_code >= 500
        assert stopped_after < backend_s
