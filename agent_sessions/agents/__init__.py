"""Agent backends: the HTTP clients that ask an agent for the next answer.

``openai`` talks to any OpenAI-compatible ``/chat/completions`` server; ``http`` posts the
turn to the user's own agent service. Both take the replayed history in OpenAI's message
format and return an ``AgentReply``; every failure (HTTP error, timeout, malformed
answer) is an ``AgentBackendError`` with a message fit for the stored run.
"""

from .backends import AgentBackendError, AgentReply, AgentRunner, AgentTurn

__all__ = ["AgentBackendError", "AgentReply", "AgentRunner", "AgentTurn"]
