"""The per-request context: who is calling, the storage, the loaders, the look-ahead cache."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent_sessions.auth import Caller
from agent_sessions.settings import Settings
from agent_sessions.storage import Storage

from .loaders import Loaders
from .lookahead import Selection

if TYPE_CHECKING:
    from agent_sessions.agents import AgentRunner
    from agent_sessions.agents.live import LiveRuns


@dataclass(slots=True)
class Context:
    storage: Storage
    settings: Settings
    caller: Caller
    agents: AgentRunner | None = None
    runs: LiveRuns | None = None  # the runs in progress (agents.live)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    loaders: Loaders = field(init=False)
    selection: Selection = field(default_factory=Selection)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.storage, self.caller.owner)

    @property
    def owner(self) -> str | None:
        return self.caller.owner
