"""The typed totals of an analysed trace (`tally`): what extract_trace_flow and compare_trace read."""

from __future__ import annotations

from model_compute_sim.trace.analysis import analyse
from model_compute_sim.trace.load import load_trace
from model_compute_sim.trace.tally import tally
from tests.trace.conftest import H100_HF, SGLANG_PREFILL, real_trace


def test_packed_attention_per_layer_from_the_step_annotation() -> None:
    a = analyse(load_trace(str(real_trace(SGLANG_PREFILL))), None, None)
    t = tally(a)
    assert tally(a) is t  # computed once, kept on the analysis
    # sgl_kernel::fwd takes packed tokens: its pairs come from `step[EXTEND bs=15 toks=15360]`
    assert t.packed_attention
    # 15 sequences x 1024 new tokens, causal: 15 * 1024 * 1025 / 2 pairs; 32 query heads of 128 (q.k and p.v)
    per_layer = 2 * (15 * 1024 * 1025 // 2) * 32 * (128 + 128)
    attention = {layer: cats.get("attention_core", 0) for layer, cats in t.layer_cat_flops.items()}
    assert attention == {i: per_layer for i in range(36)} | ({None: 0} if None in attention else {})
    assert t.attention_flops == 36 * per_layer
    assert sum(sum(c.values()) for c in t.layer_cat_flops.values()) == t.flops


def test_sdpa_attention_is_not_packed() -> None:
    # transformers' SDPA ops carry their own q/k shapes: no step-annotation pairs involved
    t = tally(analyse(load_trace(str(real_trace(H100_HF))), None, None))
    assert t.attention_flops > 0 and not t.packed_attention
