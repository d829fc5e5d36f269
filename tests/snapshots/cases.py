"""The fixed calls whose outputs the snapshot test freezes: core functions, MCP tools, CLI commands.

Each case is (surface, name, call). `core` calls a package function and records its JSON
(`model_dump_json`) or `error: <class>: <message>`; `mcp` calls a tool through the in-memory client
and records is_error and the text block; `cli` runs `main(argv)` and records the exit status, stdout
and stderr. Paths of the fixtures are written as <data> / <traces> so the snapshots do not depend on
where the repository lives. Cases that need the shared trace fixtures are marked `shared`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "traces"
TRACES = REPO.parent / "shared" / "fixtures" / "traces"  # only the traces without a licence are read here
IN_REPO_TRACES = REPO / "tests" / "data" / "shared" / "fixtures" / "traces"  # licensed copies (tests/data/shared)
EXPECTED = Path(__file__).resolve().parent / "expected"

B200 = "AMD-AGI_TraceLens__b200__eager_trace.json.gz"
H100_HF = "AMD-AGI_TraceLens__h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"
SGLANG_DECODE = "AMD-AGI_TraceLens__sglang_Qwen3-8B_decode.json.gz"
SGLANG_PREFILL = "AMD-AGI_TraceLens__sglang_Qwen3-8B_prefilldecode.json.gz"
VLLM_CAPTURE = "AMD-AGI_TraceLens__vllm_decode_full__graph_capture_rank_0.1773709742341309550.pt.trace.json.gz"
VLLM_GRAPH = "AMD-AGI_TraceLens__vllm_decode_full__graph_execution.json.gz"
DEEPSEEK = "deepseek-ai_profile-data__train.json.gz"
MI250 = "facebookresearch_HolisticTraceAnalysis__mi250_minitoy_train_ROCm6_2_kineto.json.gz"
TRACEMAP = "hyukjlee_traceMap__1_h100_1000isl_10osl_32con.pt.trace.json.gz"
LEGACY = "pytorch_kineto__resnet50_num_workers_0__worker0.pt.trace.json.gz"
ALL_TRACES = {
    "b200_eager": B200,
    "h100_qwen15": H100_HF,
    "sglang_decode": SGLANG_DECODE,
    "sglang_prefill": SGLANG_PREFILL,
    "vllm_capture": VLLM_CAPTURE,
    "vllm_graph": VLLM_GRAPH,
    "deepseek_train": DEEPSEEK,
    "mi250_minitoy": MI250,
    "tracemap_h100": TRACEMAP,
    "resnet50_legacy": LEGACY,
}

QWEN15_05B: dict[str, Any] = {
    "model_type": "qwen2",
    "hidden_size": 1024,
    "intermediate_size": 2816,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "vocab_size": 151936,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
}
SMALL: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 512,
    "vocab_size": 1000,
}
MIXED = [{"new_tokens": 512, "cached_tokens": 0}, {"new_tokens": 1, "cached_tokens": 4000, "count": 32}]
KERNEL_FLOW = {
    "metadata": {"layer": 3},
    "kernels": [
        {"name": "nvjet_qkv", "dur_us": 12.0, "category": "gemm"},
        {"name": "flash_fwd", "dur_us": 20.0, "category": "attention"},
        {"name": "nvjet_o", "dur_us": 6.0, "category": "gemm"},
        {"name": "rmsnorm", "dur_us": 2.0, "category": "rmsnorm"},
        {"name": "nvjet_up", "dur_us": 30.0, "category": "gemm"},
        {"name": "mystery_kernel", "dur_us": 4.0, "category": "weird"},
    ],
}


def data(name: str) -> str:
    return str(DATA / name)


def trace(name: str) -> str:
    """The repository's copy of a trace fixture when it has one, else ../shared's."""
    p = IN_REPO_TRACES / name
    return str(p if p.is_file() else TRACES / name)


def _beside(call: Any) -> bool:
    """Whether a case reads a file that only ../shared holds."""
    return str(TRACES) in repr(call)


@dataclass(frozen=True)
class Case:
    surface: str  # core | mcp | cli
    name: str
    call: Any  # core: (function name, args, kwargs); mcp: (tool, arguments); cli: argv
    shared: bool = False  # needs ../shared/fixtures/traces (a trace without a licence, not in the repository)

    @property
    def key(self) -> str:
        return f"{self.surface}/{self.name}"

    @property
    def path(self) -> Path:
        return EXPECTED / self.surface / f"{self.name}.txt"


@dataclass
class _Builder:
    cases: list[Case] = field(default_factory=list)

    def core(self, name: str, fn: str, *args: Any, shared: bool = False, **kwargs: Any) -> None:
        self.cases.append(Case("core", name, (fn, args, kwargs), shared and _beside((args, kwargs))))

    def mcp(self, name: str, tool: str, shared: bool = False, **arguments: Any) -> None:
        self.cases.append(Case("mcp", name, (tool, arguments), shared and _beside(arguments)))

    def cli(self, name: str, *argv: str, shared: bool = False) -> None:
        self.cases.append(Case("cli", name, list(argv), shared and _beside(argv)))


def _simulate_cases(b: _Builder) -> None:
    sim: list[tuple[str, dict[str, Any]]] = [
        ("dense_decode", {"model": "qwen3-8b", "batch_size": 8, "context_len": 2048, "gpu": "h100"}),
        ("dense_prefill_layers", {"model": "llama-3.1-8b", "seq_len": 4096, "gpu": "h100", "detail": "layers"}),
        (
            "dense_tp4_ops",
            {
                "model": "llama-3.1-70b",
                "batch_size": 4,
                "context_len": 1024,
                "tp": 4,
                "gpu": "h200",
                "detail": "ops",
                "limit": 12,
                "offset": 3,
            },
        ),
        (
            "dense_measured",
            {
                "model": "qwen3-32b",
                "batch_size": 16,
                "context_len": 4096,
                "gpu": "h100",
                "measured_ms": 25.0,
                "kv_cache_dtype": "fp8",
            },
        ),
        (
            "moe_ep_dp",
            {
                "model": "qwen3-30b-a3b",
                "batch_size": 64,
                "context_len": 1000,
                "tp": 2,
                "dp": 2,
                "ep": 4,
                "gpu": "b200",
                "dtype": "fp8",
                "detail": "layers",
            },
        ),
        ("moe_mixtral_pp", {"model": "mixtral-8x7b", "seq_len": 1024, "pp": 2, "tp": 2, "gpu": "a100-sxm"}),
        (
            "mla_decode",
            {
                "model": "deepseek-v3",
                "batch_size": 32,
                "context_len": 8192,
                "tp": 8,
                "ep": 8,
                "gpu": "h200",
                "dtype": "fp8",
                "measured_ms": 40.0,
            },
        ),
        (
            "mla_prefill_expanded_ops",
            {
                "model": "deepseek-v3",
                "seq_len": 2048,
                "tp": 8,
                "gpu": "h200",
                "mla_path": "expanded",
                "detail": "ops",
                "limit": 10,
            },
        ),
        (
            "sliding_window",
            {
                "model": "gpt-oss-120b",
                "batch_size": 4,
                "seq_len": 1,
                "context_len": 100000,
                "gpu": "h100",
                "detail": "layers",
            },
        ),
        (
            "requests_mixed",
            {"model": "qwen3-8b", "requests": MIXED, "gpu": "h100", "attention_flops": "dense", "logits": "all"},
        ),
        ("config_inline", {"config": SMALL, "batch_size": 2, "seq_len": 4, "weight_dtype": "fp8"}),
        (
            "explicit_peaks",
            {
                "model": "qwen3-8b",
                "batch_size": 2,
                "context_len": 100,
                "peak_tflops": 500.0,
                "memory_bandwidth_gb_per_s": 2000.0,
                "measured_ms": 3.0,
            },
        ),
    ]
    for name, kw in sim:
        b.core(f"simulate_{name}", "simulate", **kw)
        b.mcp(f"simulate_{name}", "simulate", **kw)
    errors: list[tuple[str, dict[str, Any]]] = [
        ("unknown_model", {"model": "Qwen3-32B-Instruct"}),
        ("bad_tp", {"model": "qwen3-8b", "tp": 3}),
        ("bad_dtype", {"model": "qwen3-8b", "dtype": "fp64"}),
        ("bad_gpu", {"model": "qwen3-8b", "gpu": "h1000"}),
        ("bad_pp", {"model": "qwen3-8b", "pp": 5}),
        ("bad_ep", {"model": "qwen3-30b-a3b", "tp": 2, "ep": 3}),
        ("no_model", {}),
        ("two_sources", {"model": "qwen3-8b", "config": SMALL}),
        ("missing_config_path", {"config_path": "/nonexistent/config.json"}),
        ("measured_without_gpu", {"model": "qwen3-8b", "measured_ms": 3.0}),
        ("not_modelled", {"config": {**SMALL, "zero_expert_num": 4}}),
    ]
    for name, kw in errors:
        b.core(f"simulate_error_{name}", "simulate", **kw)
        b.mcp(f"simulate_error_{name}", "simulate", **kw)
    b.mcp("simulate_error_batch_zero", "simulate", model="qwen3-8b", batch_size=0)
    b.mcp("simulate_error_bad_detail", "simulate", model="qwen3-8b", detail="everything")
    b.mcp("simulate_unknown_argument", "simulate", model="qwen3-8b", context_length=4096, num_gpus=2)


def _catalog_cases(b: _Builder) -> None:
    b.core("list_models_all", "list_models")
    b.core("list_models_qwen3_paged", "list_models", "qwen3", 5, 5)
    b.core("list_models_none", "list_models", "no-such-model")
    b.core("list_gpus_all", "list_gpus")
    b.core("list_gpus_amd", "list_gpus", "amd")
    b.mcp("list_models_default", "list_models")
    b.mcp("list_models_deepseek", "list_models", filter="deepseek", limit=3, offset=1)
    b.mcp("list_gpus_h100", "list_gpus", filter="h100")
    b.mcp("list_gpus_all", "list_gpus")


def _trace_core_cases(b: _Builder) -> None:
    for name in ("cpu_llama", "cpu_qwen3_moe", "cpu_deepseek_v3"):
        b.core(f"extract_{name}", "extract_trace_flow", data(f"{name}.json.gz"))
    b.core("extract_cpu_llama_ops", "extract_trace_flow", data("cpu_llama.json.gz"), detail="ops", limit=8, offset=2)
    b.core("extract_cpu_llama_layers", "extract_trace_flow", data("cpu_llama.json.gz"), detail="layers", limit=3)
    for short, t in ALL_TRACES.items():
        b.core(f"extract_{short}", "extract_trace_flow", trace(t), shared=True)
    b.core(
        "extract_vllm_graph_capture",
        "extract_trace_flow",
        trace(VLLM_GRAPH),
        capture_trace_path=trace(VLLM_CAPTURE),
        detail="layers",
        shared=True,
    )
    b.core(
        "extract_sglang_prefill_ops", "extract_trace_flow", trace(SGLANG_PREFILL), detail="ops", limit=5, shared=True
    )
    b.core("compare_cpu_llama", "compare_trace", data("cpu_llama.json.gz"), "llama-3.1-8b")
    b.core(
        "compare_cpu_llama_config_layers",
        "compare_trace",
        data("cpu_llama.json.gz"),
        config=SMALL,
        detail="layers",
        limit=2,
    )
    b.core("compare_h100_qwen15", "compare_trace", trace(H100_HF), config=QWEN15_05B, shared=True)
    b.core("compare_b200_gpt_oss", "compare_trace", trace(B200), "gpt-oss-120b", tp=8, shared=True)
    b.core("compare_sglang_prefill", "compare_trace", trace(SGLANG_PREFILL), "qwen3-8b", shared=True)
    b.core(
        "compare_sglang_decode_given",
        "compare_trace",
        trace(SGLANG_DECODE),
        "qwen3-8b",
        batch_size=8,
        seq_len=1,
        context_len=1024,
        shared=True,
    )
    b.core(
        "kernel_flow_rows",
        "kernel_flow_mfu",
        kernel_flow=KERNEL_FLOW,
        model="qwen3-8b",
        batch_size=8,
        context_len=2048,
        gpu="h100",
        layer=3,
    )
    b.core(
        "kernel_ms_short_names",
        "kernel_flow_mfu",
        kernel_ms={"gemm": 4.0, "attention": 1.5, "moe": 2.0},
        model="qwen3-30b-a3b",
        batch_size=32,
        context_len=2048,
        gpu="h100",
    )
    b.core(
        "kernel_ms_category_names",
        "kernel_flow_mfu",
        kernel_ms={"attention_proj": 1.0, "attention_core": 1.5, "moe_experts": 2.0},
        model="qwen3-30b-a3b",
        batch_size=32,
        context_len=2048,
        gpu="h100",
    )
    b.core(
        "kernel_ms_mla",
        "kernel_flow_mfu",
        kernel_ms={"mla": 4.9, "moe": 1.6, "allreduce": 0.77, "gemm_fp8": 1.7, "rmsnorm": 0.23},
        model="deepseek-v3",
        batch_size=32,
        context_len=4096,
        tp=8,
        ep=8,
        gpu="h200",
        dtype="fp8",
    )
    b.core(
        "kernel_flow_trace_sglang_decode", "kernel_flow_mfu", trace_path=trace(SGLANG_DECODE), gpu="h100", shared=True
    )
    b.core("kernel_flow_trace_h100_layer", "kernel_flow_mfu", trace_path=trace(H100_HF), layer=2, limit=10, shared=True)
    b.core("kernel_flow_trace_tracemap", "kernel_flow_mfu", trace_path=trace(TRACEMAP), limit=10, shared=True)
    errs: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] = [
        ("extract_missing_file", "extract_trace_flow", ("/nonexistent/trace.json",), {}),
        ("extract_bad_step", "extract_trace_flow", (data("cpu_llama.json.gz"),), {"step": 99}),
        ("compare_no_model", "compare_trace", (data("cpu_llama.json.gz"),), {}),
        ("compare_unknown_model", "compare_trace", (data("cpu_llama.json.gz"), "llama-9"), {}),
        (
            "compare_bad_attention",
            "compare_trace",
            (data("cpu_llama.json.gz"),),
            {"config": SMALL, "attention_flops": "flash"},
        ),
        ("kernel_flow_no_source", "kernel_flow_mfu", (), {"model": "qwen3-8b", "gpu": "h100"}),
        (
            "kernel_ms_unknown_category",
            "kernel_flow_mfu",
            (),
            {"kernel_ms": {"warp_drive": 1.0}, "model": "qwen3-8b", "gpu": "h100"},
        ),
        ("kernel_ms_no_gpu", "kernel_flow_mfu", (), {"kernel_ms": {"gemm": 1.0}, "model": "qwen3-8b"}),
    ]
    for name, fn, args, kw in errs:
        b.core(f"error_{name}", fn, *args, **kw)


def _trace_mcp_cases(b: _Builder) -> None:
    b.mcp("extract_cpu_llama", "extract_trace_flow", trace_path=data("cpu_llama.json.gz"))
    b.mcp(
        "extract_cpu_qwen3_moe_ops",
        "extract_trace_flow",
        trace_path=data("cpu_qwen3_moe.json.gz"),
        detail="ops",
        limit=5,
    )
    b.mcp(
        "extract_sglang_decode_layers",
        "extract_trace_flow",
        trace_path=trace(SGLANG_DECODE),
        detail="layers",
        shared=True,
    )
    b.mcp("compare_cpu_qwen3_moe", "compare_trace", trace_path=data("cpu_qwen3_moe.json.gz"), model="qwen3-30b-a3b")
    b.mcp("compare_sglang_decode", "compare_trace", trace_path=trace(SGLANG_DECODE), model="qwen3-8b", shared=True)
    b.mcp(
        "kernel_flow_rows",
        "kernel_flow_mfu",
        kernel_flow=KERNEL_FLOW,
        model="qwen3-8b",
        batch_size=8,
        context_len=2048,
        gpu="h100",
    )
    b.mcp(
        "kernel_ms_short",
        "kernel_flow_mfu",
        kernel_ms={"gemm": 4.0, "attention": 1.5},
        model="qwen3-8b",
        batch_size=8,
        context_len=2048,
        gpu="h100",
    )
    b.mcp(
        "kernel_ms_category_names",
        "kernel_flow_mfu",
        kernel_ms={"attention_proj": 1.0, "mlp": 3.0},
        model="qwen3-8b",
        batch_size=8,
        context_len=2048,
        gpu="h100",
    )
    b.mcp("kernel_flow_trace_sglang_decode", "kernel_flow_mfu", trace_path=trace(SGLANG_DECODE), limit=5, shared=True)
    b.mcp("error_extract_missing_file", "extract_trace_flow", trace_path="/nonexistent/trace.json")
    b.mcp("error_extract_directory", "extract_trace_flow", trace_path=str(DATA))
    b.mcp("error_compare_missing_file", "compare_trace", trace_path="/nonexistent/t.json", model="qwen3-8b")
    b.mcp("error_compare_no_model", "compare_trace", trace_path=data("cpu_llama.json.gz"))
    b.mcp(
        "error_kernel_flow_two_sources",
        "kernel_flow_mfu",
        kernel_ms={"gemm": 1.0},
        trace_path=data("cpu_llama.json.gz"),
    )
    b.mcp("error_kernel_flow_none", "kernel_flow_mfu", model="qwen3-8b")
    b.mcp("error_extract_negative_step", "extract_trace_flow", trace_path=data("cpu_llama.json.gz"), step=-1)


def _cli_cases(b: _Builder) -> None:
    llama, moe = data("cpu_llama.json.gz"), data("cpu_qwen3_moe.json.gz")
    for fmt in ("text", "json"):
        b.cli(
            f"simulate_decode_{fmt}",
            "simulate",
            "qwen3-8b",
            "--batch-size",
            "8",
            "--context-len",
            "2048",
            "--gpu",
            "h100",
            "--format",
            fmt,
            "--limit",
            "8",
        )
        b.cli(
            f"simulate_mla_summary_{fmt}",
            "simulate",
            "deepseek-v3",
            "--batch-size",
            "16",
            "--context-len",
            "4096",
            "--tp",
            "8",
            "--ep",
            "8",
            "--gpu",
            "h200",
            "--dtype",
            "fp8",
            "--detail",
            "summary",
            "--measured-ms",
            "30",
            "--format",
            fmt,
        )
        b.cli(
            f"simulate_moe_layers_{fmt}",
            "simulate",
            "qwen3-30b-a3b",
            "--seq-len",
            "2048",
            "--dp",
            "2",
            "--ep",
            "2",
            "--gpu",
            "b200",
            "--detail",
            "layers",
            "--format",
            fmt,
        )
        b.cli(f"list_models_{fmt}", "list-models", "qwen3", "--format", fmt)
        b.cli(f"list_gpus_{fmt}", "list-gpus", "--format", fmt)
        b.cli(f"extract_cpu_llama_{fmt}", "extract-trace", llama, "--format", fmt, "--limit", "5")
        b.cli(f"compare_cpu_qwen3_moe_{fmt}", "compare-trace", moe, "qwen3-30b-a3b", "--format", fmt)
        b.cli(
            f"kernel_flow_sglang_decode_{fmt}",
            "kernel-flow",
            trace(SGLANG_DECODE),
            "--format",
            fmt,
            "--limit",
            "8",
            shared=True,
        )
        b.cli(
            f"simulate_kernel_ms_{fmt}",
            "simulate",
            "qwen3-8b",
            "--batch-size",
            "8",
            "--context-len",
            "2048",
            "--gpu",
            "h100",
            "--kernel-ms",
            '{"gemm": 4.0, "attention": 1.5}',
            "--format",
            fmt,
        )
    b.cli(
        "simulate_requests_ops",
        "simulate",
        "qwen3-8b",
        "--requests",
        json.dumps(MIXED),
        "--gpu",
        "h100",
        "--limit",
        "6",
        "--offset",
        "2",
    )
    b.cli(
        "simulate_kernel_flow",
        "simulate",
        "qwen3-8b",
        "--batch-size",
        "8",
        "--context-len",
        "2048",
        "--gpu",
        "h100",
        "--kernel-flow",
        json.dumps(KERNEL_FLOW),
        "--layer",
        "3",
    )
    b.cli("extract_sglang_prefill_layers", "extract-trace", trace(SGLANG_PREFILL), "--limit", "4", shared=True)
    b.cli(
        "compare_h100_qwen15_layers",
        "compare-trace",
        trace(H100_HF),
        "--config",
        str(EXPECTED.parent / "qwen15_config.json"),
        "--detail",
        "layers",
        shared=True,
    )
    errors: list[tuple[str, list[str]]] = [
        ("no_command", []),
        ("unknown_command", ["simulat"]),
        ("simulate_unknown_model", ["simulate", "Qwen3-32B-Instruct"]),
        ("simulate_no_model", ["simulate"]),
        ("simulate_bad_tp", ["simulate", "qwen3-8b", "--tp", "3"]),
        ("simulate_bad_tp_type", ["simulate", "qwen3-8b", "--tp", "two"]),
        ("simulate_bad_dtype", ["simulate", "qwen3-8b", "--dtype", "fp64"]),
        ("simulate_bad_gpu", ["simulate", "qwen3-8b", "--gpu", "h1000"]),
        ("simulate_unknown_flag", ["simulate", "qwen3-8b", "--context-length", "4096"]),
        ("simulate_bad_json", ["simulate", "qwen3-8b", "--requests", "[{"]),
        ("simulate_missing_json_file", ["simulate", "qwen3-8b", "--requests", "@/nonexistent.json"]),
        ("simulate_kernel_ms_no_gpu", ["simulate", "qwen3-8b", "--kernel-ms", '{"gemm": 1}']),
        ("simulate_limit_zero", ["simulate", "qwen3-8b", "--limit", "0"]),
        ("simulate_missing_config", ["simulate", "--config", "/nonexistent/config.json"]),
        ("extract_missing_file", ["extract-trace", "/nonexistent/trace.json"]),
        ("extract_step", ["extract-trace", llama, "--step", "0", "--limit", "3"]),
        ("extract_step_not_int", ["extract-trace", llama, "--step", "x"]),
        ("compare_no_model", ["compare-trace", llama]),
        ("compare_unknown_model", ["compare-trace", llama, "llama-9"]),
        ("compare_missing_file", ["compare-trace", "/nonexistent/t.json", "qwen3-8b"]),
        ("kernel_flow_no_trace", ["kernel-flow"]),
        ("kernel_flow_missing_file", ["kernel-flow", "/nonexistent/t.json"]),
        ("kernel_flow_step", ["kernel-flow", llama, "--step", "0", "--limit", "3"]),
    ]
    for name, argv in errors:
        b.cli(f"error_{name}", *argv)


def build_cases() -> list[Case]:
    b = _Builder()
    _simulate_cases(b)
    _catalog_cases(b)
    _trace_core_cases(b)
    _trace_mcp_cases(b)
    _cli_cases(b)
    keys = [c.key for c in b.cases]
    assert len(keys) == len(set(keys)), "duplicate snapshot names"
    return b.cases


CASES = build_cases()


def shared_present() -> bool:
    return TRACES.is_dir()


# --- running ---------------------------------------------------------------------------------------


def normalize(text: str) -> str:
    """Fixture paths as placeholders, so that snapshots do not depend on the checkout's location."""
    text = text.replace(str(IN_REPO_TRACES), "<traces>").replace(str(DATA), "<data>")
    return text.replace(str(TRACES), "<traces>").replace(str(EXPECTED.parent), "<snap>")


def _core_fn(name: str) -> Callable[..., Any]:
    if name == "simulate":
        from model_compute_sim.simulator.simulate import simulate

        return simulate
    if name == "extract_trace_flow":
        from model_compute_sim.trace.extract import extract_trace_flow

        return extract_trace_flow
    if name == "compare_trace":
        from model_compute_sim.trace.compare import compare_trace

        return compare_trace
    if name == "kernel_flow_mfu":
        from model_compute_sim.trace.kernel_flow import kernel_flow_mfu

        return kernel_flow_mfu
    from model_compute_sim import catalog

    return getattr(catalog, name)  # type: ignore[no-any-return]


def run_core(case: Case) -> str:
    from model_compute_sim.errors import SimError

    fn, args, kwargs = case.call
    try:
        return str(_core_fn(fn)(*args, **kwargs).model_dump_json()) + "\n"
    except SimError as e:
        return f"error: {type(e).__name__}: {e}\n"


def run_cli(case: Case) -> str:
    from model_compute_sim.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc: Any = main(case.call)
        except SystemExit as e:
            rc = e.code
        except Exception as e:  # a traceback: recorded by its last line only, so the snapshot stays stable
            rc = f"exception {type(e).__name__}: {e}"
            traceback.clear_frames(e.__traceback__)
    return f"exit: {rc}\n--- stdout\n{out.getvalue()}--- stderr\n{err.getvalue()}"


async def run_mcp(cases: list[Case]) -> dict[str, str]:
    """All MCP cases through one in-memory client session, plus the tools/list answer."""
    from mcp import Client
    from mcp.types import TextContent

    from model_compute_sim.server.app import mcp

    out: dict[str, str] = {}
    async with Client(mcp) as client:
        tools = await client.list_tools()
        listing = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools.tools]
        out["mcp/tools_list"] = json.dumps(listing, indent=1, sort_keys=True) + "\n"
        for case in cases:
            tool, arguments = case.call
            try:
                result = await client.call_tool(tool, arguments)
            except Exception as e:  # a protocol error: recorded, so a change shows
                out[case.key] = f"protocol error: {type(e).__name__}: {e}\n"
                continue
            texts = [b.text if isinstance(b, TextContent) else repr(b) for b in result.content]
            out[case.key] = f"is_error: {result.is_error}\n" + "\n".join(texts) + "\n"
    return out


def produce(with_shared: bool) -> dict[str, str]:
    """The output of every case (those needing shared fixtures only when `with_shared`), by key."""
    import anyio

    chosen = [c for c in CASES if with_shared or not c.shared]
    out: dict[str, str] = {}
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps usage lines to the terminal's width
    try:
        for case in chosen:
            if case.surface == "core":
                out[case.key] = run_core(case)
            elif case.surface == "cli":
                out[case.key] = run_cli(case)
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    out.update(anyio.run(run_mcp, [c for c in chosen if c.surface == "mcp"]))
    return {k: normalize(v) for k, v in out.items()}


def expected_path(key: str) -> Path:
    return EXPECTED / f"{key}.txt"
