"""The server's one error class: anticipated failures whose message the agent must read.

The SDK forwards only a `ToolError`'s text to the client (any other exception becomes the bare
"Error executing tool X" and a traceback in the server log). Every adapter therefore turns the
project's `SimError` (raised by the pure code for bad names, shapes, files, parallel degrees) into
`ModelComputeSimToolError` with the same message. Unexpected exceptions are bugs and are left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mcp.server.mcpserver.exceptions import ToolError

from model_compute_sim.errors import SimError


class ModelComputeSimToolError(ToolError):
    """An anticipated failure; the message names the bad value and what would be valid."""


@contextmanager
def as_tool_error() -> Iterator[None]:
    """Re-raise the project's `SimError` as `ModelComputeSimToolError`, message unchanged."""
    try:
        yield
    except SimError as exc:
        raise ModelComputeSimToolError(str(exc)) from exc
