"""Memory report of two layer shapes the other pins do not reach, against closed forms from the configs.

- Gemma-4 global layers share keys and values (`attention_k_eq_v`): no v_proj, a K-only cache.
- Nemotron-H / Nemotron-3 experts are up / down only (relu2, not gated): two matrices per expert.

Each expected value is arithmetic on the config.json quoted in the comments, never a call into the
project. Where the whole-model sum would need conventions unrelated to the point (norm vectors, router
biases), the test isolates the term by a difference between two parallel layouts, stated below.
"""

from __future__ import annotations

from model_compute_sim.simulator.simulate import simulate

# google/gemma-4-26B-A4B text_config: hidden 2816, 30 layers (every 6th full_attention, 25 sliding with
# window 1024), 16 query heads; sliding layers 8 KV heads of head_dim 256 (K and V); full layers 2 KV heads
# (num_global_key_value_heads) of global_head_dim 512 with attention_k_eq_v (keys only); dense MLP 2112 and
# 128 experts top-8 of width 704 (gated, gelu) in every layer; vocab 262144, tied embeddings; bf16.
GEMMA = "gemma-4-26b-a4b"


def test_gemma4_kv_per_token_keeps_keys_only_on_global_layers() -> None:
    # sliding: 8 heads x (256 K + 256 V) x 2 B = 8192 B; full (k_eq_v): 2 heads x 512 K x 2 B = 2048 B
    per_token = 25 * 8192 + 5 * 2048  # 215,040 B
    r = simulate(GEMMA, batch_size=2, seq_len=1, context_len=4095)
    assert r.memory.kv_cache_bytes_per_token_per_gpu == per_token
    # 4096 positions: sliding layers keep the 1024-token window, full layers all 4096
    assert r.memory.kv_cache_bytes_per_gpu == 2 * (25 * 8192 * 1024 + 5 * 2048 * 4096)  # 503,316,480 B
    r8 = simulate(GEMMA, batch_size=2, seq_len=1, context_len=4095, kv_cache_dtype="fp8")
    assert r8.memory.kv_cache_bytes_per_token_per_gpu == per_token // 2
    # tp 2: sliding 4 KV heads, full 1 KV head per GPU
    r2 = simulate(GEMMA, batch_size=1, seq_len=1, context_len=100, tp=2)
    assert r2.memory.kv_cache_bytes_per_token_per_gpu == 25 * 4 * 512 * 2 + 5 * 1 * 512 * 2


def test_gemma4_weights_split_by_tp_have_no_v_proj_on_global_layers() -> None:
    # Everything split by tp (attention projections, MLP widths, expert widths, the vocab-parallel tied
    # embedding) halves from tp 1 to tp 2; replicated parts (norms, router) do not. So
    # 2 x (W(tp1) - W(tp2)) is exactly the tp-split parameters x 2 B:
    sliding_attn = 2816 * (16 * 256 + 8 * 256 + 8 * 256 + 16 * 256)  # q, k, v, o = 34,603,008
    global_attn = 2816 * (16 * 512 + 2 * 512 + 16 * 512)  # q, k, o (no v: k_eq_v) = 49,020,928
    dense_mlp = 3 * 2816 * 2112  # 17,842,176
    experts = 128 * 3 * 2816 * 704  # 761,266,176
    embedding = 262144 * 2816  # tied: counted once, 738,197,504
    split = 25 * sliding_attn + 5 * global_attn + 30 * (dense_mlp + experts) + embedding
    w1 = simulate(GEMMA, context_len=100).memory.weights_bytes_per_gpu
    w2 = simulate(GEMMA, context_len=100, tp=2).memory.weights_bytes_per_gpu
    assert 2 * (w1 - w2) == split * 2  # 50,443,255,808 B
    # the replicated rest is small: router 30 x 2816 x 128 x 2 B = 21,626,880 B plus norm vectors
    assert 21_626_880 < w1 - split * 2 < 21_626_880 + 30 * 12 * 2816 * 2


# nvidia/NVIDIA-Nemotron-3-Nano-30B-A3B-BF16: hidden 2688, hybrid_override_pattern of 52 blocks with 23 'E'
# (MoE) blocks; 128 routed experts of width 1856 with mlp_hidden_act relu2 (up_proj, down_proj: two
# matrices), top-6, one shared expert of width 3712; bf16.
NANO = "nemotron-3-nano-30b-a3b"


def test_nemotron_relu2_experts_are_two_matrices() -> None:
    # Routed experts are spread over the tp*dp GPUs of a stage (widths / moe_tp with ep 1), nothing else
    # depends on dp: W(dp1) - W(dp2) is half the routed experts.
    per_expert = 2 * 2688 * 1856  # up + down = 9,977,856 parameters (a gated expert would have 3 matrices)
    routed = 23 * 128 * per_expert  # 29,374,808,064 parameters
    w = {dp: simulate(NANO, context_len=100, dp=dp).memory.weights_bytes_per_gpu for dp in (1, 2)}
    assert w[1] - w[2] == routed * 2 / 2  # bf16, half of them leave
    # the same with ep 2 (whole experts: 64 per GPU) and in fp8 weights (1 B per parameter)
    assert simulate(NANO, context_len=100, dp=2, ep=2).memory.weights_bytes_per_gpu == w[2]
    f = {dp: simulate(NANO, context_len=100, dp=dp, weight_dtype="fp8").memory.weights_bytes_per_gpu for dp in (1, 2)}
    assert f[1] - f[2] == routed * 1 / 2
