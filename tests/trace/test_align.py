"""Template alignment of graph-replayed and compiled steps (kernel_flow_mfu trace mode with a model).

Expected FLOPs are hand arithmetic from the public configs (2 FLOPs per multiply-add, per GPU after
tensor parallelism; attention 4 * pairs * query heads * head_dim with pairs = c + 1 per decoding
sequence); kernel counts, times and grids are read from the raw events with gzip/json here.
"""

from __future__ import annotations

import gzip
import json
import re
from functools import lru_cache
from typing import Any

import pytest

from model_compute_sim.trace.extract import extract_trace_flow
from model_compute_sim.trace.flow_result import KernelFlowResult
from model_compute_sim.trace.kernel_flow import kernel_flow_mfu
from tests.trace.conftest import B200, SGLANG_DECODE, TRACEMAP, VLLM_CAPTURE, VLLM_GRAPH, real_trace

# our own name rules, independent of trace.kernels
GEMM_NAME = re.compile(r"gemm|xmma|nvjet|Cijk_|matmul_ogs|^bmm_|cutlass.*tensorop", re.I)
GEMM_HELPER = re.compile(r"splitKreduce", re.I)
ATTN_NAME = re.compile(
    r"FlashAttnFwdSm90|flash::enable_sm90_or_later|paged_attention_ll4mi_QKV|kernel_unified_attention_[23]d|fmhaSm100",
    re.I,
)
COMM_NAME = re.compile(r"nccl|cross_device_reduce|multimem_all_reduce", re.I)

CASES: dict[str, dict[str, Any]] = {
    TRACEMAP: {"model": "llama-3.1-70b", "tp": 4},
    SGLANG_DECODE: {"model": "qwen3-8b", "gpu": "mi300x"},
    VLLM_GRAPH: {"model": "gpt-oss-20b", "gpu": "mi300x", "capture": VLLM_CAPTURE},
    B200: {"model": "gpt-oss-120b", "tp": 8},
}


@lru_cache(maxsize=8)
def _raw_kernels(name: str) -> tuple[tuple[str, float, Any], ...]:
    with gzip.open(real_trace(name), "rt") as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    ks = sorted((e for e in events if e.get("cat") == "kernel"), key=lambda e: e["ts"])
    return tuple((e["name"], float(e["dur"]), e.get("args", {}).get("grid")) for e in ks)


@lru_cache(maxsize=16)
def _run(name: str, layer: int | None = None) -> KernelFlowResult:
    kw = dict(CASES[name])
    cap = kw.pop("capture", None)
    return kernel_flow_mfu(
        trace_path=str(real_trace(name)),
        capture_trace_path=str(real_trace(cap)) if cap else None,
        limit=100_000,
        layer=layer,
        **kw,
    )


@pytest.mark.parametrize("name", list(CASES))
def test_every_kernel_classified_and_flops_on_gemms(name: str) -> None:
    r = _run(name)
    raw = _raw_kernels(name)
    assert r.totals.kernels == len(raw)
    assert r.totals.kernel_time_us == pytest.approx(sum(d for _, d, _ in raw), abs=0.01)
    total = r.totals.kernel_time_us
    loose = sum(k.dur_us for k in r.kernels if k.category == "other" or not k.attributed)
    assert loose <= 0.05 * total
    gemm = [k for k in r.kernels if GEMM_NAME.search(k.name) and not GEMM_HELPER.search(k.name)]
    gemm_t = sum(k.dur_us for k in gemm)
    assert gemm_t > 0.2 * total
    assert sum(k.dur_us for k in gemm if k.flops > 0) >= 0.95 * gemm_t
    attn = [k for k in r.kernels if ATTN_NAME.search(k.name)]
    assert attn and all(k.category == "attention_core" and k.flops > 0 for k in attn)
    assert all(k.category == "communication" for k in r.kernels if COMM_NAME.search(k.name))
    assert all(k.mfu_pct is None or k.mfu_pct <= 100 for k in r.kernels)
    assert r.model == CASES[name]["model"]
    for s in r.steps or []:  # every step's FLOPs are exactly the template's
        assert s.template_flops_per_gpu is not None and s.assigned_flops == s.template_flops_per_gpu
        assert s.untied_ops == []
    assert r.totals.flops == sum(s.assigned_flops for s in r.steps or [])


def test_sglang_decode_layer_gemms_and_attention_by_hand() -> None:
    """Qwen3-8B (hidden 4096, 32 q / 8 kv heads of 128, intermediate 12288), 32 decoding sequences
    holding 32785 keys in all (`sk32785` of the step annotation)."""
    r = _run(SGLANG_DECODE, layer=3)
    t, h, kv, d, inter = 32, 4096, 8, 128, 12288
    want = [
        2 * t * h * (h + 2 * kv * d),  # q, k, v in one kernel
        2 * t * h * h,  # o_proj
        2 * t * h * 2 * inter,  # gate + up
        2 * t * inter * h,  # down
    ]
    gemms = [k.flops for k in r.kernels if k.name.startswith("Cijk_")]
    assert gemms == want
    attn = [k for k in r.kernels if ATTN_NAME.search(k.name)]
    assert [k.flops for k in attn] == [4 * 32785 * 32 * d]
    (step,) = r.steps or []
    assert step.shape_source.startswith("step annotation")
    per_layer = sum(want) + 4 * 32785 * 32 * d
    lm_head = 2 * t * h * 151936  # logits of the last token of each sequence
    assert step.template_flops_per_gpu == 36 * per_layer + lm_head


def test_tracemap_steps_shapes_from_kv_write_grid() -> None:
    """traceMap: 10 steps of Llama-3.1-70B on 4 GPUs, no step annotation; the KV-cache write grid says
    1049 new tokens in the first step and 1 in each later one."""
    raw = _raw_kernels(TRACEMAP)
    grids = [g[0] for n, _, g in raw if "reshape_and_cache" in n]
    assert len(grids) == 800 and grids[0] == 1049 and set(grids[80:]) == {1}
    r = _run(TRACEMAP)
    steps = r.steps or []
    assert len(steps) == 10
    assert steps[0].shape == [{"new_tokens": 1049, "cached_tokens": 0, "count": 1}]
    assert [s.shape for s in steps[1:]] == [
        [{"new_tokens": 1, "cached_tokens": 1049 + i, "count": 1}] for i in range(9)
    ]
    assert sum(s.kernels for s in steps) == len(raw)
    h, hd, q_heads, kv_heads, inter, vocab = 8192, 128, 64 // 4, 8 // 4, 28672 // 4, 128256
    qkv = h * (q_heads + 2 * kv_heads) * hd
    dense = qkv + q_heads * hd * h + h * 2 * inter + inter * h  # weights of one layer on one GPU

    def step_flops(tokens: int, pairs: int) -> int:
        return 80 * (2 * tokens * dense + 4 * pairs * q_heads * hd) + 2 * h * -(-vocab // 4)

    assert steps[0].template_flops_per_gpu == step_flops(1049, 1049 * 1050 // 2)
    assert steps[3].template_flops_per_gpu == step_flops(1, 1049 + 2 + 1)
    one = _run(TRACEMAP, layer=7)
    prefill_qkv = [k.flops for k in one.kernels if "tilesize128x256" in k.name]
    assert prefill_qkv == [2 * 1049 * qkv]


def test_moe_kernels_take_the_expert_gemms() -> None:
    """gpt-oss: hidden 2880, expert width 2880, top-4 of 128/32 experts; B200 TP8 prefill of 888 tokens,
    MI300X decode of 32 tokens on one GPU."""
    b = _run(B200, layer=0)
    bmm = [k.flops for k in b.kernels if k.name.startswith("bmm_")]
    routed = 888 * 4
    assert bmm == [2 * routed * 2880 * (2 * 2880 // 8), 2 * routed * (2880 // 8) * 2880]
    v = _run(VLLM_GRAPH, layer=0)
    ogs = [k.flops for k in v.kernels if k.name.startswith("_matmul_ogs")]
    assert ogs == [2 * 32 * 4 * 2880 * 2 * 2880, 2 * 32 * 4 * 2880 * 2880]


def test_shape_given_wins_and_unknown_shape_is_reported() -> None:
    path = str(real_trace(SGLANG_DECODE))
    r = kernel_flow_mfu(trace_path=path, model="qwen3-8b", gpu="mi300x", batch_size=32, seq_len=1, context_len=1000)
    (step,) = r.steps or []
    assert step.shape == [{"new_tokens": 1, "cached_tokens": 1000, "count": 32}]
    assert step.shape_source.startswith("given")
    assert step.assigned_flops == step.template_flops_per_gpu


def test_without_model_trace_mode_is_unchanged() -> None:
    r = kernel_flow_mfu(trace_path=str(real_trace(B200)))
    assert r.model is None and r.steps is None


def test_extract_trace_flow_with_model_reports_the_alignment() -> None:
    """The same alignment on extract_trace_flow: its FLOPs are the template's, per category; the FLOPs
    counted from recorded shapes stay as they were (none here: the graph replay has no shapes)."""
    path = str(real_trace(SGLANG_DECODE))
    plain = extract_trace_flow(path)
    r = extract_trace_flow(path, model="qwen3-8b")
    assert plain.alignment is None and r.totals == plain.totals
    a = r.alignment
    assert a is not None and a.model == "qwen3-8b"
    t, h, kv, d, inter = 32, 4096, 8, 128, 12288
    per_layer_mlp = 2 * t * h * 2 * inter + 2 * t * inter * h
    assert a.flops_by_category["mlp"] == 36 * per_layer_mlp
    assert a.flops_by_category["attention_core"] == 36 * 4 * 32785 * 32 * d
    assert a.flops_by_category["attention_proj"] == 36 * (2 * t * h * (h + 2 * kv * d) + 2 * t * h * h)
    assert a.assigned_flops == a.template_flops_per_gpu == sum(a.flops_by_category.values())
    assert "step annotation" in a.shapes and "17 x (1 new, 1024 cached)" in a.shapes


def test_layer_copies_go_with_the_op_they_feed() -> None:
    """SGLang Qwen3 decode: the two device copies after the QKV GEMM feed the per-head q/k norms."""
    r = _run(SGLANG_DECODE, layer=3)
    names = [k.kernel_category for k in r.kernels]
    copies = [i for i, c in enumerate(names) if c == "memcpy"]
    assert len(copies) == 2
    for i in copies:
        assert r.kernels[i].ops == r.kernels[i + 1].ops and r.kernels[i].flops == 0
