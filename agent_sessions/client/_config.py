"""What both clients share: the server's address, the key, and how a call becomes a request."""

from __future__ import annotations

from typing import Any

from agent_sessions import __version__

from ._operations import Call


class ClientConfig:
    def __init__(self, base_url: str, api_key: str | None) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"User-Agent": f"agent-sessions-client/{__version__}"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"

    def url(self, call: Call[Any]) -> str:
        return self.base_url + call.path

    def headers(self, call: Call[Any]) -> dict[str, str]:
        return {**self._headers, **call.headers}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_url!r})"
