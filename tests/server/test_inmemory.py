"""The server through the real SDK client, in memory, in both handshake modes (`client` fixture)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from mcp import Client, MCPError

from model_compute_sim import __version__
from model_compute_sim.catalog import DEFAULT_MODELS_LIMIT
from model_compute_sim.request import SURFACE_LIMIT, SimulateRequest
from model_compute_sim.server import tools
from model_compute_sim.server.app import mcp
from tests.fixture_paths import shared_path

from .conftest import data_of, error_of, text_of

TOOLS = {"list_models", "list_gpus", "simulate", "extract_trace_flow", "compare_trace", "kernel_flow_mfu"}
DATA = Path(__file__).resolve().parents[1] / "data" / "traces"
# real traces with the longest rows (kernel names, scopes); used when the shared fixtures are present
REAL_TRACES = [
    "AMD-AGI_TraceLens__b200__eager_trace.json.gz",
    "AMD-AGI_TraceLens__sglang_Qwen3-8B_prefilldecode.json.gz",
]
SMALL_TRACE = DATA / "cpu_deepseek_v3.json.gz"
KERNEL_MS: dict[str, Any] = {
    "kernel_ms": {
        "mla": 4.922,
        "moe": 1.644,
        "allreduce": 0.769,
        "gemm_fp8": 1.692,
        "gemm_bf16": 0.125,
        "rmsnorm": 0.227,
        "other": 0.437,
    },
    "model": "deepseek-v3",
    "seq_len": 8192,
    "tp": 8,
    "ep": 8,
    "gpu": "h20",
}
KERNEL_FLOW: dict[str, Any] = {
    "kernel_flow": {
        "metadata": {"layer": 3},
        "kernels": [
            {
                "name": "fused_moe_kernel",
                "simplified_name": "fused_moe",
                "dur_us": 120.0,
                "category": "moe",
                "half": "first",
                "ts": 0.0,
            },
            {"name": "nvjet_tst_128x64_64x4_1x2_h_bz_coopA_TNT", "dur_us": 30.0, "category": "gemm_bf16"},
        ],
    },
    "model": "qwen3-30b-a3b",
    "gpu": "h100",
    "batch_size": 64,
    "context_len": 2048,
}


async def test_server_identity(client: Client) -> None:
    assert client.server_info is not None
    assert client.server_info.name == "model-compute-sim"
    assert client.server_info.version == __version__
    assert client.instructions is not None and "list_models" in client.instructions


async def test_tools_are_described(client: Client) -> None:
    listed = {t.name: t for t in (await client.list_tools()).tools}
    assert set(listed) == TOOLS
    for tool in listed.values():
        assert tool.title, tool.name
        assert tool.description and len(tool.description) > 80, tool.name
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.idempotent_hint is True
        assert tool.annotations.open_world_hint is False
        assert tool.output_schema is not None and tool.output_schema.get("type") == "object", tool.name
        props = tool.input_schema["properties"]
        assert "ctx" not in props
        for name, prop in props.items():  # flat parameters, each described
            assert "description" in prop, (tool.name, name)


async def test_simulate_schema_has_the_simulator_arguments(client: Client) -> None:
    sim = {t.name: t for t in (await client.list_tools()).tools}["simulate"]
    props = sim.input_schema["properties"]
    expected = {
        "model",
        "config",
        "config_path",
        "batch_size",
        "seq_len",
        "context_len",
        "requests",
        "tp",
        "dp",
        "ep",
        "pp",
        "gpu",
        "dtype",
        "kv_cache_dtype",
        "measured_ms",
        "attention_flops",
        "mla_path",
        "logits",
        "detail",
        "limit",
        "offset",
    }
    assert expected <= set(props)
    assert props["attention_flops"]["enum"] == ["causal", "dense"]
    assert props["mla_path"]["enum"] == ["auto", "absorbed", "expanded"]
    assert props["logits"]["enum"] == ["last", "all"]
    assert props["detail"]["enum"] == ["summary", "layers", "ops"]
    assert props["detail"]["default"] == "summary"
    assert props["tp"]["minimum"] == 1 and props["context_len"]["minimum"] == 0
    assert sim.input_schema.get("required", []) == []
    assert sim.output_schema is not None and sim.output_schema["title"] == "SimResult"


def test_literal_values_match_the_simulator() -> None:
    from typing import get_args

    from model_compute_sim import request as params
    from model_compute_sim.simulator import workload

    assert get_args(params.ComputeDtype) == workload.COMPUTE_DTYPES
    assert get_args(params.KvCacheDtype) == workload.KV_DTYPES
    assert get_args(params.WeightDtype) == workload.WEIGHT_DTYPES


# --- list_models / list_gpus -------------------------------------------------------------------


async def test_list_models_pages_and_names_all(client: Client) -> None:
    from model_compute_sim.references import load_models

    first = data_of(await client.call_tool("list_models", {}))
    assert first["total"] == len(load_models())
    assert first["names"] == sorted(first["names"]) and len(first["names"]) == first["total"]
    assert len(first["models"]) == min(DEFAULT_MODELS_LIMIT, first["total"])
    seen = [m["name"] for m in first["models"]]
    page = first
    while page["truncated"]:
        page = data_of(await client.call_tool("list_models", {"offset": page["next_offset"]}))
        seen += [m["name"] for m in page["models"]]
    assert seen == first["names"]
    dsv3 = next(m for m in first["models"] if m["name"] == "deepseek-v3")
    assert dsv3["layers"] == 61 and dsv3["model_type"] == "deepseek_v3" and dsv3["modelled"]
    assert dsv3["params_total"] > 6e11 and 3e10 < dsv3["params_active_per_token"] < 4e10
    assert dsv3["hf_id"] == "deepseek-ai/DeepSeek-V3" and dsv3["source"]


@pytest.mark.parametrize(
    ("needle", "expect"),
    [
        ("QWEN3-235B", "qwen3-235b-a22b"),  # name, case-insensitive
        ("deepseek-ai/DeepSeek-V3", "deepseek-v3"),  # HF id
        ("deepseek_v3", "deepseek-r1"),  # model_type
        ("dsr1", "deepseek-r1"),  # alias
    ],
)
async def test_list_models_filter(client: Client, needle: str, expect: str) -> None:
    data = data_of(await client.call_tool("list_models", {"filter": needle}))
    assert expect in data["names"]
    assert data["total"] == len(data["names"]) < 40


async def test_list_models_filter_without_match(client: Client) -> None:
    data = data_of(await client.call_tool("list_models", {"filter": "no-such-model-xyz"}))
    assert data["total"] == 0 and data["models"] == [] and not data["truncated"]


async def test_list_gpus(client: Client) -> None:
    from model_compute_sim.references import load_gpus

    data = data_of(await client.call_tool("list_gpus", {}))
    assert data["total"] == len(load_gpus()) == len(data["gpus"])
    h100 = next(g for g in data["gpus"] if g["name"] == "h100-sxm")
    assert h100["vendor"] == "nvidia" and h100["memory_gb"] == 80
    assert h100["dense_peak_tflops"]["bf16"] == pytest.approx(989.4, rel=0.01)
    assert h100["memory_bandwidth_gb_per_s"] > 3000 and h100["interconnect"] and h100["source"]
    amd = data_of(await client.call_tool("list_gpus", {"filter": "AMD"}))
    assert amd["total"] >= 3 and {g["vendor"] for g in amd["gpus"]} == {"amd"}
    alias = data_of(await client.call_tool("list_gpus", {"filter": "H100 SXM"}))
    assert [g["name"] for g in alias["gpus"]] == ["h100-sxm"]


# --- simulate ----------------------------------------------------------------------------------


async def test_simulate_decode_mfu_and_mbu(client: Client) -> None:
    data = data_of(
        await client.call_tool(
            "simulate",
            {
                "model": "deepseek-v3",
                "batch_size": 64,
                "seq_len": 1,
                "context_len": 4096,
                "tp": 8,
                "ep": 8,
                "gpu": "h200",
                "measured_ms": 20.0,
            },
        )
    )
    assert data["workload"]["phase"] == "decode"
    assert data["parallelism"]["gpus"] == 8 and data["gpu"]["name"] == "h200-sxm"
    totals = data["totals"]
    assert 0 < totals["mfu_pct"] < 100 and 0 < totals["mbu_pct"] < 100
    assert data["layer_groups"] is None and data["page"] is None  # detail=summary by default
    assert data["by_category"]


async def test_simulate_matches_the_pure_function(client: Client) -> None:
    from model_compute_sim.simulator.simulate import simulate

    args: dict[str, Any] = {
        "model": "qwen3-8b",
        "batch_size": 4,
        "seq_len": 512,
        "tp": 2,
        "gpu": "h100",
        "attention_flops": "dense",
        "logits": "all",
        "detail": "layers",
    }
    data = data_of(await client.call_tool("simulate", args))
    assert data == simulate(**args).model_dump(mode="json")


async def test_simulate_ops_pages(client: Client) -> None:
    args: dict[str, Any] = {"model": "deepseek-v3", "gpu": "h100", "detail": "ops", "context_len": 1000}
    first = data_of(await client.call_tool("simulate", args))
    page = first["page"]
    assert page["limit"] == SURFACE_LIMIT[SimulateRequest] and page["returned"] == SURFACE_LIMIT[SimulateRequest]
    assert page["truncated"] and page["next_offset"] == SURFACE_LIMIT[SimulateRequest]
    rest = data_of(await client.call_tool("simulate", {**args, "offset": page["next_offset"]}))
    assert not rest["page"]["truncated"] and rest["page"]["next_offset"] is None
    assert page["returned"] + rest["page"]["returned"] == page["total"]
    small = data_of(await client.call_tool("simulate", {**args, "limit": 5}))
    assert small["page"]["returned"] == 5


async def test_simulate_mixed_requests(client: Client) -> None:
    data = data_of(
        await client.call_tool(
            "simulate",
            {
                "model": "llama-3.1-8b",
                "requests": [{"new_tokens": 2048}, {"new_tokens": 1, "cached_tokens": 4000, "count": 16}],
            },
        )
    )
    assert data["workload"]["phase"] == "mixed"
    assert data["workload"]["batch_size"] == 17 and data["workload"]["tokens"] == 2048 + 16


async def test_simulate_inline_config(client: Client) -> None:
    from model_compute_sim.references import find_model, to_plain

    entry = find_model("qwen3-8b")
    assert entry is not None
    data = data_of(await client.call_tool("simulate", {"config": to_plain(entry.config)}))
    assert data["model"]["layers"] == 36


# --- anticipated errors reach the client with their text ---------------------------------------

ERRORS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("simulate", {"model": "deepseek-v9"}, ["unknown model 'deepseek-v9'", "closest", "deepseek-v3"]),
    ("simulate", {"model": "qwen3-8b", "gpu": "h999"}, ["unknown gpu 'h999'", "known:", "h100-sxm"]),
    ("simulate", {"model": "qwen3-8b", "tp": 3}, ["tp=3", "valid tp: [1, 2, 4, 8, 16, 32]"]),
    ("simulate", {"model": "qwen3-8b", "pp": 5}, ["pp=5", "valid pp"]),
    ("simulate", {"model": "deepseek-v3", "tp": 8, "ep": 16}, ["ep=16", "valid ep"]),
    ("simulate", {"model": "qwen3-8b", "ep": 2}, ["ep=2", "has no MoE layers"]),
    ("simulate", {"model": "qwen3-8b", "dtype": "fp12"}, ["dtype", "'bf16', 'fp16', 'fp8', 'fp4' or 'int8'"]),
    ("simulate", {"model": "qwen3-8b", "kv_cache_dtype": "int4"}, ["kv_cache_dtype", "'fp8'"]),
    ("simulate", {"model": "qwen3-8b", "attention_flops": "sparse"}, ["attention_flops", "'causal' or 'dense'"]),
    ("simulate", {"model": "qwen3-8b", "detail": "all"}, ["detail", "'summary', 'layers' or 'ops'"]),
    ("simulate", {"model": "qwen3-8b", "batch_size": 0}, ["batch_size must be >= 1, got 0"]),
    ("simulate", {"model": "qwen3-8b", "measured_ms": -1}, ["measured_ms must be > 0, got -1"]),
    ("simulate", {"model": "qwen3-8b", "measured_ms": 5.0}, ["measured_ms needs a gpu", "list_gpus"]),
    ("simulate", {"config_path": "/no/such/config.json"}, ["/no/such/config.json", "does not exist"]),
    ("simulate", {}, ["exactly one of model", "config_path"]),
    ("simulate", {"model": "qwen3-8b", "config_path": "/x"}, ["exactly one of model"]),
    ("simulate", {"config": {"model_type": "llama"}}, ["config"]),
    ("simulate", {"model": "qwen3-8b", "requests": [{"new_tokens": 0}]}, ["requests", "new_tokens"]),
    ("list_models", {"limit": 0}, ["limit must be >= 1, got 0"]),
    (
        "extract_trace_flow",
        {"trace_path": "/no/such/trace.json.gz"},
        ["trace_path '/no/such/trace.json.gz' does not exist", ".json.gz"],
    ),
    ("extract_trace_flow", {}, ["missing argument 'trace_path'"]),
    ("compare_trace", {"trace_path": "/no/such/trace.json", "model": "qwen3-8b"}, ["does not exist"]),
    ("kernel_flow_mfu", {"trace_path": "/no/such/trace.json"}, ["trace_path '/no/such/trace.json' does not exist"]),
    ("kernel_flow_mfu", {}, ["exactly one of kernel_flow", "kernel_ms", "trace_path"]),
    (
        "kernel_flow_mfu",
        {"kernel_ms": {"moe": 1.0}, "kernel_flow": {"kernels": [{"name": "k", "dur_us": 1}]}},
        ["exactly one of"],
    ),
    (
        "kernel_flow_mfu",
        {"kernel_flow": {"kernels": [{"name": "k"}]}},
        ["missing field 'dur_us' in kernel_flow.kernels.0"],
    ),
]


@pytest.mark.parametrize(("tool", "args", "needles"), ERRORS, ids=[f"{t}-{i}" for i, (t, _, _) in enumerate(ERRORS)])
async def test_error_text_reaches_the_client(
    client: Client, tool: str, args: dict[str, Any], needles: list[str]
) -> None:
    text = error_of(await client.call_tool(tool, args), tool)
    assert text.startswith(f"Error executing tool {tool}: ")
    assert "pydantic" not in text and "validation error" not in text and "[type=" not in text, text
    for needle in needles:
        assert needle in text, (needle, text)


async def test_not_modelled_family_is_said_plainly(client: Client) -> None:
    from model_compute_sim.catalog import model_rows

    # every index entry is modelled now (a refused one would be listed with modelled=False): a config with
    # a feature that has no exact count must be refused over MCP naming the key and saying why
    assert all(r.modelled for r in model_rows())
    config = {
        "model_type": "llama", "hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "intermediate_size": 512, "vocab_size": 1000, "zero_expert_num": 4,
    }  # fmt: skip
    text = error_of(await client.call_tool("simulate", {"config": config}), "simulate")
    assert "'zero_expert_num'" in text and "not modelled" in text, text


# --- output schema: every result validates -----------------------------------------------------


async def test_every_result_validates_against_its_output_schema(client: Client) -> None:
    schemas = {t.name: t.output_schema for t in (await client.list_tools()).tools}
    calls: list[tuple[str, dict[str, Any]]] = [
        ("list_models", {}),
        ("list_models", {"filter": "kimi"}),
        ("list_gpus", {}),
        ("list_gpus", {"filter": "b200"}),
        ("simulate", {"model": "deepseek-v3"}),
        ("simulate", {"model": "deepseek-v3", "detail": "ops", "gpu": "b200", "measured_ms": 3.0, "tp": 8, "ep": 8}),
        ("simulate", {"model": "gpt-oss-120b", "detail": "layers", "seq_len": 4096, "dp": 2, "ep": 2}),
        ("simulate", {"model": "llama-3.1-70b", "pp": 4, "tp": 2, "detail": "ops", "offset": 30, "limit": 200}),
        ("extract_trace_flow", {"trace_path": str(SMALL_TRACE)}),
        ("extract_trace_flow", {"trace_path": str(SMALL_TRACE), "detail": "ops", "limit": 3, "offset": 2}),
        ("compare_trace", {"trace_path": str(SMALL_TRACE), "model": "deepseek-v3"}),
        ("kernel_flow_mfu", KERNEL_MS),
        ("kernel_flow_mfu", KERNEL_FLOW),
        ("kernel_flow_mfu", {"trace_path": str(SMALL_TRACE), "model": "deepseek-v3", "gpu": "h100"}),
        (
            "compare_trace",
            {
                "trace_path": str(SMALL_TRACE),
                "config": _expected()["deepseek_v3"]["config"],
                "detail": "layers",
                "limit": 2,
            },
        ),
    ]
    for name, args in calls:
        result = await client.call_tool(name, args)  # the client itself validates (RuntimeError on mismatch)
        data = data_of(result)
        jsonschema.validate(data, schemas[name])


# --- result sizes ------------------------------------------------------------------------------

MAX_RESULT_CHARS = 40_000  # about 10,000 tokens: Claude Code warns above that


async def _largest(client: Client, calls: list[tuple[str, dict[str, Any]]]) -> tuple[int, str]:
    sizes = []
    for name, args in calls:
        result = await client.call_tool(name, args)
        assert not result.is_error, (name, args, text_of(result))
        sizes.append((len(text_of(result)), f"{name}({args})"))
    return max(sizes)


@pytest.mark.parametrize("detail", ["summary", "layers", "ops"])
async def test_simulate_default_results_are_small_for_every_model(detail: str) -> None:
    from model_compute_sim.catalog import model_rows

    models = [r.name for r in model_rows() if r.modelled]
    async with Client(mcp) as client:
        size, call = await _largest(
            client, [("simulate", {"model": m, "detail": detail, "gpu": "h100", "context_len": 8192}) for m in models]
        )
    print(f"largest simulate detail={detail}: {size} chars, {call}")
    assert size < MAX_RESULT_CHARS, call


async def test_listing_results_are_small() -> None:
    async with Client(mcp) as client:
        for name in ("list_models", "list_gpus"):
            size, call = await _largest(client, [(name, {})])
            print(f"{call}: {size} chars")
            assert size < MAX_RESULT_CHARS


async def test_trace_tool_default_results_are_small() -> None:
    traces = sorted(DATA.glob("*.json.gz")) + [p for n in REAL_TRACES if (p := shared_path(f"fixtures/traces/{n}"))]
    async with Client(mcp) as client:
        size, call = await _largest(
            client,
            [
                ("extract_trace_flow", {"trace_path": str(p), "detail": d})
                for p in traces
                for d in ("summary", "layers", "ops")
            ],
        )
        print(f"largest extract_trace_flow: {size} chars, {call}")
        assert size < MAX_RESULT_CHARS
        size, call = await _largest(
            client,
            [
                ("compare_trace", {"trace_path": str(p), "model": "deepseek-v3", "detail": d})
                for p in traces
                for d in ("summary", "layers")
            ],
        )
        print(f"largest compare_trace: {size} chars, {call}")
        assert size < MAX_RESULT_CHARS
        size, call = await _largest(
            client,
            [("kernel_flow_mfu", {"trace_path": str(p), "model": "qwen3-8b", "gpu": "h100"}) for p in traces]
            + [("kernel_flow_mfu", KERNEL_MS), ("kernel_flow_mfu", KERNEL_FLOW)],
        )
        print(f"largest kernel_flow_mfu: {size} chars, {call}")
        assert size < MAX_RESULT_CHARS


# --- trace tools: progress, and the event loop stays free while a trace is parsed ----------------


def _expected() -> dict[str, Any]:
    """The configs the small CPU traces were recorded with (tests/data/traces/expected.json)."""
    import json

    data: dict[str, Any] = json.loads((DATA / "expected.json").read_text())
    return data


@pytest.mark.parametrize("family", ["deepseek_v3", "llama", "qwen3_moe"])
async def test_compare_trace_matches_its_own_config(client: Client, family: str) -> None:
    case = _expected()[family]
    data = data_of(
        await client.call_tool("compare_trace", {"trace_path": str(DATA / case["file"]), "config": case["config"]})
    )
    assert data["verdict"] == "match", data["differing_categories"]
    assert data["shape"]["batch_size"] == case["batch"] and data["shape"]["seq_len"] == case["seq_len"]
    assert data["trace_flops"] == case["total_flops"]


@pytest.mark.parametrize("args", [KERNEL_MS, KERNEL_FLOW], ids=["kernel_ms", "kernel_flow"])
async def test_kernel_flow_mfu_conserves_time(client: Client, args: dict[str, Any]) -> None:
    data = data_of(await client.call_tool("kernel_flow_mfu", args))
    totals = data["totals"]
    assert data["mode"] == next(k for k in ("kernel_ms", "kernel_flow") if k in args)
    assert totals["kernel_time_us"] == pytest.approx(totals["attributed_time_us"] + totals["unattributed_time_us"])
    assert data["headroom"] and data["kernels"] and data["by_category"]


async def test_kernel_flow_mfu_from_a_trace_reports_progress(client: Client) -> None:
    seen: list[str | None] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(message)

    data = data_of(
        await client.call_tool(
            "kernel_flow_mfu",
            {"trace_path": str(SMALL_TRACE), "model": "deepseek-v3", "gpu": "h100"},
            progress_callback=on_progress,
        )
    )
    assert data["mode"] == "trace" and seen and "kernel MFU" in str(seen[0])


async def test_compare_trace_flags_the_wrong_model(client: Client) -> None:
    data = data_of(
        await client.call_tool("compare_trace", {"trace_path": str(DATA / "cpu_llama.json.gz"), "model": "deepseek-v3"})
    )
    assert data["verdict"] == "mismatch" and data["differing_categories"]


async def test_extract_trace_flow_reports_progress(client: Client) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    data = data_of(
        await client.call_tool("extract_trace_flow", {"trace_path": str(SMALL_TRACE)}, progress_callback=on_progress)
    )
    assert data["totals"]["flops"] > 0 and data["trace"]["path"].endswith("cpu_deepseek_v3.json.gz")
    assert seen and seen[0][2] is not None and "parsing trace" in seen[0][2]


async def test_other_calls_are_answered_while_a_trace_is_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    import model_compute_sim.trace.extract as extract_module

    real = extract_module.extract_trace_flow

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(1.5)  # CPU-bound parsing stand-in: holds its worker thread, not the event loop
        return real(*args, **kwargs)

    monkeypatch.setattr(extract_module, "extract_trace_flow", slow)
    monkeypatch.setattr(tools, "PROGRESS_INTERVAL_S", 0.2)
    done: list[str] = []
    ticks: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        ticks.append(progress)

    async with Client(mcp, mode="legacy") as client:

        async def parse() -> None:
            await client.call_tool(
                "extract_trace_flow", {"trace_path": str(SMALL_TRACE)}, progress_callback=on_progress
            )
            done.append("extract_trace_flow")

        async def quick() -> None:
            await anyio.sleep(0.2)
            for _ in range(3):
                data_of(await client.call_tool("list_gpus", {}))
            done.append("list_gpus")

        async with anyio.create_task_group() as tg:
            tg.start_soon(parse)
            tg.start_soon(quick)
    assert done == ["list_gpus", "extract_trace_flow"]
    assert len(ticks) >= 3 and ticks == sorted(ticks)


# --- resources and prompts ---------------------------------------------------------------------


async def test_resources(client: Client) -> None:
    import json

    static = {str(r.uri) for r in (await client.list_resources()).resources}
    assert static == {"gpus://specs", "models://index"}
    templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
    assert templates == {"gpus://specs/{name}", "models://specs/{name}"}

    table = json.loads((await client.read_resource("gpus://specs")).contents[0].text)  # type: ignore[union-attr]
    assert any(g["name"] == "mi300x" for g in table)
    one = (await client.read_resource("gpus://specs/h100")).contents[0]
    assert one.mime_type == "application/json"
    assert json.loads(one.text)["name"] == "h100-sxm"  # type: ignore[union-attr]
    index = json.loads((await client.read_resource("models://index")).contents[0].text)  # type: ignore[union-attr]
    assert "deepseek-v3" in {m["name"] for m in index}
    spec = json.loads((await client.read_resource("models://specs/deepseek-v3")).contents[0].text)  # type: ignore[union-attr]
    assert spec["spec"]["num_layers"] == 61
    assert sum(g["count"] for g in spec["spec"]["layer_groups"]) == 61
    assert spec["config"]["kv_lora_rank"] == 512

    with pytest.raises(MCPError) as err:
        await client.read_resource("gpus://specs/h999")
    assert err.value.error.code == -32602 and "unknown gpu 'h999'" in err.value.error.message
    with pytest.raises(MCPError) as err:
        await client.read_resource("models://specs/deepseek-v9")
    assert "closest" in err.value.error.message and "deepseek-v3" in err.value.error.message


async def test_prompts(client: Client) -> None:
    listed = {p.name: p for p in (await client.list_prompts()).prompts}
    assert set(listed) == {"find_trace_bottleneck", "parallelism_what_if"}
    assert all(p.title for p in listed.values())
    got = await client.get_prompt("find_trace_bottleneck", {"trace_path": "/tmp/t.json.gz", "gpu": "h100"})
    body = got.messages[0].content.text  # type: ignore[union-attr]
    assert got.messages[0].role == "user"
    for tool in ("extract_trace_flow", "compare_trace", "kernel_flow_mfu", "/tmp/t.json.gz"):
        assert tool in body
    got = await client.get_prompt("parallelism_what_if", {"model": "deepseek-v3", "gpu": "h200", "tpot_ms": "50"})
    body = got.messages[0].content.text  # type: ignore[union-attr]
    assert "TPOT <= 50 ms" in body and "simulate" in body
