"""The two surfaces of one request: MCP tool parameters and CLI flags agree; misspellings are refused.

Expected values are written out here (parameter names, messages), not read back from the code.
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import TextContent

from model_compute_sim import cli
from model_compute_sim.cli import build_parser, main
from model_compute_sim.errors import SimError
from model_compute_sim.server.app import mcp
from model_compute_sim.simulator.simulate import simulate

DATA = Path(__file__).resolve().parent / "data" / "traces"
TRACE = str(DATA / "cpu_llama.json.gz")
CLI_ONLY = {"format"}  # CLI output format (MCP answers JSON)
SIMULATE_SHORTCUT = {"kernel_flow", "kernel_ms", "layer"}  # `simulate --kernel-ms ...` runs kernel-flow


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _flags(command: str) -> dict[str, argparse.Action]:
    parser = build_parser().commands[command]
    return {a.dest: a for a in parser._actions if a.option_strings and a.dest not in ("help",)}


async def _tools() -> dict[str, Any]:
    async with Client(mcp) as client:
        return {t.name: t for t in (await client.list_tools()).tools}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "command"),
    [("simulate", "simulate"), ("compare_trace", "compare-trace"), ("kernel_flow_mfu", "kernel-flow")],
)
async def test_tool_parameters_and_cli_flags_are_the_same(tool: str, command: str) -> None:
    props = (await _tools())[tool].input_schema["properties"]
    flags = _flags(command)
    extra = CLI_ONLY | (SIMULATE_SHORTCUT if command == "simulate" else set())
    assert set(props) == set(flags) - extra
    for name, prop in props.items():
        action = flags[name]
        assert action.option_strings[0] == "--" + name.replace("_", "-"), name
        if "enum" in prop:
            assert list(action.choices or []) == prop["enum"], name
        if "default" in prop:  # the CLI leaves a flag out and the request fills the same default
            assert f"(default: {prop['default']})" in (action.help or ""), name


@pytest.mark.anyio
async def test_every_parameter_of_simulate_is_offered() -> None:
    props = (await _tools())["simulate"].input_schema["properties"]
    expected = {
        "model", "config", "config_path", "batch_size", "seq_len", "context_len", "requests", "tp", "dp", "ep",
        "pp", "dtype", "kv_cache_dtype", "weight_dtype", "attention_flops", "mla_path", "logits", "gpu",
        "peak_tflops", "memory_bandwidth_gb_per_s", "scale_up_bandwidth_gb_per_s", "gpu_memory_utilization",
        "measured_ms", "limit", "offset", "detail", "mtp_layers",
    }  # fmt: skip
    assert set(props) == expected


@pytest.mark.anyio
async def test_tools_list_is_small_and_keeps_output_schemas() -> None:
    async with Client(mcp) as client:
        listed = await client.list_tools()
    answer = json.dumps(listed.model_dump(mode="json", by_alias=True, exclude_none=True), separators=(",", ":"))
    assert len(answer) < 40_000, len(answer)
    for tool in listed.tools:
        assert tool.output_schema is not None and tool.output_schema["properties"], tool.name


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("tool", "args", "message"),
    [
        (
            "simulate",
            {"model": "qwen3-8b", "context_length": 4096, "num_gpus": 2},
            "unknown argument 'context_length'; did you mean 'context_len'?",
        ),
        ("list_models", {"fliter": "qwen"}, "unknown argument 'fliter'; did you mean 'filter'?"),
        ("extract_trace_flow", {"trace_path": TRACE, "stepp": 1}, "unknown argument 'stepp'; did you mean 'step'?"),
        ("compare_trace", {"trace_path": TRACE, "modle": "x"}, "unknown argument 'modle'; did you mean 'model'?"),
        ("kernel_flow_mfu", {"kernel_ms": {"mlp": 1.0}, "gpus": "h100"}, "did you mean 'gpu'?"),
    ],
)
async def test_unknown_mcp_arguments_are_tool_errors_with_a_suggestion(
    tool: str, args: dict[str, Any], message: str
) -> None:
    async with Client(mcp, mode="legacy") as client:
        result = await client.call_tool(tool, args)
    assert result.is_error
    block = result.content[0]
    assert isinstance(block, TextContent) and message in block.text


def test_core_keywords_are_checked_too() -> None:
    with pytest.raises(SimError, match="unknown argument 'context_length'; did you mean 'context_len'"):
        simulate("qwen3-8b", context_length=4096)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = int(e.code or 0)
    out, err = capsys.readouterr()
    return rc, out, err


BAD_INPUTS = [
    ["simulate", "qwen3-8b", "--context-length", "4096"],
    ["simulate", "qwen3-8b", "--tp", "two"],
    ["simulate", "qwen3-8b", "--tp", "3"],
    ["simulate", "qwen3-8b", "--limit", "0"],
    ["simulate", "qwen3-8b", "--limit", "5000"],
    ["simulate", "qwen3-8b", "--detail", "everything"],
    ["simulate", "qwen3-8b", "--requests", "[{"],
    ["simulate", "qwen3-8b", "--requests", '[{"new_tokens": 0}]'],
    ["simulate", "qwen3-8b", "--gpu-memory-utilization", "1.5"],
    ["simulate", "qwen3-8b", "--kernel-ms", '{"mlp": 1}', "--peak-tflops", "5"],
    ["simulate", "Qwen3-32B-Instruct"],
    ["simulate"],
    ["simulat"],
    ["extract-trace"],
    ["extract-trace", "/nonexistent.json"],
    ["extract-trace", TRACE, "--step", "x"],
    ["extract-trace", TRACE, "--limit", "0"],
    ["compare-trace", TRACE],
    ["compare-trace", TRACE, "qwen3-8b", "--tolerance-pct", "-1"],
    ["compare-trace", "/nonexistent.json", "qwen3-8b"],
    ["kernel-flow"],
    ["kernel-flow", "/nonexistent.json"],
    ["kernel-flow", "--kernel-ms", '{"mlp": 1}', "--model", "qwen3-8b"],
    ["kernel-flow", TRACE, "--step", "1.5"],
    ["list-models", "--limit", "0"],
    ["list-models", "--limit", "1001"],
    ["list-models", "--offset", "-1"],
    ["list-gpus", "a", "b"],
    ["list-gpus", "--limit", "0"],
    ["list-gpus", "--offset", "-1"],
    ["serve", "--port", "3"],
]


@pytest.mark.parametrize("argv", BAD_INPUTS, ids=lambda a: " ".join(a)[:60])
def test_every_command_refuses_bad_input_in_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _run(argv, capsys)
    assert rc == 2, (rc, err)
    assert out == ""
    assert "Traceback" not in err
    assert err.strip().splitlines()[-1].split(":", 1)[0] in ("error", "model-compute-sim", *_prog_names())


def _prog_names() -> list[str]:
    return [f"model-compute-sim {c}" for c in build_parser().commands]


def test_misspelt_flags_suggest_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _run(["simulate", "qwen3-8b", "--context-length", "4096"], capsys)
    assert rc == 2 and "unknown argument '--context-length'; did you mean '--context-len'?" in err
    rc, _, err = _run(["compare-trace", TRACE, "qwen3-8b", "--tolerance", "2"], capsys)
    assert rc == 2 and "did you mean '--tolerance-pct'?" in err  # no abbreviations: one spelling per flag


@pytest.mark.parametrize("command", ["extract-trace", "kernel-flow", "compare-trace"])
def test_step_is_an_integer_on_every_trace_command(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [command, TRACE, "--step", "0", "--format", "json", *(["--gpu", "h100"] if command == "kernel-flow" else [])]
    if command == "compare-trace":
        argv.insert(2, "llama-3.1-8b")
    rc, _out, err = _run(argv, capsys)
    assert "Traceback" not in err and "internal error" not in err
    # the CPU llama trace has no step annotation: step 0 is refused by the extractor, by name
    assert rc == 2 and "step 0 not found" in err, err


def test_limit_zero_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["simulate", "qwen3-8b", "--detail", "ops", "--limit", "0"], ["extract-trace", TRACE, "--limit", "0"]):
        rc, _out, err = _run(argv, capsys)
        assert rc == 2 and "limit must be >= 1, got 0" in err


def test_kernel_flow_command_takes_every_kernel_flow_mfu_input(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["kernel-flow", "--kernel-ms", '{"mlp": 1.0}', "--model", "qwen3-8b", "--batch-size", "8"]
    rc, out, err = _run([*argv, "--gpu", "h100", "--format", "json"], capsys)
    assert rc == 0, err
    data = json.loads(out)
    assert data["gpu"] == "h100-sxm" and data["model"] == "qwen3-8b" and data["mode"] == "kernel_ms"


def test_config_flag_takes_a_path_or_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = {
        "model_type": "llama",
        "hidden_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "intermediate_size": 512,
        "vocab_size": 1000,
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    outs = []
    for argv in (
        ["simulate", "--config", str(tmp_path / "config.json")],
        ["simulate", "--config-path", str(tmp_path)],
        ["simulate", "--config", json.dumps(cfg)],
    ):
        rc, out, err = _run([*argv, "--format", "json"], capsys)
        assert rc == 0, err
        outs.append(json.loads(out)["totals"]["flops"])
    assert outs[0] == outs[1] == outs[2] > 0


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_long_cli_work_shows_progress_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import model_compute_sim.trace.extract as extract

    real = extract.extract_trace_flow

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(extract, "extract_trace_flow", slow)
    monkeypatch.setattr(cli, "PROGRESS_AFTER_S", 0.1)
    err = _Tty()
    monkeypatch.setattr("sys.stderr", err)
    assert main(["extract-trace", TRACE, "--format", "json"]) == 0
    assert "parsing trace: " in err.getvalue()


def test_no_progress_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _out, err = _run(["extract-trace", TRACE, "--format", "json"], capsys)
    assert rc == 0 and err == ""


def test_kernel_ms_takes_the_category_names_results_use() -> None:
    from model_compute_sim.trace.kernel_flow import kernel_flow_mfu

    shape: dict[str, Any] = {"model": "qwen3-8b", "batch_size": 8, "context_len": 2048, "gpu": "h100"}
    sim = simulate(**{k: v for k, v in shape.items() if k != "gpu"})
    by_name = kernel_flow_mfu(kernel_ms={"attention_proj": 1.0, "mlp": 2.0, "gemm": 3.0}, **shape, limit=10)
    rows = {r.name: r for r in by_name.kernels}
    # each result category takes exactly the simulator's FLOPs of that category (per GPU, whole forward)
    assert rows["attention_proj"].flops == pytest.approx(sim.by_category["attention_proj"].flops_per_gpu)
    assert rows["mlp"].flops == pytest.approx(sim.by_category["mlp"].flops_per_gpu)
    assert rows["attention_proj"].mfu_pct and rows["attention_proj"].mfu_pct > 0
    with pytest.raises(SimError, match="unknown kernel_ms category 'moe_expert'; did you mean 'moe_experts'"):
        kernel_flow_mfu(kernel_ms={"moe_expert": 1.0}, **shape)


def test_model_suggestions_rank_by_closeness(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = _run(["simulate", "Qwen3-32B-Instruct"], capsys)
    assert rc == 2 and "closest: ['qwen3-32b'," in err


@pytest.mark.anyio
async def test_list_gpus_filter_speaks_of_gpus() -> None:
    prop = (await _tools())["list_gpus"].input_schema["properties"]["filter"]
    assert "GPU" in prop["description"] and "model_type" not in prop["description"]


@pytest.mark.anyio
async def test_list_models_flags_are_the_tool_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    props = (await _tools())["list_models"].input_schema["properties"]
    assert set(props) == set(_flags("list-models")) - CLI_ONLY == {"filter", "limit", "offset"}
    rc, out, err = _run(["list-models", "qwen3", "--limit", "3", "--offset", "2", "--format", "json"], capsys)
    assert rc == 0, err
    page = json.loads(out)
    assert len(page["models"]) == 3 and page["offset"] == 2 and page["next_offset"] == 5
    assert page["models"][0]["name"] == page["names"][2]
    rc, out, err = _run(["list-models", "--format", "json"], capsys)
    page = json.loads(out)
    assert rc == 0 and len(page["models"]) == 40 < page["total"]  # the tool's page of 40
    rc, out, _ = _run(["list-models", "qwen3", "--limit", "3"], capsys)
    assert rc == 0 and out.rstrip().endswith("next page: --offset 3")


@pytest.mark.anyio
async def test_list_gpus_pages_like_list_models(capsys: pytest.CaptureFixture[str]) -> None:
    tools = await _tools()
    props = tools["list_gpus"].input_schema["properties"]
    assert set(props) == set(_flags("list-gpus")) - CLI_ONLY == {"filter", "limit", "offset"}
    assert tools["list_gpus"].output_schema is not None and "page" in tools["list_gpus"].output_schema["properties"]
    rc, out, err = _run(["list-gpus", "--format", "json"], capsys)
    whole = json.loads(out)
    assert rc == 0, err
    # the default page (50) holds the whole table: every row, nothing truncated
    assert whole["page"] == {
        "total": whole["total"],
        "offset": 0,
        "limit": 50,
        "returned": whole["total"],
        "truncated": False,
        "next_offset": None,
    }
    assert len(whole["gpus"]) == whole["total"] > 2
    rc, out, err = _run(["list-gpus", "--limit", "2", "--offset", "1", "--format", "json"], capsys)
    page = json.loads(out)
    assert rc == 0, err
    assert [g["name"] for g in page["gpus"]] == [g["name"] for g in whole["gpus"][1:3]]
    assert page["page"]["next_offset"] == 3 and page["page"]["truncated"] and page["total"] == whole["total"]
    rc, out, _ = _run(["list-gpus", "amd", "--limit", "2"], capsys)
    assert rc == 0 and out.rstrip().endswith("next page: --offset 2")
    async with Client(mcp) as client:
        res = await client.call_tool("list_gpus", {"filter": "nvidia", "limit": 3, "offset": 3})
    data = res.structured_content
    assert data is not None and len(data["gpus"]) == 3 and data["page"]["offset"] == 3
    assert data["page"]["next_offset"] == 6
