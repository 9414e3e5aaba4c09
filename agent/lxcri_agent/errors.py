"""One exception type for the agent, so the CLI can turn any failure into one clear line."""

from __future__ import annotations


class AgentError(Exception):
    """A failure the operator of the node can act on; the message says what and where."""
