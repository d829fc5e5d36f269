"""The memory report against closed forms written out from each model's config.json.

Every expected value below is arithmetic on the published config (quoted in the comments), never a
call into the project. Dtype sizes: bf16 2 B, fp8 1 B, plain fp4 0.5 B per parameter; MXFP4 (OCP MX v1.0:
one E8M0 scale byte per 32 elements) 0.5 + 1/32 = 0.53125 B; DeepSeek fp8 with one fp32 scale per
128 x 128 block 1 + 4/16384 B.
"""

from __future__ import annotations

import pytest

from model_compute_sim.simulator.simulate import simulate

# gpt-oss-120b (openai/gpt-oss-120b config.json): hidden 2880, 36 layers alternating sliding (W=128) /
# full, 64 query / 8 KV heads of head_dim 64, 128 experts top-4 of width 2880 (gated: gate, up, down),
# vocab 201088, untied embeddings; experts in mxfp4, attention / router / embeddings bf16.
OSS_H, OSS_L, OSS_E, OSS_I, OSS_V = 2880, 36, 128, 2880, 201088


def oss_weights_per_gpu(tp: int, ep: int, expert_b: float, attn_b: float, tensor_b: float = 0.0) -> float:
    """`tensor_b`: per-tensor scalar bytes of each stored matrix (nvfp4: 8), q, k, v, o and each local
    expert's gate, up and down apart."""
    heads, kv = 64 // tp, max(8 // tp, 1)
    attn = OSS_H * heads * 64 + 2 * OSS_H * kv * 64 + heads * 64 * OSS_H  # q, k, v, o
    moe_tp = tp // ep
    experts = (OSS_E // ep) * 3 * OSS_H * (OSS_I // moe_tp)
    router = OSS_H * OSS_E  # bf16, replicated
    norms = 2 * OSS_H  # bf16
    # bf16 vectors (GptOssAttention / GptOssExperts / GptOssTopKRouter): q/k/v biases of the local heads, the
    # o_proj bias (whole: added once after the reduce), 64 / tp sinks; router bias (128); per local expert a
    # gate_up bias 2 x 2880 / moe_tp and a down bias 2880
    vectors = heads * 64 + 2 * kv * 64 + OSS_H + heads + OSS_E + (OSS_E // ep) * (2 * OSS_I // moe_tp + OSS_H)
    per_layer = attn * attn_b + experts * expert_b + router * 2 + norms * 2 + vectors * 2
    per_layer += (4 + (OSS_E // ep) * 3) * tensor_b
    embeddings = 2 * OSS_V * OSS_H / tp * 2  # embedding + LM head, vocab-parallel, bf16
    return OSS_L * per_layer + embeddings + OSS_H * 2  # + the final norm (bf16)


def test_gpt_oss_120b_weights_tp8_ep8_divide_experts_by_ep() -> None:
    r = simulate("gpt-oss-120b", batch_size=1, seq_len=1, context_len=4096, tp=8, ep=8, gpu="h100")
    # per layer: attention (512 + 64 + 64 + 512) * 2880 = 3,317,760 params x 2 B = 6,635,520 B;
    # 16 local experts x 3 x 2880 x 2880 = 398,131,200 params x 0.53125 B (mxfp4) = 211,507,200 B;
    # router 2880 x 128 x 2 B = 737,280 B; norms 2 x 2880 x 2 B = 11,520 B -> 218,891,520 B x 36 layers
    # = 7,880,094,720 B; embedding + LM head 2 x 201088 x 2880 / 8 x 2 B = 289,566,720 B.
    # (Without the E8M0 scales it was 7,721,763,840 B: 447,897,600 B, 5.8%, low.)
    # bf16 vectors per layer: q/k/v bias 512 + 64 + 64, o bias 2880, 8 sinks, router bias 128, 16 local
    # experts x (5760 + 2880) biases = 141,896 x 2 B = 283,792 B x 36 = 10,216,512 B; final norm 5,760 B.
    assert r.memory.weights_bytes_per_gpu == pytest.approx(8_169_661_440 + 10_216_512 + 5_760, rel=1e-12)
    assert r.memory.weights_bytes_per_gpu == pytest.approx(oss_weights_per_gpu(8, 8, 0.53125, 2), rel=1e-12)
    # about 8.2 GB per GPU: far from the 57.9 GB of experts kept whole on every rank
    assert 8.1e9 < r.memory.weights_bytes_per_gpu < 8.3e9


def test_gpt_oss_120b_weights_other_splits_and_dtype_override() -> None:
    for tp, ep in ((8, 1), (4, 4), (2, 1), (1, 1)):
        r = simulate("gpt-oss-120b", batch_size=1, seq_len=1, context_len=128, tp=tp, ep=ep, gpu="h200")
        assert r.memory.weights_bytes_per_gpu == pytest.approx(oss_weights_per_gpu(tp, ep, 0.53125, 2), rel=1e-12)
    # weight_dtype given: experts and attention in that dtype, router / norms / embeddings stay bf16;
    # plain dtypes count element bytes only, mxfp4 / nvfp4 their scales (1 byte per 32 / per 16)
    for wd, b in (
        ("fp8", 1.0),
        ("bf16", 2.0),
        ("fp4", 0.5),
        ("int4", 0.5),
        ("int8", 1.0),
        ("fp32", 4.0),
        ("mxfp4", 0.5 + 1 / 32),
        ("nvfp4", 0.5 + 1 / 16),
    ):
        r = simulate("gpt-oss-120b", context_len=128, tp=8, ep=8, weight_dtype=wd, gpu="h100")
        tensor_b = 8.0 if wd == "nvfp4" else 0.0  # FP32 weight_scale_2 + input_scale per nvfp4 matrix
        expected = oss_weights_per_gpu(8, 8, b, b, tensor_b)
        assert r.memory.weights_bytes_per_gpu == pytest.approx(expected, rel=1e-12), wd


def test_gpt_oss_kv_cache_sliding_layers_capped_at_the_window() -> None:
    # KV per token per GPU at tp 8: 8 KV heads / 8 = 1 head x (64 + 64) x 2 B = 256 B per layer; 36 layers
    r = simulate("gpt-oss-120b", batch_size=1, seq_len=1, context_len=4096, tp=8, ep=8, gpu="h100")
    assert r.memory.kv_cache_bytes_per_token_per_gpu == 36 * 256
    # 18 full layers keep 4096 + 1 positions, 18 sliding layers keep W = 128
    assert r.memory.kv_cache_bytes_per_gpu == 18 * 256 * 4097 + 18 * 256 * 128
    # below the window every layer keeps all 101 positions
    r = simulate("gpt-oss-120b", batch_size=3, seq_len=1, context_len=100, tp=8, ep=8, gpu="h100")
    assert r.memory.kv_cache_bytes_per_gpu == 3 * 36 * 256 * 101
    # tp 1: all 8 KV heads on one GPU (8 x 128 x 2 B = 2048 B per layer)
    r = simulate("gpt-oss-120b", batch_size=2, seq_len=1, context_len=4096, gpu="h200")
    assert r.memory.kv_cache_bytes_per_token_per_gpu == 36 * 2048
    assert r.memory.kv_cache_bytes_per_gpu == 2 * (18 * 2048 * 4097 + 18 * 2048 * 128)


# Llama-3.1-70B: 80 layers, 8 KV heads of head_dim 128. bf16 KV per token = 80 x 8 x 128 x 2 (K, V) x 2 B
# = 327,680 B (320 KiB), the per-token KV size quoted for Llama-3-70B by serving engines.
@pytest.mark.parametrize(("tp", "kv_heads_per_gpu"), [(1, 8), (2, 4), (4, 2), (8, 1), (16, 1), (32, 1)])
def test_llama_70b_kv_per_token_divided_by_tp_and_replicated_beyond_kv_heads(tp: int, kv_heads_per_gpu: int) -> None:
    r = simulate("llama-3.1-70b", batch_size=4, seq_len=1, context_len=1000, tp=tp)
    per_token = 80 * kv_heads_per_gpu * 128 * 2 * 2
    assert r.memory.kv_cache_bytes_per_token_per_gpu == per_token
    assert r.memory.kv_cache_bytes_per_gpu == 4 * 1001 * per_token
    # fp8 KV cache: 1 B per element
    r8 = simulate("llama-3.1-70b", batch_size=4, seq_len=1, context_len=1000, tp=tp, kv_cache_dtype="fp8")
    assert r8.memory.kv_cache_bytes_per_token_per_gpu == per_token // 2


def test_llama_70b_kv_per_token_published_figure() -> None:
    assert simulate("llama-3.1-70b").memory.kv_cache_bytes_per_token_per_gpu == 327_680


def test_deepseek_v3_mla_latent_kv_replicated_on_every_tp_rank() -> None:
    # MLA caches the latent c_KV (kv_lora_rank 512) plus the decoupled rope key (64) per layer: DeepSeek-V2
    # paper, Table 1, "(d_c + d_h^R) l" elements per token; 61 layers x 576 x 2 B = 70,272 B at bf16.
    for tp, ep in ((1, 1), (8, 8), (8, 1)):
        r = simulate("deepseek-v3", batch_size=2, seq_len=1, context_len=2047, tp=tp, ep=ep)
        assert r.memory.kv_cache_bytes_per_token_per_gpu == 70_272
        assert r.memory.kv_cache_bytes_per_gpu == 2 * 2048 * 70_272
    r = simulate("deepseek-v3", batch_size=2, seq_len=1, context_len=2047, tp=8, ep=8, kv_cache_dtype="fp8")
    assert r.memory.kv_cache_bytes_per_token_per_gpu == 61 * 576


def test_dp_splits_kv_of_the_busiest_rank() -> None:
    # 9 sequences over dp 4: the busiest rank holds ceil(9 / 4) = 3 of them
    r = simulate("deepseek-v3", batch_size=9, seq_len=1, context_len=999, tp=1, dp=4, ep=4)
    assert r.memory.kv_cache_bytes_per_gpu == 3 * 1000 * 70_272


# DeepSeek-V3 (config.json): hidden 7168, 61 layers (3 dense, 58 MoE), 128 heads, q_lora 1536,
# kv_lora 512, qk_nope 128, qk_rope 64, v_head 128, dense width 18432, 256 experts of width 2048 plus
# 1 shared, vocab 129280, fp8 weights (e4m3, weight_block_size [128, 128]: one fp32 weight_scale_inv
# per 128 x 128 block, 1 + 4/16384 B per weight), embeddings and LM head bf16.
FP8_BLOCK = 1 + 4 / (128 * 128)


def deepseek_v3_weights_per_gpu(tp: int, ep: int) -> float:
    H, h = 7168, 128 // tp
    q = H * 1536 + 1536 * h * (128 + 64)  # q_a (replicated) + q_b (column)
    kv = H * (512 + 64) + 512 * h * (128 + 128)  # kv_a (replicated) + kv_b (column)
    o = h * 128 * H
    attn = q + kv + o
    dense_mlp = 3 * H * (18432 // tp)
    experts = (256 // ep) * 3 * H * (2048 // (tp // ep))
    shared = 3 * H * (2048 // tp)
    router = H * 256  # bf16
    correction_bias = 256 * 4  # gate.e_score_correction_bias, fp32 (vLLM DeepseekV2MoE, topk_method noaux_tc)
    norms = 2 * H  # bf16
    attn_norms = (1536 + 512) * 2  # q_a_layernorm, kv_a_layernorm weights (bf16)
    dense_layer = (attn + dense_mlp) * FP8_BLOCK + attn_norms + norms * 2
    moe_layer = (attn + experts + shared) * FP8_BLOCK + attn_norms + router * 2 + correction_bias + norms * 2
    return 3 * dense_layer + 58 * moe_layer + 2 * 129280 * H / tp * 2 + H * 2  # + the final norm (bf16)


def test_deepseek_v3_weights_per_gpu() -> None:
    for tp, ep in ((8, 8), (8, 1), (16, 16)):
        r = simulate("deepseek-v3", batch_size=1, seq_len=1, context_len=100, tp=tp, ep=ep)
        assert r.memory.weights_bytes_per_gpu == pytest.approx(deepseek_v3_weights_per_gpu(tp, ep), rel=1e-12)


def test_llama_8b_weights_per_pipeline_stage() -> None:
    # Llama-3.1-8B: hidden 4096, 32 layers, 32 / 8 heads of 128, width 14336, vocab 128256, untied, bf16.
    per_layer = (4096 * 4096 * 2 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096) * 2  # 436,224,000 B
    emb = 128256 * 4096 * 2  # 1,050,673,152 B each for embedding and LM head
    final_norm = 4096 * 2  # model.norm, on the last stage
    r = simulate("llama-3.1-8b", batch_size=1, seq_len=1, context_len=10)
    assert r.memory.weights_bytes_per_gpu == 32 * per_layer + 2 * emb + final_norm
    r = simulate("llama-3.1-8b", batch_size=1, seq_len=1, context_len=10, pp=2)
    # the reported (busiest: the LM head's FLOPs) stage is the last: 16 layers, the LM head and the final norm
    assert r.memory.weights_bytes_per_gpu == 16 * per_layer + emb + final_norm
    r = simulate("llama-3.1-8b", batch_size=1, seq_len=1, context_len=10, tp=4)
    # tp 4: q / o 8 heads, k / v 2 KV heads, MLP width 3584; the two norms stay whole (replicated)
    per_layer_tp4 = (2 * 4096 * 1024 + 2 * 4096 * 256 + 3 * 4096 * 3584) * 2 + 2 * 4096 * 2  # 109,068,288 B
    assert r.memory.weights_bytes_per_gpu == 32 * per_layer_tp4 + 2 * emb / 4 + final_norm


def test_fits_flag() -> None:
    # Llama-3.1-70B in bf16 is about 141 GB of weights: never fits one 80 GB H100, fits 4 of them
    assert simulate("llama-3.1-70b", gpu="h100").memory.fits is False
    assert simulate("llama-3.1-70b", gpu="h100", tp=4).memory.fits is True
