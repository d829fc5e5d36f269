"""Engine steps of a synthetic vLLM-style trace without step annotations (a 2-layer Llama config): the
steps are cut at the longest GPU idle gap between one step's last attention kernel and the next step's
first; each step's shape comes from its first KV-cache write kernel's grid (grid.x = new tokens); the
KV-cache writes are tied to the attention core. Expected values come from the events written here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.trace.kernel_flow import kernel_flow_mfu

GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64"
KV_WRITE = "reshape_and_cache_flash_kernel"
# hidden 64, 4 query / 2 KV heads of 16, MLP width 96, 2 layers, vocab 128
CFG: dict[str, Any] = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "num_hidden_layers": 2,
    "vocab_size": 128,
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "hidden_act": "silu",
}


def _trace(tmp_path: Path, tokens: list[int], quant: bool = False) -> str:
    """Per step and layer: GEMM 10 us, KV write 2 us (grid [new tokens, 1, 1]), attention 20 us, GEMM 10 us.
    After step 0: a 100 us kernel, a 10 us gap, a 1 us kernel, then the 50 us gap that ends the step."""
    evs: list[dict[str, object]] = []
    corr = 0

    def kernel(name: str, ts: float, dur: float, grid: list[int] | None = None) -> None:
        nonlocal corr
        corr += 1
        launch = {"correlation": corr}
        evs.append(
            {
                "ph": "X",
                "cat": "cuda_runtime",
                "name": "cudaLaunchKernel",
                "pid": 1,
                "tid": 1,
                "ts": ts - 5,
                "dur": 2.0,
                "args": launch,
            }
        )
        args: dict[str, object] = {"correlation": corr, "stream": 7} | ({"grid": grid} if grid else {})
        evs.append({"ph": "X", "cat": "kernel", "name": name, "pid": 0, "tid": 7, "ts": ts, "dur": dur, "args": args})

    t = 100.0
    for step, toks in enumerate(tokens):
        for _ in range(2):
            kernel(GEMM, t, 10.0)
            kernel(KV_WRITE, t + 12, 2.0, [toks, 1, 1])
            kernel("flash_fwd_kernel", t + 15, 20.0)
            if quant:  # a 1 us activation quantisation between two GEMMs
                kernel("per_token_group_quant_8bit_kernel", t + 47.5, 1.0)
            kernel(GEMM, t + 37, 10.0)
            t += 49
        if step == 0:
            kernel("long_elementwise_kernel", t, 100.0)
            kernel("short_elementwise_kernel", t + 110, 1.0)
            t += 161
        else:
            t += 50
    p = tmp_path / "engine.json"
    p.write_text(json.dumps({"traceEvents": evs, "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}]}))
    return str(p)


def test_steps_cut_at_the_longest_idle_gap_and_shapes_from_the_kv_write_grid(tmp_path: Path) -> None:
    k = kernel_flow_mfu(trace_path=_trace(tmp_path, [8, 1]), config=CFG, limit=1000)
    steps = k.steps or []
    assert len(steps) == 2
    # step 0: 2 layers x (2 GEMMs + KV write + attention) and both trailing kernels (the 50 us gap
    # follows the 1 us kernel; the 10 us gap after the 100 us kernel is shorter)
    assert (steps[0].kernels, steps[0].kernel_time_us) == (10, pytest.approx(2 * (10 + 2 + 20 + 10) + 100 + 1))
    assert (steps[1].kernels, steps[1].kernel_time_us) == (8, pytest.approx(2 * (10 + 2 + 20 + 10)))
    # grid.x 8 then 1: a prefill of 8 tokens, then that sequence decoding one token after 8 cached
    assert steps[0].shape == [{"new_tokens": 8, "cached_tokens": 0, "count": 1}]
    assert steps[1].shape == [{"new_tokens": 1, "cached_tokens": 8, "count": 1}]
    kv = [r for r in k.kernels if r.name == KV_WRITE]
    assert kv and all(r.category == "attention_core" and r.ops == ["attention"] for r in kv)
    assert sum(r.count for r in kv) == 4


def test_the_shapes_line_names_at_most_four_runs(tmp_path: Path) -> None:
    # grid.x 8, 1, 5, 6, 1, 3: prefill, decode, unknown (5 tokens after a decode), prefill, decode,
    # unknown: six runs that do not merge; the line names the first four and counts the 2 steps left
    k = kernel_flow_mfu(trace_path=_trace(tmp_path, [8, 1, 5, 6, 1, 3]), config=CFG, limit=1000)
    assert len(k.steps or []) == 6
    (line,) = [a for a in k.assumptions if a.startswith("Shapes (6 steps)")]
    assert "step 3:" in line and "step 4:" not in line
    assert line.endswith("; 2 more steps in `steps`.")


def test_given_requests_set_the_shape_in_trace_mode(tmp_path: Path) -> None:
    req = [{"new_tokens": 4, "cached_tokens": 2, "count": 2}]
    k = kernel_flow_mfu(trace_path=_trace(tmp_path, [8]), config=CFG, requests=req, limit=1000)
    (step,) = k.steps or []
    assert step.shape == req and step.shape_source.startswith("given")
    # 2 sequences x 4 new tokens on 2 cached: per layer linears 2 x 8 tokens x (64x64 + 2 x 64x32 + 64x64
    # + 3 x 64x96 = 30720); causal attention pairs per sequence 3 + 4 + 5 + 6 = 18, x 2 sequences x 2
    # (QK and PV) x 4 heads x 2 x 16; the LM head on each sequence's last token 2 x 2 x 64 x 128
    per_layer = 2 * 8 * 30720 + 2 * 18 * 2 * 4 * 2 * 16
    assert step.template_flops_per_gpu == 2 * per_layer + 2 * 2 * 64 * 128  # 1,034,240


def test_a_quantisation_kernel_goes_with_the_next_gemm(tmp_path: Path) -> None:
    # per layer: GEMM, KV write, attention, GEMM (37 us), quantisation (47.5 us), then the next GEMM (49 us): the
    # quantisation is the next GEMM's input: it takes that GEMM's ops, category and layer, not the previous one's
    k = kernel_flow_mfu(trace_path=_trace(tmp_path, [8], quant=True), config=CFG, limit=1000)
    quant = [r for r in k.kernels if r.name.startswith("per_token_group_quant")]
    assert sum(r.count for r in quant) == 2
    gemms = sorted((r.ts_us, r.ops, r.category, r.layer) for r in k.kernels if r.name == GEMM)
    first, last = sorted(quant, key=lambda r: r.ts_us)
    nxt = next(g for g in gemms if g[0] > first.ts_us)  # the GEMM that starts 1.5 us later
    assert nxt[0] == first.ts_us + 1.5
    assert (first.ops, first.category, first.layer) == nxt[1:] and first.layer == 0
    # after the last GEMM of the step there is no next one: the previous one (0.5 us before) takes it
    prev = [g for g in gemms if g[0] < last.ts_us][-1]
    assert (last.ops, last.category, last.layer) == prev[1:] and last.layer == 1
