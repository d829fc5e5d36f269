"""Fixtures for the MCP server tests: the real SDK client, in memory, in both handshake modes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from mcp import Client
from mcp.types import CallToolResult, TextContent

from model_compute_sim.server.app import mcp


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["auto", "legacy"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[Client]:
    """`auto`: the modern 2026-07-28 direct path; `legacy`: the JSON-RPC initialize handshake (Claude Code)."""
    async with Client(mcp, mode=request.param, raise_exceptions=request.param == "auto") as c:
        yield c


def text_of(result: CallToolResult) -> str:
    assert len(result.content) == 1
    block = result.content[0]
    assert isinstance(block, TextContent)
    return block.text


def data_of(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a successful result, checked against its compact JSON text."""
    assert not result.is_error, text_of(result)
    text = text_of(result)
    assert result.structured_content is not None
    assert json.loads(text) == result.structured_content
    assert orjson.dumps(result.structured_content).decode() == text, "text must be compact JSON of the same data"
    return result.structured_content


def error_of(result: CallToolResult, tool: str) -> str:
    """The text of an anticipated error: never the SDK's bare crash message."""
    assert result.is_error
    text = text_of(result)
    assert text != f"Error executing tool {tool}", "a crash, not an anticipated error"
    return text
