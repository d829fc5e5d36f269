"""The server as a subprocess over stdio, the way Claude Code launches it, and the raw wire."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, ClientSession, StdioServerParameters, stdio_client

from model_compute_sim import __version__

from .conftest import data_of, error_of

ROOT = Path(__file__).resolve().parents[2]
# The SDK passes only HOME, LOGNAME, PATH, SHELL, TERM, USER to the child: give the rest explicitly.
ENV = {"PYTHONPATH": str(ROOT), "MODEL_COMPUTE_SIM_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"}
LAUNCHES = {
    "server-module": [sys.executable, "-m", "model_compute_sim.server"],
    "cli-serve": [sys.executable, "-m", "model_compute_sim", "serve"],
}


def params(launch: str) -> StdioServerParameters:
    command, *args = LAUNCHES[launch]
    return StdioServerParameters(command=command, args=args, env=ENV, cwd=str(ROOT))


@pytest.mark.parametrize("launch", sorted(LAUNCHES))
async def test_stdio_client(launch: str) -> None:
    async with Client(params(launch)) as client:
        assert client.server_info is not None and client.server_info.name == "model-compute-sim"
        names = {t.name for t in (await client.list_tools()).tools}
        assert {
            "list_models",
            "list_gpus",
            "simulate",
            "extract_trace_flow",
            "compare_trace",
            "kernel_flow_mfu",
        } == names
        gpus = data_of(await client.call_tool("list_gpus", {"filter": "h200"}))
        assert gpus["total"] >= 1
        sim = data_of(
            await client.call_tool(
                "simulate",
                {
                    "model": "deepseek-v3",
                    "detail": "ops",
                    "gpu": "h200",
                    "tp": 8,
                    "ep": 8,
                    "batch_size": 32,
                    "context_len": 2048,
                },
            )
        )
        assert sim["page"]["returned"] > 0
        text = error_of(await client.call_tool("simulate", {"model": "qwen3-8b", "gpu": "h999"}), "simulate")
        assert "unknown gpu 'h999'" in text


async def test_stdio_legacy_session_handshake() -> None:
    async with stdio_client(params("server-module")) as (read, write), ClientSession(read, write) as session:
        init = await session.initialize()
        assert init.server_info.name == "model-compute-sim"
        assert init.server_info.version == __version__
        assert init.instructions and "list_models" in init.instructions
        result = await session.call_tool("list_models", {"filter": "deepseek"})
        assert not result.is_error and result.structured_content is not None
        assert "deepseek-v3" in result.structured_content["names"]


def _raw_session(messages: list[dict[str, Any]], launch: str = "server-module") -> tuple[list[Any], str]:
    """Send the messages, read stdout until every request is answered, then close stdin (EOF ends it)."""
    expected = sum(1 for m in messages if "id" in m)
    proc = subprocess.Popen(
        LAUNCHES[launch],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, **ENV},
    )
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    errors: list[str] = []
    drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()))  # type: ignore[union-attr]
    drain.start()
    try:
        proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        proc.stdin.flush()
        lines = []
        while sum(1 for m in lines if "id" in m) < expected:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(json.loads(line))  # raises if anything but JSON-RPC reached stdout
        proc.stdin.close()
        lines += [json.loads(line) for line in proc.stdout.read().splitlines()]
        proc.wait(timeout=30)
        drain.join(timeout=30)
    finally:
        watchdog.cancel()
        proc.kill()
    return lines, "".join(errors)


@pytest.mark.parametrize("launch", sorted(LAUNCHES))
def test_stdout_carries_only_json_rpc(launch: str) -> None:
    """Raw wire, no SDK client: every stdout line is a JSON-RPC message, logs go to stderr."""
    call = "tools/call"
    lines, stderr = _raw_session(
        [
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "raw", "version": "0"},
                },
            },
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            {"jsonrpc": "2.0", "id": 3, "method": call, "params": {"name": "list_gpus", "arguments": {}}},
            {"jsonrpc": "2.0", "id": 4, "method": call, "params": {"name": "simulate", "arguments": {"model": "x1"}}},
            {
                "jsonrpc": "2.0",
                "id": 5,
                "method": call,
                "params": {"name": "extract_trace_flow", "arguments": {"trace_path": "/no/trace.json"}},
            },
            {"jsonrpc": "2.0", "id": 6, "method": "resources/read", "params": {"uri": "gpus://specs/h999"}},
        ],
        launch,
    )
    assert sorted(m["id"] for m in lines) == [1, 2, 3, 4, 5, 6]
    by_id = {m["id"]: m for m in lines}
    assert all(m["jsonrpc"] == "2.0" for m in lines)
    assert by_id[1]["result"]["serverInfo"]["name"] == "model-compute-sim"
    assert len(by_id[2]["result"]["tools"]) == 6
    assert by_id[3]["result"]["isError"] is False and "structuredContent" in by_id[3]["result"]
    text = by_id[3]["result"]["content"][0]["text"]
    assert json.loads(text) == by_id[3]["result"]["structuredContent"] and "\n" not in text
    assert by_id[4]["result"]["isError"] is True
    assert "unknown model 'x1'" in by_id[4]["result"]["content"][0]["text"]
    assert "does not exist" in by_id[5]["result"]["content"][0]["text"]
    assert by_id[6]["error"]["code"] == -32602
    assert "unknown model 'x1'" in stderr  # anticipated errors are logged (INFO) on stderr
