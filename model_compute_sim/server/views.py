"""Compact tool results.

Every tool returns `Annotated[CallToolResult, Model]`: `outputSchema` is the model's schema, and
the result carries the data twice, as `structuredContent` and as compact JSON text (the SDK's
default text is indent=2 JSON, about 46% larger; Claude Code passes only `structuredContent` on).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel

logger = logging.getLogger(__name__)


def compact(result: BaseModel) -> CallToolResult:
    """A tool result whose text is compact JSON of exactly the structured content."""
    data = result.model_dump(mode="json", by_alias=True)
    return CallToolResult(content=[TextContent(type="text", text=orjson.dumps(data).decode())], structured_content=data)


def to_json(data: Any) -> str:
    """Compact JSON text (resources, prompts)."""
    return orjson.dumps(data).decode()
