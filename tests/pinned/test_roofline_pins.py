"""Per-op FLOPs, bytes, roofline times, bounds, totals and MFU/MBU against closed forms.

Device figures are the vendor's (NVIDIA H100 SXM datasheet): dense BF16 989.4 TFLOP/s (1,979 with
sparsity / 2), dense FP8 1,979 TFLOP/s (3,958 with sparsity / 2), HBM3 3.35 TB/s, NVLink 900 GB/s both directions =
450 GB/s one way. Times are compared to 0.01 us (what a time can mean).
"""

from __future__ import annotations

from typing import Any

import pytest

from model_compute_sim.simulator.simulate import simulate

BF16_PEAK = 989.4e12
FP8_PEAK = 1979e12
HBM = 3350e9
NVLINK = 450e9


def us(x: float) -> Any:
    return pytest.approx(x, rel=1e-6, abs=0.0051)


def rows_of(r: Any) -> dict[str, Any]:
    assert r.layer_groups is not None and len(r.layer_groups) == 1
    ops = r.layer_groups[0].ops
    assert ops is not None
    return {o.name: o for o in ops}


# Llama-3.1-8B (hidden H=4096, 32 heads / 8 KV heads of 128, width 14336, vocab 128256), decode of T=2
# sequences over a 4096-token cache at tp 2: per GPU 16 heads, 4 KV heads, width 7168, vocab 64128.
T, H, C = 2, 4096, 4096
# name: (flops per GPU, vector flops per GPU, bytes read, bytes written, weight bytes, communication bytes)
LLAMA_DECODE_TP2: dict[str, tuple[int, int, int, int, int, int]] = {
    # RMSNorm: 4 FLOPs per element; reads x and the weight, writes y
    "input_layernorm": (0, 4 * T * H, T * H * 2 + H * 2, T * H * 2, H * 2, 0),
    "q_proj": (2 * T * H * 2048, 0, H * 2048 * 2 + T * H * 2, T * 2048 * 2, H * 2048 * 2, 0),
    "k_proj": (2 * T * H * 512, 0, H * 512 * 2 + T * H * 2, T * 512 * 2, H * 512 * 2, 0),
    "v_proj": (2 * T * H * 512, 0, H * 512 * 2 + T * H * 2, T * 512 * 2, H * 512 * 2, 0),
    # rotary: 3 FLOPs per element of q (16 heads) and k (4 heads)
    "rotary_emb": (0, 3 * T * 20 * 128, T * 20 * 128 * 2, T * 20 * 128 * 2, 0, 0),
    # causal pairs of one new token over 4096 cached: 4097; 2 x pairs x 16 heads x (128 + 128) per sequence;
    # softmax 5 FLOPs per score; reads q and the whole cache (4097 positions x 4 KV heads x (128 + 128) x 2 B),
    # writes the output and the new token's K and V
    "attention": (
        T * 2 * 4097 * 16 * 256,
        T * 16 * 4097 * 5,
        T * 16 * 128 * 2 + T * 4097 * 4 * 256 * 2,
        T * 16 * 128 * 2 + T * 4 * 256 * 2,
        0,
        0,
    ),
    "o_proj": (2 * T * 2048 * H, 0, 2048 * H * 2 + T * 2048 * 2, T * H * 2, 2048 * H * 2, 0),
    # ring all-reduce of the [T, H] bf16 output: 2 (n-1)/n of the buffer, n = 2
    "attn_allreduce": (0, 0, 0, 0, 0, 2 * (2 - 1) * T * H * 2 // 2),
    "attn_residual_add": (0, T * H, 2 * T * H * 2, T * H * 2, 0, 0),
    "post_attention_layernorm": (0, 4 * T * H, T * H * 2 + H * 2, T * H * 2, H * 2, 0),
    "mlp.gate_proj": (2 * T * H * 7168, 0, H * 7168 * 2 + T * H * 2, T * 7168 * 2, H * 7168 * 2, 0),
    "mlp.up_proj": (2 * T * H * 7168, 0, H * 7168 * 2 + T * H * 2, T * 7168 * 2, H * 7168 * 2, 0),
    # silu(gate) * up: 5 FLOPs per output element, reads both halves
    "mlp.act_fn": (0, 5 * T * 7168, 2 * T * 7168 * 2, T * 7168 * 2, 0, 0),
    "mlp.down_proj": (2 * T * 7168 * H, 0, 7168 * H * 2 + T * 7168 * 2, T * H * 2, 7168 * H * 2, 0),
    "mlp_allreduce": (0, 0, 0, 0, 0, T * H * 2),
    "mlp_residual_add": (0, T * H, 2 * T * H * 2, T * H * 2, 0, 0),
}


def test_llama_decode_tp2_every_op_of_a_layer() -> None:
    r = simulate("llama-3.1-8b", batch_size=T, seq_len=1, context_len=C, tp=2, gpu="h100", detail="ops")
    rows = rows_of(r)
    assert set(rows) == set(LLAMA_DECODE_TP2)
    for name, (fl, vf, rd, wr, wb, cb) in LLAMA_DECODE_TP2.items():
        o = rows[name]
        got = (o.flops_per_gpu, o.vector_flops_per_gpu, o.bytes_read_per_gpu, o.bytes_written_per_gpu)
        assert got == (fl, vf, rd, wr), name
        assert (o.weight_bytes_per_gpu, o.communication_bytes_per_gpu) == (wb, cb), name
        if o.kind == "communication":
            assert o.bound == "communication" and o.roofline_time_us == us(cb / NVLINK * 1e6), name
            continue
        # GEMMs and attention on tensor cores at the bf16 peak; vector ops are priced by their bytes only
        compute = fl / BF16_PEAK * 1e6
        memory = (rd + wr) / HBM * 1e6
        assert o.roofline_time_us == us(max(compute, memory)), name
        assert o.bound == ("compute" if compute >= memory else "memory"), name
    # whole-model FLOPs of one layer: tp 2 halves each GEMM and attention
    assert rows["q_proj"].flops == 2 * rows["q_proj"].flops_per_gpu
    assert rows["attention"].flops == 2 * rows["attention"].flops_per_gpu


def test_llama_decode_tp2_totals_add_up_by_hand() -> None:
    r = simulate("llama-3.1-8b", batch_size=T, seq_len=1, context_len=C, tp=2, gpu="h100", measured_ms=5.0)
    table = LLAMA_DECODE_TP2.values()
    layer_flops = sum(x[0] for x in table)
    # LM head (last token of each sequence, vocab-parallel: 64128 columns per GPU)
    lm_head = 2 * T * H * 64128
    assert r.totals.flops_per_gpu == 32 * layer_flops + lm_head
    assert r.totals.flops == 2 * (32 * layer_flops + lm_head)
    assert r.by_category["lm_head"].flops == 2 * T * H * 128256
    # vector: layers + final RMSNorm (4 T H)
    assert r.totals.vector_flops_per_gpu == 32 * sum(x[1] for x in table) + 4 * T * H
    # bytes: layers + embedding (T rows of H, vocab-parallel: half of them read per GPU, output written)
    # + final norm + LM head
    emb = T * H * 2 // 2 + T * H * 2
    final_norm = T * H * 2 + H * 2 + T * H * 2
    head = H * 64128 * 2 + T * H * 2 + T * 64128 * 2
    layer_bytes = sum(x[2] + x[3] for x in table)
    assert r.totals.bytes_per_gpu == 32 * layer_bytes + emb + final_norm + head
    weights = 32 * sum(x[4] for x in table) + T * H * 2 // 2 + H * 2 + H * 64128 * 2
    assert r.totals.weight_bytes_per_gpu == weights
    # KV read (4097 positions) and written (1) per layer and sequence: 4 KV heads x 256 x 2 B
    assert r.totals.kv_cache_bytes_per_gpu == 32 * T * (4097 + 1) * 4 * 256 * 2
    # all-reduces: two per layer plus the vocab-parallel embedding's
    comm = 32 * 2 * T * H * 2 + T * H * 2
    assert r.totals.communication_bytes_per_gpu == comm
    assert r.by_category["communication"].communication_bytes_per_gpu == comm
    assert r.totals.communication_time_us == us(comm / NVLINK * 1e6)
    # decode is memory-bound; MFU / MBU against the measured 5 ms
    assert r.totals.bound == "memory"
    assert r.totals.mfu_pct == pytest.approx(r.totals.flops_per_gpu / (5e-3 * BF16_PEAK) * 100, abs=0.006)
    assert r.totals.mbu_pct == pytest.approx(
        (32 * layer_bytes + emb + final_norm + head) / (5e-3 * HBM) * 100, abs=0.006
    )
    assert r.totals.flags == [] or not any("MFU" in f or "MBU" in f for f in r.totals.flags)


def test_totals_times_are_sums_of_op_times() -> None:
    r = simulate("llama-3.1-8b", batch_size=T, seq_len=1, context_len=C, tp=2, gpu="h100", detail="ops")
    rows = list(rows_of(r).values())
    assert r.head_tail_ops is not None
    compute = memory = roof = comm = 0.0
    for o, n in [(o, 32) for o in rows] + [(o, 1) for o in r.head_tail_ops]:
        if o.kind == "communication" or o.category == "communication":
            comm += n * o.communication_bytes_per_gpu / NVLINK * 1e6
            continue
        c = (o.flops_per_gpu / BF16_PEAK) * 1e6
        m = (o.bytes_read_per_gpu + o.bytes_written_per_gpu) / HBM * 1e6
        compute, memory, roof = compute + n * c, memory + n * m, roof + n * max(c, m)
    assert r.totals.compute_time_us == us(compute)
    assert r.totals.memory_time_us == us(memory)
    assert r.totals.communication_time_us == us(comm)
    assert r.totals.roofline_time_us == us(roof + comm)
    cat_time: dict[str, float] = {}
    for o, n in [(o, 32) for o in rows] + [(o, 1) for o in r.head_tail_ops]:
        assert o.roofline_time_us is not None
        cat_time[o.category] = cat_time.get(o.category, 0.0) + n * o.roofline_time_us
    for cat, t in cat_time.items():
        assert r.by_category[cat].roofline_time_us == us(t), cat


def test_prefill_fp8_gemms_at_fp8_peak_attention_at_bf16_peak() -> None:
    # Llama-3.1-8B prefill of 8192 tokens, dtype fp8: GEMMs run at the fp8 peak, attention (bf16 FA) at bf16
    S = 8192
    r = simulate("llama-3.1-8b", batch_size=1, seq_len=S, gpu="h100", dtype="fp8", detail="ops")
    rows = rows_of(r)
    q = rows["q_proj"]
    assert q.peak_dtype == "fp8" and q.flops_per_gpu == 2 * S * H * H
    assert q.bound == "compute" and q.roofline_time_us == us(2 * S * H * H / FP8_PEAK * 1e6)
    a = rows["attention"]
    pairs = S * (S + 1) // 2  # causal, no cache
    assert a.peak_dtype == "bf16" and a.flops_per_gpu == 2 * pairs * 32 * 256
    assert a.bound == "compute" and a.roofline_time_us == us(2 * pairs * 32 * 256 / BF16_PEAK * 1e6)
    assert r.gpu is not None and r.gpu.peak_tflops == 1979.0 and r.gpu.attention_peak_tflops == 989.4
    assert r.totals.bound == "compute"
    # the same step in bf16: every tensor op at 989.4
    rb = rows_of(simulate("llama-3.1-8b", batch_size=1, seq_len=S, gpu="h100", detail="ops"))
    assert rb["q_proj"].peak_dtype == "bf16"
    assert rb["q_proj"].roofline_time_us == us(2 * S * H * H / BF16_PEAK * 1e6)


def test_bound_labels_in_totals() -> None:
    assert simulate("llama-3.1-8b", batch_size=1, seq_len=1, context_len=100, gpu="h100").totals.bound == "memory"
    assert simulate("llama-3.1-8b", batch_size=1, seq_len=4096, gpu="h100").totals.bound == "compute"
    # a 1 MB/s fabric makes the all-reduces dominate
    r = simulate(
        "llama-3.1-8b", batch_size=8, seq_len=1, context_len=100, gpu="h100", tp=2, scale_up_bandwidth_gb_per_s=0.001
    )
    assert r.totals.bound == "communication"
    comm = 32 * 2 * 8 * H * 2 + 8 * H * 2
    assert r.totals.communication_time_us == us(comm / 1e6 * 1e6)


def test_mfu_mbu_and_flags_above_100() -> None:
    # measured 0.1 ms for a step whose bytes alone need about 4.8 ms at 3.35 TB/s: MBU far above 100%
    r = simulate("llama-3.1-8b", batch_size=4, seq_len=1, context_len=2048, gpu="h100", measured_ms=0.1)
    assert r.totals.mbu_pct == pytest.approx(r.totals.bytes_per_gpu / (1e-4 * HBM) * 100, abs=0.006)
    assert r.totals.mbu_pct > 100 and any("MBU" in f for f in r.totals.flags)
    assert not any("MFU" in f for f in r.totals.flags)
    # prefill of 4 x 4096 tokens (about 0.6 PFLOP) in 0.1 ms: MFU above 100% too
    r = simulate("llama-3.1-8b", batch_size=4, seq_len=4096, gpu="h100", measured_ms=0.1)
    assert r.totals.mfu_pct == pytest.approx(r.totals.flops_per_gpu / (1e-4 * BF16_PEAK) * 100, abs=0.006)
    assert r.totals.mfu_pct > 100 and any("MFU" in f for f in r.totals.flags)
    assert r.totals.roofline_fraction_pct == pytest.approx(r.totals.roofline_time_us / 100 * 100, abs=0.006)
    # within the peaks: no flag
    r = simulate("llama-3.1-8b", batch_size=4, seq_len=1, context_len=2048, gpu="h100", measured_ms=10)
    assert r.totals.flags == []
