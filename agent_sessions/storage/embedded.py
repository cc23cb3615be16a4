"""The embedded database: SecantusDB's ``secantusd-py`` run as a child process.

SecantusDB is GPL-2.0, so it is only ever started as a separate program and spoken to
over the MongoDB wire protocol; nothing here imports it.

One data directory belongs to one server process at a time. The process that starts the
server holds an exclusive lock on ``<data_dir>/agent-sessions.lock`` and records the
server's address in ``<data_dir>/server.json``. A second process pointed at the same
directory (``agent-sessions keys create`` while ``serve`` runs) finds the lock taken and
connects to the recorded address instead of opening the files a second time.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("agent_sessions.embedded")

EXECUTABLE = "secantusd-py"
_LISTENING = re.compile(rb"listening on ([0-9.]+):(\d+)")


class EmbeddedServerError(RuntimeError):
    """The embedded database could not be started or reached; the message says why."""


def find_executable(explicit: str | None = None) -> str:
    """Locate ``secantusd-py``: the explicit path, else next to this Python, else on PATH."""
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise EmbeddedServerError(f"the embedded database program {explicit!r} does not exist")
        return explicit
    beside = Path(sys.executable).with_name(EXECUTABLE)
    if beside.is_file():
        return str(beside)
    found = shutil.which(EXECUTABLE)
    if found:
        return found
    raise EmbeddedServerError(
        f"{EXECUTABLE} was not found (it comes with the SecantusDB package: "
        "pip install SecantusDB), and no MONGODB_URI is set"
    )


@dataclass
class EmbeddedServer:
    """A running (or reachable) embedded database for one data directory.

    ``owner`` is true when this process started the server and must stop it; false when it
    found another process's server through ``server.json`` and only connects to it.
    """

    data_dir: Path
    uri: str
    owner: bool
    process: subprocess.Popen[bytes] | None = None
    _lock_fd: int | None = None
    _stopping: bool = False
    _watcher: threading.Thread | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "secantusd.log"

    @property
    def alive(self) -> bool:
        return self.process is None or self.process.poll() is None

    def exit_reason(self) -> str:
        """Why the child stopped: its exit code and the last lines of its log."""
        if self.process is None or self.process.returncode is None:
            return "running"
        return (
            f"exited with code {self.process.returncode}; last log lines:\n{_tail(self.log_path)}"
        )

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the child, wait for it, kill it if it does not stop; release the lock."""
        self._stopping = True
        if self.owner and self.process is not None:
            _terminate(self.process, timeout)
        if self.owner:
            (self.data_dir / "server.json").unlink(missing_ok=True)
            atexit.unregister(self.stop)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _watch(self) -> None:
        assert self.process is not None
        self.process.wait()
        if not self._stopping:
            log.error("the embedded database %s", self.exit_reason())


def start_embedded(
    data_dir: Path,
    executable: str | None = None,
    timeout: float = 30.0,
    *,
    join: bool = True,
    wait: float = 0.0,
) -> EmbeddedServer:
    """Start the embedded database of ``data_dir`` and return its address.

    When another process holds the directory: with ``join``, use its database (a short
    command beside a running server); without, wait up to ``wait`` seconds for it to
    let go, then refuse (a server must not depend on a process that may exit first).
    Raises ``EmbeddedServerError`` with a clear message when the program is missing, the
    directory stays held, its database does not answer, or the child fails.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    lock_fd = os.open(data_dir / "agent-sessions.lock", os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if join:
                os.close(lock_fd)
                return _join_running(data_dir)
            if time.monotonic() >= deadline:
                os.close(lock_fd)
                raise EmbeddedServerError(
                    f"the data directory {data_dir} is in use by another agent-sessions process"
                    f"{_holder(data_dir)}; stop it or use another --data-dir"
                ) from None
            time.sleep(0.2)
    try:
        return _spawn(data_dir, find_executable(executable), lock_fd, timeout)
    except BaseException:
        os.close(lock_fd)
        raise


def _holder(data_dir: Path) -> str:
    try:
        return f" (pid {int(json.loads((data_dir / 'server.json').read_text())['pid'])})"
    except (OSError, ValueError, KeyError):
        return ""


def _terminate(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Terminate, wait, and kill if it does not stop."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.warning("embedded database did not stop within %.0fs; killing it", timeout)
        proc.kill()
        proc.wait()


def _join_running(data_dir: Path) -> EmbeddedServer:
    record = data_dir / "server.json"
    try:
        info = json.loads(record.read_text())
        host, port = info["host"], int(info["port"])
    except (OSError, ValueError, KeyError) as exc:
        raise EmbeddedServerError(
            f"the data directory {data_dir} is in use by another process that has not "
            "published its database address; wait for it to finish starting or stop it"
        ) from exc
    if not _answers(host, port):
        raise EmbeddedServerError(
            f"the data directory {data_dir} is in use by process {info.get('pid')}, "
            "but its database does not answer; stop that process or use another --data-dir"
        )
    return EmbeddedServer(data_dir=data_dir, uri=_uri(host, port), owner=False)


def _spawn(data_dir: Path, executable: str, lock_fd: int, timeout: float) -> EmbeddedServer:
    db_dir = data_dir / "db"
    # An empty config file of our own: without --config, secantusd-py would pick up a
    # secantusd.toml from the working directory or the user's home.
    config = data_dir / "secantusd.toml"
    if not config.exists():
        config.write_text(
            "# settings for the embedded database; agent-sessions passes its own flags\n"
        )
    log_path = data_dir / "secantusd.log"
    log_file = open(log_path, "wb")  # noqa: SIM115 - the child writes to it for its lifetime
    cmd = [
        executable,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--storage-path",
        str(db_dir),
        "--config",
        str(config),
        "--log-level",
        "INFO",
    ]
    try:
        proc = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop the child
        )
    finally:
        log_file.close()
    server = EmbeddedServer(data_dir=data_dir, uri="", owner=True, process=proc, _lock_fd=lock_fd)
    deadline = time.monotonic() + timeout
    port = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedServerError(
                f"the embedded database {server.exit_reason()}{_orphan_hint(data_dir)}"
            )
        match = _LISTENING.search(log_path.read_bytes())
        if match:
            port = int(match.group(2))
            if _answers("127.0.0.1", port):
                break
        time.sleep(0.05)
    else:
        _terminate(proc, 10.0)  # the lock stays with the caller, which releases it
        raise EmbeddedServerError(f"the embedded database did not start within {timeout:.0f}s")
    server.uri = _uri("127.0.0.1", port)
    tmp = data_dir / "server.json.tmp"
    tmp.write_text(
        json.dumps({"pid": os.getpid(), "child_pid": proc.pid, "host": "127.0.0.1", "port": port})
    )
    tmp.replace(data_dir / "server.json")
    # A process that ends without stopping it (an unhandled error) still stops the child.
    atexit.register(server.stop)
    server._watcher = threading.Thread(target=server._watch, name="secantusd-watch", daemon=True)
    server._watcher.start()
    log.info("embedded database listening on 127.0.0.1:%d, data in %s", port, db_dir)
    return server


def _orphan_hint(data_dir: Path) -> str:
    """When an earlier run was killed without stopping its child, the child still holds the
    files: say which process to stop."""
    try:
        child = int(json.loads((data_dir / "server.json").read_text())["child_pid"])
        os.kill(child, 0)
    except (OSError, ValueError, KeyError):
        return ""
    return (
        f"\nan embedded database left running by an earlier agent-sessions (pid {child}) "
        f"still holds {data_dir}; stop it (kill {child}) and start again"
    )


def _uri(host: str, port: int) -> str:
    return f"mongodb://{host}:{port}/?directConnection=true"


def _answers(host: str, port: int, timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        with open(path, "rb") as f:
            return b"".join(deque(f, maxlen=lines)).decode(errors="replace").rstrip()
    except OSError:
        return "(no log)"
