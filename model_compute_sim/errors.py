"""The project's error types.

Every anticipated failure (bad input, unknown names, unreadable files) raises a `SimError` whose
message names the bad value and what would be valid. The simulator stays free of MCP: the server
re-raises these as its `ToolError` subclass so the agent sees the text, and the CLI prints them on
one line.
"""

from __future__ import annotations


class SimError(ValueError):
    """An anticipated failure with an actionable message."""


class UnknownModelError(SimError):
    pass


class UnknownGpuError(SimError):
    pass


class ConfigError(SimError):
    """A config.json that is missing, unreadable, or has missing or nonsensical fields."""


class ShapeError(SimError):
    """Workload sizes that are zero, negative, or inconsistent."""


class ParallelismError(SimError):
    """Parallel degrees that do not divide what they must divide."""


class NotModelledError(SimError):
    """A model family the simulator does not model yet (said plainly, never guessed)."""


class TraceError(SimError):
    """A trace file that is missing, too large, truncated beyond repair, or not a trace."""
