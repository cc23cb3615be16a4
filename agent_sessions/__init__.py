"""agent-sessions: stores conversations between users and AI agents and serves them over
GraphQL and REST. ``agent_sessions.Client`` / ``AsyncClient`` are its Python client."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("agent-sessions")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0+unknown"

if TYPE_CHECKING:
    from .client import AgentSessionsError, AsyncClient, Client

__all__ = ["AgentSessionsError", "AsyncClient", "Client", "__version__"]

_CLIENT = frozenset({"AgentSessionsError", "AsyncClient", "Client"})


def __getattr__(name: str) -> Any:
    # Loaded on first use, so the server (and `import agent_sessions`) never pays for the
    # client's imports.
    if name in _CLIENT:
        from . import client

        return getattr(client, name)
    raise AttributeError(f"module 'agent_sessions' has no attribute {name!r}")
