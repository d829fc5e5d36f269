"""Trace side with a simulated template under tensor parallelism: norms stay whole on every rank.

`kernel_flow_mfu(trace_path, model, tp)` ties the trace's kernels to the simulator's per-GPU ops. Under
tp the projections shrink by tp, but the decoder's input / post-attention RMSNorms and the final norm
run on the full hidden width on every rank (conventions.md, "norms ... are replicated on every rank").
Expected bytes are the closed form of an RMSNorm over T tokens of width H in bf16: read T*H*2 B, write
T*H*2 B, weight H*2 B.
"""

from __future__ import annotations

import gzip
import json

import pytest

from model_compute_sim.trace.kernel_flow import kernel_flow_mfu
from tests.fixture_paths import shared_or_skip

SGLANG_PREFILL = "fixtures/traces/AMD-AGI_TraceLens__sglang_Qwen3-8B_prefilldecode.json.gz"


@pytest.mark.parametrize("tp", [1, 4])
def test_qwen3_8b_prefill_norm_rows_are_replicated_under_tp(tp: int) -> None:
    # SGLang step[EXTEND bs=15 toks=15360] of Qwen3-8B (hidden 4096, 36 layers); bf16
    path = shared_or_skip(SGLANG_PREFILL, "real-trace fixture")
    t, h, layers = 15360, 4096, 36
    norm = 2 * t * h * 2 + h * 2  # 251,666,432 B per layer, whatever tp
    k = kernel_flow_mfu(trace_path=str(path), model="qwen3-8b", tp=tp, limit=1000)
    by_ops: dict[str, float] = {}
    for row in k.kernels:
        if len(row.ops) == 1 and row.bytes:
            by_ops[row.ops[0]] = by_ops.get(row.ops[0], 0.0) + row.bytes
    assert by_ops["input_layernorm"] == layers * norm  # 9,059,991,552 B
    assert by_ops["post_attention_layernorm"] == layers * norm
    assert by_ops["final_norm"] == norm  # the LM head's norm runs over every token of the step
    # the MLP GEMMs, by contrast, are split: gate / up / down of width 12288 / tp, 2*T*H*I each
    assert k.by_category["mlp"].flops == layers * 3 * 2 * t * h * (12288 // tp)


def test_qwen3_8b_prefill_step_against_the_raw_kernels() -> None:
    # the step's kernels and their time are the trace's own (gzip + json here); the step annotation
    # 'execute_15360_context_15(...)' gives 15 prompts of 15360 / 15 = 1024 tokens, no cache
    path = shared_or_skip(SGLANG_PREFILL, "real-trace fixture")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        events = json.load(f)["traceEvents"]
    ks = [e for e in events if e.get("ph") == "X" and str(e.get("cat", "")).lower() == "kernel"]
    k = kernel_flow_mfu(trace_path=str(path), model="qwen3-8b", limit=5)
    assert k.steps is not None and len(k.steps) == 1
    st = k.steps[0]
    assert st.kernels == len(ks) == 527
    assert st.kernel_time_us == pytest.approx(sum(float(e["dur"]) for e in ks), abs=2e-3)
    assert st.shape == [{"new_tokens": 1024, "cached_tokens": 0, "count": 15}]
    # causal attention of 15 prompts of 1024: 36 layers x 15 x 1024 x 1025 / 2 pairs x 2 x 32 heads x (128 + 128)
    assert k.by_category["attention_core"].flops == 36 * 15 * (1024 * 1025 // 2) * 2 * 32 * 256
