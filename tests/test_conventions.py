"""The default serving conventions (causal pairs, absorbed MLA, last-token logits), checked against
closed forms written out here from conventions.md and against brute-force sums."""

from __future__ import annotations

from typing import Any

import pytest

from model_compute_sim.references import find_model, to_plain
from model_compute_sim.simulator import formulas as F
from model_compute_sim.simulator.simulate import simulate


def cfg(name: str) -> dict[str, Any]:
    entry = find_model(name)
    assert entry is not None
    c = to_plain(entry.config)
    return c.get("text_config", c) if isinstance(c.get("text_config"), dict) else c


# --- pair counts against brute force ---------------------------------------------------------


@pytest.mark.parametrize("q", [1, 2, 7, 33])
@pytest.mark.parametrize("c", [0, 1, 5, 40, 129])
def test_pair_counts_equal_brute_force(q: int, c: int) -> None:
    assert F.causal_pairs(q, c) == sum(c + j for j in range(1, q + 1))
    for w in (1, 4, 32, 128):
        assert F.window_pairs(q, c, w) == sum(min(c + j, w) for j in range(1, q + 1))
    for ch in (1, 3, 8, 64):
        assert F.chunked_pairs(q, c, ch) == sum((p % ch) + 1 for p in range(c, c + q))
        assert F.dense_kv_len(q, c, ch) == min(c, ch - 1) + q


def test_sdpa_flops_causal_bottom_right() -> None:
    # decode: 1 query over 11 keys, causal = all 11 pairs; prefill 4x4 causal = 10 pairs
    assert F.sdpa_flops(2, 8, 1, 11, 64, 64, causal=True) == 2 * 2 * 11 * 8 * 128
    assert F.sdpa_flops(1, 1, 4, 4, 16, 16, causal=True) == 2 * 10 * 32
    assert F.sdpa_flops(1, 1, 4, 4, 16, 16, causal=False) == 2 * 16 * 32


# --- a dense GQA model: Llama-3.1-8B ------------------------------------------------------------


@pytest.mark.parametrize("b,s,c", [(2, 100, 0), (3, 1, 1000), (1, 64, 512)])
def test_llama_closed_forms(b: int, s: int, c: int) -> None:
    k = cfg("llama-3.1-8b")
    L, H, V, I = k["num_hidden_layers"], k["hidden_size"], k["vocab_size"], k["intermediate_size"]
    h, kv = k["num_attention_heads"], k["num_key_value_heads"]
    d = H // h
    t = b * s
    r = simulate("llama-3.1-8b", batch_size=b, seq_len=s, context_len=c)
    cat = r.by_category
    pairs = b * (s * c + s * (s + 1) // 2)
    assert cat["attention_core"].flops == L * 2 * pairs * h * (d + d)
    assert cat["attention_proj"].flops == L * 2 * t * H * (2 * h * d + 2 * kv * d)
    assert cat["mlp"].flops == L * 3 * 2 * t * H * I
    assert cat["lm_head"].flops == 2 * b * H * V  # logits="last": one row per sequence
    assert r.totals.flops == sum(x.flops for x in cat.values())
    assert cat["norm"].flops == 0 and cat["norm"].vector_flops > 0  # named, not folded into MFU
    r_all = simulate("llama-3.1-8b", batch_size=b, seq_len=s, context_len=c, logits="all")
    assert r_all.by_category["lm_head"].flops == 2 * t * H * V
    r_dense = simulate("llama-3.1-8b", batch_size=b, seq_len=s, context_len=c, attention_flops="dense")
    assert r_dense.by_category["attention_core"].flops == L * 2 * b * s * (c + s) * h * 2 * d


def test_sliding_window_caps_pairs_gpt_oss() -> None:
    k = cfg("gpt-oss-20b")
    W, L = k["sliding_window"], k["num_hidden_layers"]
    h, d = k["num_attention_heads"], k["head_dim"]
    n_sliding = sum(1 for t in k["layer_types"][:L] if t == "sliding_attention")
    b, c = 4, 1000
    r = simulate("gpt-oss-20b", batch_size=b, seq_len=1, context_len=c)
    expected = 2 * b * h * 2 * d * (n_sliding * min(c + 1, W) + (L - n_sliding) * (c + 1))
    assert r.by_category["attention_core"].flops == expected


def test_moe_experts_are_6tkhi() -> None:
    k = cfg("qwen3-30b-a3b")
    L, H = k["num_hidden_layers"], k["hidden_size"]
    E, top, I = k["num_experts"], k["num_experts_per_tok"], k["moe_intermediate_size"]
    r = simulate("qwen3-30b-a3b", batch_size=8, seq_len=16, context_len=100)
    t = 8 * 16
    assert r.by_category["moe_experts"].flops == L * 6 * t * top * H * I
    assert r.by_category["moe_router"].flops == L * 2 * t * H * E


# --- MLA and DSA: DeepSeek-V3 / V3.2 -----------------------------------------------------------


def test_mla_absorbed_decode_closed_form() -> None:
    k = cfg("deepseek-v3")
    L, h = k["num_hidden_layers"], k["num_attention_heads"]
    r_kv, nope, rope, dv = k["kv_lora_rank"], k["qk_nope_head_dim"], k["qk_rope_head_dim"], k["v_head_dim"]
    b, c = 16, 4096
    res = simulate("deepseek-v3", batch_size=b, seq_len=1, context_len=c)  # auto -> absorbed
    pairs = b * (c + 1)
    assert res.by_category["attention_core"].flops == L * 2 * pairs * h * ((r_kv + rope) + r_kv)
    absorb = 2 * b * h * nope * r_kv + 2 * b * h * r_kv * dv
    q = 2 * b * k["hidden_size"] * k["q_lora_rank"] + 2 * b * k["q_lora_rank"] * h * (nope + rope)
    kv_a = 2 * b * k["hidden_size"] * (r_kv + rope)
    o = 2 * b * h * dv * k["hidden_size"]
    assert res.by_category["attention_proj"].flops == L * (q + kv_a + absorb + o)
    assert any("absorbed" in a for a in res.assumptions)


def test_mla_expanded_prefill_closed_form() -> None:
    k = cfg("deepseek-v3")
    L, h = k["num_hidden_layers"], k["num_attention_heads"]
    r_kv, nope, rope, dv = k["kv_lora_rank"], k["qk_nope_head_dim"], k["qk_rope_head_dim"], k["v_head_dim"]
    s = 1000
    res = simulate("deepseek-v3", batch_size=1, seq_len=s, detail="ops")  # auto -> expanded
    assert res.by_category["attention_core"].flops == L * 2 * (s * (s + 1) // 2) * h * (nope + rope + dv)
    assert res.layer_groups is not None
    ops = {o.name: o for o in res.layer_groups[0].ops or []}
    assert ops["kv_b_proj"].flops == 2 * s * r_kv * h * (nope + dv)
    assert "q_absorb_uk" not in ops


def test_dsa_topk_caps_attention_and_indexer_is_causal() -> None:
    k = cfg("deepseek-v3.2")
    L, h, topk = k["num_hidden_layers"], k["num_attention_heads"], k["index_topk"]
    ih, idim = k["index_n_heads"], k["index_head_dim"]
    r_kv, rope = k["kv_lora_rank"], k["qk_rope_head_dim"]
    b, c = 2, 10000
    res = simulate("deepseek-v3.2", batch_size=b, seq_len=1, context_len=c)
    assert res.by_category["attention_core"].flops == L * 2 * b * min(c + 1, topk) * h * (2 * r_kv + rope)
    proj = 2 * b * (k["q_lora_rank"] * ih * idim + k["hidden_size"] * idim + k["hidden_size"] * ih)
    scores = 2 * b * (c + 1) * ih * idim + 2 * b * (c + 1) * ih
    assert res.by_category["attention_indexer"].flops == L * (proj + scores)


# --- mixed steps are sums of their requests -----------------------------------------------------


@pytest.mark.parametrize("model", ["llama-3.1-8b", "deepseek-v3", "gpt-oss-20b", "glm-5"])
def test_mixed_step_is_sum_of_requests(model: str) -> None:
    reqs = [
        {"new_tokens": 512, "cached_tokens": 0},
        {"new_tokens": 1, "cached_tokens": 3000},
        {"new_tokens": 1, "cached_tokens": 3000},
        {"new_tokens": 4, "cached_tokens": 77},
    ]
    mixed = simulate(model, requests=reqs)
    parts = [simulate(model, batch_size=1, seq_len=r["new_tokens"], context_len=r["cached_tokens"]) for r in reqs]
    for cat, c in mixed.by_category.items():
        if cat == "moe_experts":
            continue  # FLOPs additive, but expected distinct experts touched is not: checked below
        assert c.flops == sum(p.by_category[cat].flops for p in parts), cat
    assert mixed.by_category.get("moe_experts", None) is None or mixed.by_category["moe_experts"].flops == sum(
        p.by_category["moe_experts"].flops for p in parts
    )
    assert mixed.workload.phase == "mixed"


def test_measured_mfu_and_flags() -> None:
    r = simulate("llama-3.1-8b", batch_size=1, seq_len=4096, gpu="h100", measured_ms=1000.0)
    peak = 989.4e12
    assert r.totals.mfu_pct == pytest.approx(r.totals.flops_per_gpu / (1.0 * peak) * 100)
    assert r.totals.mbu_pct == pytest.approx(r.totals.bytes_per_gpu / (1.0 * 3350e9) * 100)
    assert not r.totals.flags
    fast = simulate("llama-3.1-8b", batch_size=1, seq_len=4096, gpu="h100", measured_ms=0.01)
    assert fast.totals.mfu_pct is not None and fast.totals.mfu_pct > 100
    assert any("above 100%" in f for f in fast.totals.flags)


def test_fp8_uses_fp8_peak_and_overrides() -> None:
    r = simulate("llama-3.1-8b", gpu="h100", dtype="fp8", measured_ms=1.0)
    assert r.gpu is not None and r.gpu.peak_tflops == 1979.0 and r.gpu.peak_dtype == "fp8"
    o = simulate("llama-3.1-8b", gpu="h100", peak_tflops=500.0, memory_bandwidth_gb_per_s=1000.0)
    assert o.gpu is not None and o.gpu.peak_tflops == 500.0 and o.gpu.memory_bandwidth_gb_per_s == 1000.0


def test_llama4_chunked_local_attention() -> None:
    """Llama-4 rope layers attend within their 8192-token chunk; every 4th (NoPE) layer is global."""
    k = cfg("llama-4-maverick")
    L, h, d, chunk = k["num_hidden_layers"], k["num_attention_heads"], k["head_dim"], k["attention_chunk_size"]
    c = 10000
    r = simulate("llama-4-maverick", batch_size=1, seq_len=1, context_len=c)
    n_global = L // 4
    per_layer = 2 * h * 2 * d  # scores + values per query-key pair
    expected = per_layer * ((L - n_global) * ((c % chunk) + 1) + n_global * (c + 1))
    assert r.by_category["attention_core"].flops == expected


def test_request_counts_equal_repeated_requests() -> None:
    one = simulate(
        "qwen3-8b",
        requests=[{"new_tokens": 1, "cached_tokens": 500, "count": 7}, {"new_tokens": 64, "cached_tokens": 0}],
    )
    many = simulate(
        "qwen3-8b", requests=[{"new_tokens": 1, "cached_tokens": 500}] * 7 + [{"new_tokens": 64, "cached_tokens": 0}]
    )
    assert one.totals == many.totals and one.workload.batch_size == 8


def test_mla_auto_short_prefill_is_expanded_and_short_extend_absorbed() -> None:
    """A 16-token prefill has no cached prefix: expanded (kv_b_proj over its 16 positions); 16 new tokens
    over a 100-token prefix: absorbed. Closed forms from the conventions' MLA section."""
    k = cfg("deepseek-v3")
    L, h = k["num_hidden_layers"], k["num_attention_heads"]
    r_kv, nope, rope, dv = k["kv_lora_rank"], k["qk_nope_head_dim"], k["qk_rope_head_dim"], k["v_head_dim"]
    s, c = 16, 100
    pre = simulate("deepseek-v3", batch_size=1, seq_len=s)
    assert pre.by_category["attention_core"].flops == L * 2 * (s * (s + 1) // 2) * h * (nope + rope + dv)
    ext = simulate("deepseek-v3", batch_size=1, seq_len=s, context_len=c)
    pairs = s * c + s * (s + 1) // 2
    assert ext.by_category["attention_core"].flops == L * 2 * pairs * h * ((r_kv + rope) + r_kv)
    longer = simulate("deepseek-v3", batch_size=1, seq_len=s + 1, context_len=c)  # above the threshold
    pairs = (s + 1) * c + (s + 1) * (s + 2) // 2
    assert longer.by_category["attention_core"].flops == L * 2 * pairs * h * (nope + rope + dv)
    assert any("without a cached prefix" in a for a in pre.assumptions)
