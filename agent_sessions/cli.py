"""The ``agent-sessions`` command: ``serve``, ``keys create|list|revoke``, ``schema``, and
the data commands ``export``, ``import``, ``demo``, ``migrate``."""

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
import textwrap
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import apsw
from pydantic import ValidationError
from pymongo.errors import PyMongoError
from uvicorn.supervisors import Multiprocess

from agent_sessions import __version__, data_commands
from agent_sessions.observability import configure_logging
from agent_sessions.resolvers.validation import describe
from agent_sessions.settings import AgentConfig, Settings, load_settings, setting_sources
from agent_sessions.storage import EmbeddedServerError, KeyRecord, Storage
from agent_sessions.storage.embedded import start_embedded
from agent_sessions.storage.mongo_search import SearchBackendError

log = logging.getLogger("agent_sessions")

DESCRIPTION = (
    "Stores conversations between users and AI agents (messages, runs, the retrieved "
    "context of each answer) and serves them over GraphQL and REST."
)
WIDTH = 88


def _help(name: str) -> str:
    """A flag's help: the setting's description and its default, from ``Settings``."""
    [source] = [s for s in setting_sources() if s.name == name]
    default = f" (default {source.default})" if source.default not in (None, "none") else ""
    return source.description + default


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mongodb-uri", metavar="URI", help=_help("mongodb_uri"))
    parser.add_argument("--data-dir", type=Path, metavar="DIR", help=_help("data_dir"))
    parser.add_argument("--config", type=Path, metavar="FILE", help=_help("config"))


def _wrapped(text: str, first: int, rest: int = 6) -> list[str]:
    return textwrap.wrap(
        text, WIDTH, initial_indent=" " * first, subsequent_indent=" " * rest,
        break_on_hyphens=False,
    )  # fmt: skip


def settings_help(parser: argparse.ArgumentParser) -> str:
    """Every setting, with the flag (if ``parser`` has one), the environment variables and
    the config key that set it; generated from ``Settings``, so it cannot drift."""
    flags = set(parser._option_string_actions)  # argparse keeps no public list of them
    lines = ["settings: a flag wins over the environment, the environment over the config file", ""]
    for source in setting_sources():
        flag = "--" + source.name.replace("_", "-")
        names = [flag] if flag in flags else []
        names += source.environment
        if source.config_key is not None:
            names.append(f"config key {source.config_key}")
        default = f" (default {source.default})" if source.default is not None else ""
        lines += _wrapped(", ".join(names) + default, 2)
        lines += _wrapped(source.description, 6)
    lines += ["", "each [agents.<id>] section of the config file takes:", ""]
    for name, field in AgentConfig.model_fields.items():
        if field.description:
            lines += _wrapped(f"{name}: {field.description}", 2)
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent-sessions",
        description=DESCRIPTION,
        epilog="'agent-sessions COMMAND --help' tells more about each command.",
    )
    parser.add_argument("--version", action="version", version=f"agent-sessions {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the HTTP server (GraphQL, REST, GraphiQL, API docs)",
        description=textwrap.fill(
            "Run the HTTP server: GraphQL at /graphql (GraphiQL in a browser), the REST "
            "paths under /api, their docs at /docs, a home page at /.",
            WIDTH,
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the settings list
    )
    serve.add_argument("--host", help=_help("host"))
    serve.add_argument("--port", type=int, help=_help("port"))
    serve.add_argument(
        "--insecure-no-auth", action="store_true", default=None, help=_help("insecure_no_auth")
    )
    serve.add_argument("--workers", type=int, help="uvicorn worker processes (default 1)")
    _common(serve)
    serve.epilog = settings_help(serve)

    keys = commands.add_parser(
        "keys",
        help="create, list and revoke API keys",
        description="Manage API keys. With a server running on the embedded database of "
        "the same data directory, these reach that server's database.",
    )
    key_commands = keys.add_subparsers(dest="keys_command", metavar="COMMAND")
    create = key_commands.add_parser("create", help="create a key and print it once")
    create.add_argument("--user", required=True, help="the user id the key acts as")
    create.add_argument("--admin", action="store_true", help="the key may act for any user")
    _common(create)
    listing = key_commands.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true", help="a JSON array, for scripts")
    _common(listing)
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("id", help="the key's id, as create and list show it")
    _common(revoke)
    data_commands.add_parsers(commands, _common)

    commands.add_parser(
        "schema",
        help="print the GraphQL schema (SDL), for client code generation",
        description="Print the GraphQL schema this version serves, in SDL, with the "
        "description of every type, field and argument.",
    )
    parser.set_defaults(keys_parser=keys)
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
            # uvicorn kills a worker that does not answer its ping within the health-check
            # timeout (5 s by default) and, if the new one fails to start, stops the whole
            # server: on a saturated machine a busy worker is slow to answer, not hung.
            config = uvicorn.Config("agent_sessions.app:create_app", factory=True,
                                    workers=settings.workers, timeout_worker_healthcheck=30,
                                    **common)  # fmt: skip
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


def schema_sdl() -> str:
    """The served GraphQL schema in SDL."""
    from agent_sessions.schema import build_schema

    return build_schema().as_str()


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "keys" and args.keys_command is None:
        args.keys_parser.print_help()
        return 0
    if args.command == "schema":
        try:
            print(schema_sdl())
        except BrokenPipeError:  # agent-sessions schema | head: the reader has enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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
    except ValidationError as exc:
        print(f"agent-sessions: invalid settings: {describe(exc, Settings)}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as exc:
        print(f"agent-sessions: {exc}", file=sys.stderr)
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
    except PyMongoError as exc:  # a command's database that does not answer, or refuses
        reason = str(exc).split(" (configured timeouts", 1)[0].split(", Timeout:", 1)[0]
        print(f"agent-sessions: the database failed: {reason[:300]}", file=sys.stderr)
        return 1
    except OSError as exc:  # a data directory that cannot be used (a file, no permission)
        print(f"agent-sessions: {exc.strerror or exc}: {exc.filename}", file=sys.stderr)
        return 1
    except apsw.Error as exc:  # the search index file of the data directory
        print(f"agent-sessions: the search index failed: {exc}", file=sys.stderr)
        return 1
    except SearchBackendError as exc:
        print(f"agent-sessions: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
