"""Agents: the backends that answer (``backends``, over the wire formats in ``streams``),
the runs in progress that ask them (``live``), and the use case that starts, awaits,
cancels and follows a run for GraphQL and REST alike (``runs``).

``openai`` talks to any OpenAI-compatible ``/chat/completions`` server (streaming);
``http`` posts the turn to the user's own agent service, which answers with one JSON
reply or a stream of events. Every failure is an ``AgentBackendError`` with a message fit
for the stored run.
"""

from .answers import AgentBackendError, AgentReply
from .backends import AgentRunner, AgentTurn

__all__ = ["AgentBackendError", "AgentReply", "AgentRunner", "AgentTurn"]
