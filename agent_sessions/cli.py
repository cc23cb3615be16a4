"""The ``agent-sessions`` command: ``serve``, ``keys create|list|revoke`` and the data
commands ``export``, ``import``, ``demo``."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from uvicorn.supervisors import Multiprocess

from agent_sessions import data_commands
from agent_sessions.observability import configure_logging
from agent_sessions.settings import Settings, load_settings
from agent_sessions.storage import EmbeddedServerError, KeyRecord, Storage
from agent_sessions.storage.embedded import start_embedded

log = logging.getLogger("agent_sessions")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mongodb-uri", help="MongoDB to use; default: the embedded database")
    parser.add_argument("--data-dir", type=Path, help="where the embedded database keeps its data")
    parser.add_argument("--config", type=Path, help="TOML config file (agents, settings)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agent-sessions", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8080)")
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        default=None,
        help="allow binding a non-loopback address without AGENT_SESSIONS_ADMIN_KEY",
    )
    serve.add_argument("--workers", type=int, help="uvicorn worker processes (default 1)")
    _common(serve)

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--user", required=True, help="the user id the key acts as")
    create.add_argument("--admin", action="store_true", help="the key may act for any user")
    _common(create)
    listing = key_commands.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="a JSON array, for scripts")
    _common(listing)
    revoke = key_commands.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    _common(revoke)
    data_commands.add_parsers(commands, _common)
    return parser


def serve(settings: Settings) -> int:
    """Run the server until SIGTERM, SIGINT or SIGHUP: bind the port, start the embedded
    database (when no MongoDB URI is set) once, serve with ``settings.workers`` uvicorn
    workers, give in-flight requests ``graceful_shutdown_s`` to finish, stop the database."""
    import uvicorn

    from agent_sessions.app import build_app, is_loopback

    if not settings.auth_enabled:
        if not is_loopback(settings.host) and not settings.insecure_no_auth:
            log.error(
                "refusing to bind %s without authentication: set AGENT_SESSIONS_ADMIN_KEY, "
                "bind a loopback address, or pass --insecure-no-auth",
                settings.host,
            )
            return 2
        log.warning(
            "open mode: no AGENT_SESSIONS_ADMIN_KEY is set, so every request acts as the "
            "administrator 'local'%s",
            " (and --insecure-no-auth exposes this beyond loopback)"
            if not is_loopback(settings.host)
            else "",
        )
    stopping = _Stopping()
    stopping.install()
    # The port first: one in use is an error before the database has started.
    try:
        sock = _bind(settings.host, settings.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc.strerror)
        return 1
    embedded = None
    try:
        if settings.mongodb_uri is None:
            # Started here rather than in the app's lifespan, so a busy or broken data
            # directory is one clear line, not a startup traceback; and once, for every
            # worker.
            embedded = start_embedded(settings.data_dir, settings.secantusd, join=False, wait=15)
        common: dict[str, Any] = {
            "lifespan": "on",
            "log_config": None,  # our logging: one JSON (or text) line per request
            "access_log": False,
            "timeout_graceful_shutdown": settings.graceful_shutdown_s,
        }
        if settings.workers == 1:
            server = uvicorn.Server(uvicorn.Config(build_app(settings, embedded=embedded),
                                                   **common))  # fmt: skip
            stopping.server = server
            server.run(sockets=[sock])
            if not server.started:
                return 1  # uvicorn or the app's start-up failed, and said why
        else:
            _worker_environment(settings)
            config = uvicorn.Config("agent_sessions.app:create_app", factory=True,
                                    workers=settings.workers, **common)  # fmt: skip
            _Workers(config, sockets=[sock]).run()
    except _Stopped:
        pass  # a signal before the server was up
    finally:
        sock.close()
        if embedded is not None:
            embedded.stop()
    return 0


class _Stopped(Exception):
    """A stop signal arrived before the server was serving."""


class _Stopping:
    """Our handlers for SIGTERM, SIGINT and SIGHUP. Before the server runs they unwind
    start-up (the database started so far is stopped). While it runs, uvicorn handles
    SIGTERM and SIGINT, and SIGHUP asks it to exit the same way. After it has stopped,
    uvicorn raises the signal again, which must not end the process before the database
    is stopped: then they do nothing."""

    def __init__(self) -> None:
        self.server: Any = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self.handle)

    def handle(self, sig: int, frame: object) -> None:
        if self.server is None:
            raise _Stopped
        if sig == signal.SIGHUP:
            self.server.handle_exit(signal.SIGTERM, None)  # uvicorn knows no SIGHUP


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else starts (and shared by workers)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _worker_environment(settings: Settings) -> None:
    """Pass the settings flags gave on to the worker processes, which build their app from
    the environment; and give them one directory for their metrics."""
    given = {
        "AGENT_SESSIONS_CONFIG": settings.config,
        "AGENT_SESSIONS_DATA_DIR": settings.data_dir,
        "MONGODB_URI": settings.mongodb_uri,
        "AGENT_SESSIONS_INSECURE_NO_AUTH": "true" if settings.insecure_no_auth else None,
        "AGENT_SESSIONS_HOST": settings.host,
        "AGENT_SESSIONS_PORT": settings.port,
    }
    os.environ.update({k: str(v) for k, v in given.items() if v is not None})
    # prometheus-client reads this when a worker imports it: every worker writes its
    # figures there, and /metrics adds them up.
    metrics_dir = tempfile.mkdtemp(prefix="agent-sessions-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)


class _Workers(Multiprocess):
    """uvicorn's worker supervisor, except that SIGTERM, SIGINT and SIGHUP stop it at
    once (its own handlers queue them for a loop that looks every 0.5 s), and SIGHUP stops
    the service (a closed terminal) instead of replacing the workers."""

    def __init__(self, config: Any, sockets: list[socket.socket]) -> None:
        super().__init__(config, sockets)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._exit)

    def _exit(self, sig: int, frame: object) -> None:
        log.info("received %s, stopping the workers", signal.Signals(sig).name)
        self.should_exit.set()


async def _keys(args: argparse.Namespace, settings: Settings) -> int:
    storage = await Storage.open(
        mongodb_uri=settings.mongodb_uri,
        database=settings.database,
        data_dir=settings.data_dir,
        secantusd=settings.secantusd,
    )
    try:
        if args.keys_command == "create":
            record, key = await storage.keys.create(args.user, admin=args.admin)
            # The key alone on stdout, so KEY=$(agent-sessions keys create ...) works.
            print(
                f"id:    {record.id}\nuser:  {record.user_id}\nadmin: {str(record.admin).lower()}"
                "\n(the key, on standard output, is shown only now; it is stored hashed)",
                file=sys.stderr,
            )
            print(key)
        elif args.keys_command == "list" and args.json:
            print(json.dumps([_key_json(r) for r in await storage.keys.list()], indent=2))
        elif args.keys_command == "list":
            for r in await storage.keys.list():
                state = f"revoked {r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "active"
                used = f"{r.last_used_at:%Y-%m-%d %H:%M}" if r.last_used_at else "never"
                admin = " admin" if r.admin else ""
                print(f"{r.id}  {r.prefix}…  user={r.user_id}{admin}  last used {used}  {state}")
        elif args.keys_command == "revoke":
            if not await storage.keys.revoke(args.id):
                print(f"no active key with id {args.id}", file=sys.stderr)
                return 1
            print(f"revoked {args.id}")
        return 0
    finally:
        await storage.close()


def _key_json(r: KeyRecord) -> dict[str, object]:
    def time(t: datetime | None) -> str | None:
        if t is None:
            return None
        return t.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"  # stored UTC

    return {
        "id": r.id,
        "user_id": r.user_id,
        "admin": r.admin,
        "prefix": r.prefix,
        "created_at": time(r.created_at),
        "last_used_at": time(r.last_used_at),
        "revoked_at": time(r.revoked_at),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    flags = {
        "mongodb_uri": args.mongodb_uri,
        "data_dir": args.data_dir,
        "config": args.config,
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "insecure_no_auth": getattr(args, "insecure_no_auth", None),
        "workers": getattr(args, "workers", None),
    }
    try:
        settings = load_settings(**flags)
    except (ValidationError, FileNotFoundError, ValueError) as exc:
        print(f"agent-sessions: invalid settings: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        if args.command == "serve":
            return serve(settings)
        if args.command in data_commands.COMMANDS:
            return asyncio.run(data_commands.run(args, settings))
        return asyncio.run(_keys(args, settings))
    except EmbeddedServerError as exc:
        print(f"agent-sessions: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
