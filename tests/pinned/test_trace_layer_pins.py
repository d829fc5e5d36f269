"""Per-layer FLOPs of a real trace, against a closed form: kernels and ops take the decoder layer of the
module scope they run in, however deep (attention and MLP submodules inside `Qwen2DecoderLayer_N`).

The H100 Qwen1.5-0.5B-Chat trace (HF transformers, SDPA) runs 16 sequences of 559 tokens (its ops' own
shapes, e.g. q_proj `aten::linear` [[16, 559, 1024], [1024, 1024], [1024]]) through 24 identical layers:
hidden 1024, 16 heads of 64 (no GQA), MLP width 2816.
"""

from __future__ import annotations

from model_compute_sim.trace.extract import extract_trace_flow
from tests.fixture_paths import shared_or_skip

H100_HF = "fixtures/traces/AMD-AGI_TraceLens__h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"


def test_every_decoder_layer_carries_its_own_flops() -> None:
    b, s, h, i = 16, 559, 1024, 2816
    linear = 2 * b * s * (4 * h * h + 3 * h * i)  # q, k, v, o and gate, up, down
    attention = 2 * b * (s * (s + 1) // 2) * 16 * (64 + 64)  # causal SDPA, 16 heads
    r = extract_trace_flow(str(shared_or_skip(H100_HF, "real-trace fixture")), detail="layers")
    assert r.layers is not None
    by_layer = {row.layer: row.flops for row in r.layers}
    assert {k: v for k, v in by_layer.items() if k is not None} == {n: linear + attention for n in range(24)}
    assert by_layer.get(None, 0) < 1e-6 * r.totals.flops  # the rest (outside every layer) is tiny


def test_layer_rows_share_out_the_raw_kernel_time() -> None:
    import gzip
    import json

    path = shared_or_skip(H100_HF, "real-trace fixture")
    with gzip.open(path, "rt") as f:
        events = json.load(f)["traceEvents"]
    # the trace's own kernel time, read without the project's parser: every complete `kernel` event
    raw_us = sum(e["dur"] for e in events if e.get("ph") == "X" and e.get("cat") == "kernel")
    r = extract_trace_flow(str(path), detail="layers")
    assert r.layers is not None
    per_layer = [row.gpu_time_us for row in r.layers]
    # every kernel belongs to one layer row (or the row of kernels outside the layers); rows round to 1 ns
    assert abs(sum(per_layer) - raw_us) <= 0.0005 * len(per_layer) + 1e-6 * raw_us
    layers = [row.gpu_time_us for row in r.layers if row.layer is not None]
    assert len(layers) == 24 and min(layers) > 0.5 * max(layers)  # 24 identical layers take similar time
