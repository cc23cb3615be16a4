"""The app as ``agent-sessions serve`` runs it (uvicorn, one worker), plus the floor
routes; started by the benchmark as a child process."""

from __future__ import annotations

import argparse

import uvicorn

from agent_sessions.app import build_app
from agent_sessions.settings import Settings

from .surfaces import FLOOR_ROUTES


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uri", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True, help="the app's own (its search index)")
    parser.add_argument("--loop", default="auto", help="uvicorn event loop: auto (uvloop), asyncio")
    parser.add_argument("--http", default="auto", help="uvicorn HTTP parser: auto (httptools), h11")
    args = parser.parse_args()
    settings = Settings(mongodb_uri=args.uri, database=args.database, data_dir=args.data_dir)
    app = build_app(settings)
    app.router.routes.extend(FLOOR_ROUTES)
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, workers=1, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
