"""A step known only by its SGLang annotation `step[EXTEND bs=B toks=T]`: B sequences of T / B new
tokens without cache, and the simulated template of that shape (synthetic trace, closed forms).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model_compute_sim.trace.kernel_flow import kernel_flow_mfu

GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64"


def _three_gemms() -> list[dict[str, object]]:
    """Three 30 us GEMM kernels starting at 20, 120 and 220 us, each with its launch 10 us earlier."""
    evs: list[dict[str, object]] = []
    for i in range(3):  # three 30 us GEMMs starting at 20, 120, 220 us
        evs.append(
            {
                "ph": "X",
                "cat": "cuda_runtime",
                "name": "cudaLaunchKernel",
                "pid": 1,
                "tid": 1,
                "ts": 10.0 + 100 * i,
                "dur": 5.0,
                "args": {"correlation": 10 + i},
            }
        )
        evs.append(
            {
                "ph": "X",
                "cat": "kernel",
                "name": GEMM,
                "pid": 0,
                "tid": 7,
                "ts": 20.0 + 100 * i,
                "dur": 30.0,
                "args": {"correlation": 10 + i, "stream": 7},
            }
        )
    return evs


def test_sglang_extend_annotation_gives_the_steps_shape(tmp_path: Path) -> None:
    evs: list[dict[str, object]] = [
        {
            "ph": "X",
            "cat": "user_annotation",
            "name": "step[EXTEND bs=2 toks=64]",
            "pid": 1,
            "tid": 1,
            "ts": 0.0,
            "dur": 1000.0,
            "args": {},
        }
    ]
    evs += _three_gemms()
    p = tmp_path / "sglang_step.json"
    p.write_text(json.dumps({"traceEvents": evs, "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}]}))
    k = kernel_flow_mfu(trace_path=str(p), model="qwen3-8b")
    assert k.steps is not None and len(k.steps) == 1
    st = k.steps[0]
    assert st.shape == [{"new_tokens": 32, "cached_tokens": 0, "count": 2}]
    assert st.kernels == 3 and st.kernel_time_us == pytest.approx(90.0)
    # Qwen3-8B (hidden 4096, 36 layers, 32 / 8 heads of 128, width 12288, vocab 151936) on 2 x 32 tokens:
    # projections and MLP 2 x 64 x 4096 x (4096 + 1024 + 1024 + 4096 + 3 x 12288) per layer, causal attention
    # 2 x 32 x 33 / 2 pairs x 2 x 32 heads x 256, the LM head on the last token of each sequence
    linear = 36 * 2 * 64 * 4096 * (4096 + 1024 + 1024 + 4096 + 3 * 12288)
    attention = 36 * 2 * (32 * 33 // 2) * 2 * 32 * 256
    lm_head = 2 * 2 * 4096 * 151936
    assert st.template_flops_per_gpu == linear + attention + lm_head  # 892,170,403,840
    # no attention kernel to anchor the layers: nothing is tied, and the result says why
    assert st.assigned_flops == 0 and st.layers_anchored == 0
    assert any("0 attention kernels" in n for n in st.notes)


def test_a_step_without_shape_keeps_its_kernels_untied_and_says_why(tmp_path: Path) -> None:
    evs = _three_gemms()
    p = tmp_path / "no_shape.json"
    p.write_text(json.dumps({"traceEvents": evs, "deviceProperties": [{"id": 0, "name": "NVIDIA H100 80GB HBM3"}]}))
    k = kernel_flow_mfu(trace_path=str(p), model="qwen3-8b")
    assert k.steps is not None and len(k.steps) == 1
    st = k.steps[0]
    assert st.shape is None and st.template_flops_per_gpu is None and st.kernels == 3
    assert [u.reason for u in st.untied_kernels] == [
        "shape of the step unknown: give the shape (batch_size, seq_len, context_len or requests)"
    ]
    assert [(r.name, r.count, r.ts_us, r.dur_us) for r in k.kernels] == [(GEMM, 3, 20.0, 90.0)]
    # the engine step: GPU span 20 -> 250 us, of which 250 - 20 - 3 x 30 = 140 us idle
    assert k.engine_steps is not None and len(k.engine_steps) == 1
    es = k.engine_steps[0]
    assert (es.kernels, es.span_us, es.idle_us) == (3, 230.0, 140.0)
