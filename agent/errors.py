"""The agent's error tree; the CLI turns these into one line (plus a tip) at the edge."""


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""

    tip: str = ""

    def __init__(self, message: str, tip: str = "") -> None:
        super().__init__(message)
        if tip:
            self.tip = tip


class ConfigError(AgentError):
    """The configuration is invalid; the message names the key or file at fault."""
