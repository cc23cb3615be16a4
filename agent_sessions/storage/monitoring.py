"""The driver's command events, handed up as plain calls, so that nothing above storage
needs the driver: ``observe(command_name, seconds, failed)`` for every command."""

from __future__ import annotations

from collections.abc import Callable

from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

# Handshakes and the driver's own upkeep are not the application's commands.
UNCOUNTED = frozenset({"hello", "ismaster", "isMaster", "endSessions"})


class CommandTimer(CommandListener):
    def __init__(self, observe: Callable[[str, float, bool], None]) -> None:
        self.observe = observe

    def started(self, event: CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: CommandSucceededEvent) -> None:
        if event.command_name not in UNCOUNTED:
            self.observe(event.command_name, event.duration_micros / 1e6, False)

    def failed(self, event: CommandFailedEvent) -> None:
        if event.command_name not in UNCOUNTED:
            self.observe(event.command_name, event.duration_micros / 1e6, True)
