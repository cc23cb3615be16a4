"""The embedded database: SecantusDB's ``secantusd-py`` run as a child process.

SecantusDB is GPL-2.0, so it is only ever started as a separate program and spoken to
over the MongoDB wire protocol; nothing here imports it.

One data directory belongs to one server process at a time. The process that starts the
server holds an exclusive lock on ``<data_dir>/agent-sessions.lock`` and records the
server's address in ``<data_dir>/server.json``, with its own pid and the child's pid and
start time. A second process pointed at the same directory (``agent-sessions keys create``
while ``serve`` runs) finds the lock taken and connects to the recorded address instead of
opening the files a second time. A process that finds the lock free but the recorded child
still running (its starter was killed outright) stops that child, once it has proved from
``/proc`` that it is the same process, started at the recorded time, running this
program on this directory; it never touches a process it cannot prove is its own.

The child syncs its log on every commit (``--sync-on-commit``) and the client asks for
journaled writes, so an acknowledged write survives a crash of the child or the machine.
When the child dies, its starter restarts it on the same port, with back-off.
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
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("agent_sessions.embedded")

EXECUTABLE = "secantusd-py"
_LISTENING = re.compile(rb"listening on ([0-9.]+):(\d+)")
HOST = "127.0.0.1"
# Back-off between restarts of a child that keeps dying: doubled per quick death, reset
# once a child has stayed up for STABLE_S.
RESTART_DELAY_S, RESTART_DELAY_MAX_S, STABLE_S = 0.5, 30.0, 30.0


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
    found another process's server through ``server.json`` and only connects to it. An
    owner supervises its child: when it dies, it is restarted on the same port (so every
    client's address stays valid), after a back-off, and the log says why it died.
    """

    data_dir: Path
    uri: str
    owner: bool
    process: subprocess.Popen[bytes] | None = None
    port: int | None = None
    executable: str | None = None
    restarts: int = 0
    sync_on_commit: bool = True
    _lock_fd: int | None = None
    _stopping: bool = False
    _stop_event: threading.Event = field(default_factory=threading.Event)
    _spawn_lock: threading.Lock = field(default_factory=threading.Lock)
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
        """Terminate the child, wait for it, kill it if it does not stop; release the lock.
        Safe to call more than once: the child is stopped once."""
        self._stopping = True
        self._stop_event.set()  # wakes a supervisor waiting out its back-off
        with self._spawn_lock:  # not while a restart is half done
            if self.owner and self.process is not None:
                _terminate(self.process, timeout, self.port)
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout)
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

    def _supervise(self) -> None:
        delay = RESTART_DELAY_S
        while True:
            assert self.process is not None
            started = time.monotonic()
            self.process.wait()
            if self._stopping:
                return
            if time.monotonic() - started > STABLE_S:
                delay = RESTART_DELAY_S
            log.error(
                "the embedded database %s\nrestarting it in %.1f s", self.exit_reason(), delay
            )
            while not self._stop_event.wait(delay):
                with self._spawn_lock:
                    if self._stopping:
                        return
                    try:
                        assert self.executable is not None and self.port is not None
                        self.process = _launch(
                            self.data_dir, self.executable, self.port, self.sync_on_commit
                        )
                        _await_listening(self, timeout=30.0)
                    except (EmbeddedServerError, OSError) as exc:
                        delay = min(delay * 2, RESTART_DELAY_MAX_S)
                        log.error("restarting the embedded database failed: %s; next try in "
                                  "%.1f s", exc, delay)  # fmt: skip
                        continue
                self.restarts += 1
                _record(self)
                log.warning("the embedded database is back on %s:%d (pid %d, restart %d)",
                            HOST, self.port, self.process.pid, self.restarts)  # fmt: skip
                delay = min(delay * 2, RESTART_DELAY_MAX_S)
                break
            else:
                return


def start_embedded(
    data_dir: Path,
    executable: str | None = None,
    timeout: float = 30.0,
    *,
    join: bool = True,
    wait: float = 0.0,
    supervise: bool = True,
    sync_on_commit: bool = True,
) -> EmbeddedServer:
    """Start the embedded database of ``data_dir`` and return its address.

    When another process holds the directory: with ``join``, use its database (a short
    command beside a running server); without, wait up to ``wait`` seconds for it to
    let go (saying so at once), then refuse (a server must not depend on a process that
    may exit first). ``supervise``: restart the child when it dies. ``sync_on_commit``:
    the child fsyncs its log on every commit (off only to measure what that costs).
    Raises ``EmbeddedServerError`` with a clear message when the program is missing, the
    directory stays held, its database does not answer, or the child fails.
    """
    data_dir = Path(data_dir).expanduser().resolve()
    if not data_dir.exists():
        data_dir.mkdir(parents=True)
        data_dir.chmod(0o700)  # it holds every session and key hash
    lock_fd = os.open(data_dir / "agent-sessions.lock", os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    said = False
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
            if not said:
                log.warning("waiting up to %.0f s for %s, held by%s", wait, data_dir,
                            _holder(data_dir) or " another process")  # fmt: skip
                said = True
            time.sleep(0.2)
    try:
        program = find_executable(executable)
        _stop_orphan(data_dir)
        return _spawn(data_dir, program, lock_fd, timeout, supervise, sync_on_commit)
    except BaseException:
        os.close(lock_fd)
        raise


def _holder(data_dir: Path) -> str:
    try:
        return f" pid {int(json.loads((data_dir / 'server.json').read_text())['pid'])}"
    except (OSError, ValueError, KeyError):
        return ""


def _terminate(proc: subprocess.Popen[bytes], timeout: float, port: int | None = None) -> None:
    """Terminate, wait, and kill if it does not stop."""
    if proc.poll() is not None:
        return
    proc.terminate()
    if port is not None:
        # SecantusDB's stop joins its accept thread for up to 2 s, and closing a listening
        # socket does not wake a thread blocked in accept() on Linux; one connection does.
        try:
            proc.wait(0.05)
        except subprocess.TimeoutExpired:
            _answers(HOST, port, timeout=0.2)
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
    return EmbeddedServer(data_dir=data_dir, uri=_uri(host, port), owner=False, port=port)


def _launch(data_dir: Path, executable: str, port: int, sync: bool = True) -> subprocess.Popen:
    """Start the child; its earlier log is kept as ``secantusd.log.1``."""
    db_dir = data_dir / "db"
    db_dir.mkdir(exist_ok=True)
    db_dir.chmod(0o700)
    # An empty config file of our own: without --config, secantusd-py would pick up a
    # secantusd.toml from the working directory or the user's home.
    config = data_dir / "secantusd.toml"
    if not config.exists():
        _write_private(config, "# settings for the embedded database; agent-sessions passes "
                               "its own flags\n")  # fmt: skip
    log_path = data_dir / "secantusd.log"
    if log_path.exists():
        log_path.replace(data_dir / "secantusd.log.1")  # the log of the crash before
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    cmd = [executable, "--host", HOST, "--port", str(port), "--storage-path", str(db_dir),
           "--config", str(config), "--log-level", "INFO"]  # fmt: skip
    if sync:
        cmd.append("--sync-on-commit")
    try:
        return subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop the child
            umask=0o077,  # its files are readable by this user only
        )
    finally:
        os.close(log_fd)


def _await_listening(server: EmbeddedServer, timeout: float) -> int:
    proc = server.process
    assert proc is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmbeddedServerError(f"the embedded database {server.exit_reason()}")
        match = _LISTENING.search(server.log_path.read_bytes())
        if match and _answers(HOST, int(match.group(2))):
            return int(match.group(2))
        time.sleep(0.05)
    _terminate(proc, 10.0)
    raise EmbeddedServerError(f"the embedded database did not start within {timeout:.0f}s")


def _spawn(
    data_dir: Path, executable: str, lock_fd: int, timeout: float, supervise: bool, sync: bool
) -> EmbeddedServer:
    proc = _launch(data_dir, executable, 0, sync)
    server = EmbeddedServer(data_dir=data_dir, uri="", owner=True, process=proc,
                            executable=executable, sync_on_commit=sync,
                            _lock_fd=lock_fd)  # fmt: skip
    try:
        server.port = _await_listening(server, timeout)
    except EmbeddedServerError as exc:
        raise EmbeddedServerError(f"{exc}{_orphan_hint(data_dir)}") from None
    except BaseException:  # a signal while it starts: no child outlives us
        _terminate(proc, 10.0)
        raise
    server.uri = _uri(HOST, server.port)
    _record(server)
    # A process that ends without stopping it (an unhandled error) still stops the child.
    atexit.register(server.stop)
    target = server._supervise if supervise else server._watch
    server._watcher = threading.Thread(target=target, name="secantusd-watch", daemon=True)
    server._watcher.start()
    log.info("embedded database listening on %s:%d, data in %s", HOST, server.port, data_dir)
    return server


def _record(server: EmbeddedServer) -> None:
    """Publish the database's address, and who started it when, in ``server.json``."""
    assert server.process is not None
    record = {
        "pid": os.getpid(),
        "started": _start_time(os.getpid()),
        "child_pid": server.process.pid,
        "child_started": _start_time(server.process.pid),
        "host": HOST,
        "port": server.port,
    }
    tmp = server.data_dir / "server.json.tmp"
    _write_private(tmp, json.dumps(record))
    tmp.replace(server.data_dir / "server.json")


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22);
    with the pid, it names one process for the machine's uptime. None where there is no
    /proc (then no process is ever recognised as an orphan of ours)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _own_orphan(data_dir: Path) -> int | None:
    """The pid of the child an earlier, dead starter left running on ``data_dir``, when
    it is provably that child: same pid, same start time, this program on this directory."""
    try:
        info = json.loads((data_dir / "server.json").read_text())
        pid, started = int(info["child_pid"]), info["child_started"]
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    storage = str(data_dir / "db").encode()
    if started is None or _start_time(pid) != started:
        return None  # the pid now belongs to another process
    if not any(EXECUTABLE.encode() in a for a in argv[:2]) or storage not in argv:
        return None
    return pid


def _stop_orphan(data_dir: Path) -> None:
    pid = _own_orphan(data_dir)
    if pid is None:
        return
    log.warning("stopping the embedded database (pid %d) that an earlier agent-sessions left "
                "running on %s", pid, data_dir)  # fmt: skip
    try:
        port = int(json.loads((data_dir / "server.json").read_text())["port"])
    except (OSError, ValueError, KeyError):
        port = None
    os.kill(pid, 15)
    if port is not None:
        time.sleep(0.05)
        _answers(HOST, port, timeout=0.2)  # see _terminate
    deadline = time.monotonic() + 10
    while _start_time(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    if _start_time(pid) is not None:
        os.kill(pid, 9)
        while _start_time(pid) is not None:
            time.sleep(0.05)


def _orphan_hint(data_dir: Path) -> str:
    """When a process we cannot prove is ours still holds the files: say which."""
    try:
        child = int(json.loads((data_dir / "server.json").read_text())["child_pid"])
        os.kill(child, 0)
    except (OSError, ValueError, KeyError):
        return ""
    return (
        f"\nprocess {child}, recorded as the embedded database of an earlier agent-sessions, "
        f"is still running and may hold {data_dir}; if it is, stop it (kill {child}) and "
        "start again"
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
