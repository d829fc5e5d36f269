"""Bad arguments read as sentences on every surface: each bad one named, with what would be valid.

The expected texts are written out here. No pydantic wording reaches an agent ("1 validation
error for simulateArguments", "[type=...", "For further information visit https://errors.pydantic.dev").
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.types import TextContent

from model_compute_sim.cli import main
from model_compute_sim.errors import SimError
from model_compute_sim.server.app import mcp
from model_compute_sim.simulator.simulate import simulate

PREFIX = "Error executing tool {}: "
SIMULATE_PARAMETERS = (
    "attention_flops, batch_size, config, config_path, context_len, detail, dp, dtype, ep, gpu, "
    "gpu_memory_utilization, kv_cache_dtype, limit, logits, measured_ms, memory_bandwidth_gb_per_s, mla_path, "
    "model, mtp_layers, offset, peak_tflops, pp, requests, scale_up_bandwidth_gb_per_s, seq_len, tp, weight_dtype"
)
PYDANTIC_NOISE = ("validation error", "[type=", "errors.pydantic.dev", "input_value", "Arguments")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _error(tool: str, args: dict[str, Any]) -> str:
    async with Client(mcp, mode="legacy") as client:
        result = await client.call_tool(tool, args)
    assert result.is_error
    block = result.content[0]
    assert isinstance(block, TextContent)
    assert block.text.startswith(PREFIX.format(tool)), block.text
    for noise in PYDANTIC_NOISE:
        assert noise not in block.text, block.text
    return block.text.removeprefix(PREFIX.format(tool))


MCP_CASES: list[tuple[str, dict[str, Any], str]] = [
    (  # a lone peak is not blamed on measured_ms (an agent playing found that)
        "simulate",
        {"model": "qwen3-8b", "peak_tflops": 100},
        "peak_tflops needs a gpu (see list_gpus), "
        "or both peak_tflops and memory_bandwidth_gb_per_s for a custom device",
    ),
    (  # several unknown names: each one its own sentence; the valid names when nothing is close
        "simulate",
        {"model": "qwen3-8b", "context_length": 4096, "num_gpus": 2},
        "unknown argument 'context_length'; did you mean 'context_len'?\n"
        f"unknown argument 'num_gpus'; valid: {SIMULATE_PARAMETERS}",
    ),
    (
        "simulate",
        {"model": "qwen3-8b", "contxt_len": 4096, "batch_sise": 2},
        "unknown argument 'contxt_len'; did you mean 'context_len'?\n"
        "unknown argument 'batch_sise'; did you mean 'batch_size'?",
    ),
    ("simulate", {"model": "qwen3-8b", "zzzz": 1}, f"unknown argument 'zzzz'; valid: {SIMULATE_PARAMETERS}"),
    (  # an unknown name and a bad value in one call: both said
        "simulate",
        {"model": "qwen3-8b", "context_length": 1, "tp": 0},
        "unknown argument 'context_length'; did you mean 'context_len'?\ntp must be >= 1, got 0",
    ),
    ("simulate", {"model": "qwen3-8b", "tp": 0}, "tp must be >= 1, got 0"),
    ("simulate", {"model": "qwen3-8b", "limit": 5000}, "limit must be <= 1000, got 5000"),
    ("simulate", {"model": "qwen3-8b", "gpu_memory_utilization": 2}, "gpu_memory_utilization must be in (0, 1], got 2"),
    ("simulate", {"model": "qwen3-8b", "measured_ms": 0}, "measured_ms must be > 0, got 0"),
    (
        "simulate",
        {"model": "qwen3-8b", "dtype": "fp33"},
        "unknown dtype 'fp33'; valid: 'bf16', 'fp16', 'fp8', 'fp4' or 'int8'",
    ),
    ("simulate", {"model": "qwen3-8b", "tp": "two"}, "tp must be an integer, got 'two'"),
    ("simulate", {"model": "qwen3-8b", "tp": 1.5}, "tp must be an integer, got 1.5"),
    ("simulate", {"model": "qwen3-8b", "measured_ms": "fast"}, "measured_ms must be a number, got 'fast'"),
    ("simulate", {"model": 8}, "model must be a string, got 8"),
    ("simulate", {"model": "qwen3-8b", "config": "x"}, "config must be a JSON object, got 'x'"),
    ("simulate", {"model": "qwen3-8b", "requests": 3}, "requests must be a list, got 3"),
    (
        "simulate",
        {"model": "qwen3-8b", "requests": [{"new_tokns": 1}, {"new_tokens": 1, "zz": 2}]},
        "unknown field 'new_tokns' in requests.0; did you mean 'new_tokens'?\n"
        "unknown field 'zz' in requests.1; valid: cached_tokens, count, new_tokens",
    ),
    ("simulate", {"model": "qwen3-8b", "requests": [{}]}, "missing field 'new_tokens' in requests.0"),
    ("list_models", {"limit": 0}, "limit must be >= 1, got 0"),
    ("list_models", {"fliter": "qwen"}, "unknown argument 'fliter'; did you mean 'filter'?"),
    ("extract_trace_flow", {}, "missing argument 'trace_path'"),
    ("compare_trace", {"trace_path": "t.json", "tolerance_pct": 101}, "tolerance_pct must be <= 100, got 101"),
    ("kernel_flow_mfu", {"kernel_ms": {"mlp": -1}}, "kernel_ms.mlp must be >= 0, got -1"),
    ("kernel_flow_mfu", {"kernel_flow": "rows"}, "kernel_flow must be a JSON object, got 'rows'"),
    (
        "kernel_flow_mfu",
        {"kernel_flow": {"kernels": [{"name": "k"}]}},
        "missing field 'dur_us' in kernel_flow.kernels.0",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "args", "expected"), MCP_CASES, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(MCP_CASES)]
)
async def test_mcp_argument_errors_are_sentences(tool: str, args: dict[str, Any], expected: str) -> None:
    assert await _error(tool, args) == expected


def test_core_names_every_unknown_keyword() -> None:
    with pytest.raises(SimError) as err:
        simulate("qwen3-8b", context_length=4096, num_gpus=2)
    lines = str(err.value).splitlines()
    assert lines[0] == "unknown argument 'context_length'; did you mean 'context_len'?"
    assert lines[1].startswith("unknown argument 'num_gpus'; valid: ")


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    return rc, [line for line in err.splitlines() if "error:" in line]


def test_cli_names_every_unknown_flag(capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = _cli(["simulate", "qwen3-8b", "--context-length", "4096", "--batch-sise", "2"], capsys)
    assert rc == 2
    assert lines == [
        "model-compute-sim simulate: error: unknown argument '--context-length'; did you mean '--context-len'?",
        "model-compute-sim simulate: error: unknown argument '--batch-sise'; did you mean '--batch-size'?",
    ]


def test_cli_lists_the_flags_when_none_is_close(capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = _cli(["list-gpus", "--zzz"], capsys)
    assert rc == 2
    assert lines == [
        "model-compute-sim list-gpus: error: unknown argument '--zzz'; valid: --filter, --format, --help, --limit, "
        "--offset"
    ]


def test_cli_choice_suggestion_comes_from_that_flag(capsys: pytest.CaptureFixture[str]) -> None:
    # 'fp32' is a --weight-dtype choice, not a --dtype one: it must not be suggested for --dtype
    rc, lines = _cli(["simulate", "qwen3-8b", "--dtype", "fp33"], capsys)
    assert rc == 2 and len(lines) == 1 and "did you mean" not in lines[0] and "'int8'" in lines[0]
    rc, lines = _cli(["simulate", "qwen3-8b", "--detail", "layer"], capsys)
    assert rc == 2 and lines[0].endswith("did you mean 'layers'?")


def test_cli_value_errors_are_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    rc, lines = _cli(["simulate", "qwen3-8b", "--requests", '[{"new_tokns": 1}]', "--tp", "0"], capsys)
    assert rc == 2
    assert lines == [
        "error: unknown field 'new_tokns' in requests.0; did you mean 'new_tokens'?",
        "error: tp must be >= 1, got 0",
    ]
