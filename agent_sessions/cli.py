"""The ``agent-sessions`` command: ``serve``, ``keys create|list|revoke`` and the data
commands ``export``, ``import``, ``demo``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from agent_sessions import data_commands
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
    embedded = None
    if settings.mongodb_uri is None:
        # Started here rather than in the app's lifespan, so a busy or broken data
        # directory is one clear line, not a startup traceback.
        embedded = start_embedded(settings.data_dir, settings.secantusd, join=False, wait=15)
    try:
        uvicorn.run(
            build_app(settings, embedded=embedded),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level,
            lifespan="on",
        )
    finally:
        if embedded is not None:
            embedded.stop()
    return 0


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
    }
    try:
        settings = load_settings(**flags)
    except (ValidationError, FileNotFoundError, ValueError) as exc:
        print(f"agent-sessions: invalid settings: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
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
