"""Element-wise ops at tp > 1 work on the local heads / columns, so their sharding label says so (as the
GEMMs beside them do), and the per-GPU vector FLOPs are the whole model's / tp. Values by hand."""

from __future__ import annotations

from typing import Any

from model_compute_sim.simulator.simulate import simulate


def _op(r: Any, name: str) -> Any:
    return next(o for g in r.layer_groups for o in g.ops if o.name == name)


def test_qwen3_8b_tp4_elementwise_labels_and_flops() -> None:
    # Qwen3-8B decode, one token: 32 q / 8 kv heads, head_dim 128 (all rotated), intermediate 12288.
    # rotary_emb: (32 + 8) * 128 elements * 3 FLOPs = 15,360 whole; at tp=4 (8 + 2) * 128 * 3 = 3840 = 15,360 / 4
    # mlp.act_fn (silu(gate) * up): 12288 * 5 = 61,440 whole; at tp=4 3072 * 5 = 15,360 = 61,440 / 4
    r = simulate("qwen3-8b", tp=4, detail="ops")
    rope, act = _op(r, "rotary_emb"), _op(r, "mlp.act_fn")
    assert rope.sharding == "heads /4" and rope.vector_flops_per_gpu == 15_360 // 4 == 3840
    assert act.sharding == "column /4" and act.vector_flops_per_gpu == 61_440 // 4 == 15_360
    assert _op(r, "q_norm").sharding == "heads /4"
    assert _op(r, "k_norm").sharding == "column /4"  # 8 KV heads split over 4, as k_proj
    one = simulate("qwen3-8b", detail="ops")
    assert _op(one, "rotary_emb").sharding == _op(one, "mlp.act_fn").sharding == "replicated"
    assert _op(one, "rotary_emb").vector_flops_per_gpu == 15_360


def test_relu2_experts_activation_is_not_called_gated() -> None:
    # Nemotron-H routed experts: up_proj then relu2 then down_proj, two matrices, no gate
    r = simulate("nemotron-3-super-120b-a12b", detail="ops")
    note = _op(r, "experts.act_fn").note
    assert "not gated" in note and "gated activation" not in note
    # Qwen3-30B-A3B experts: silu(gate) * up, three matrices
    assert _op(simulate("qwen3-30b-a3b", detail="ops"), "experts.act_fn").note.startswith("gated activation")


def test_lightning_elementwise_ops_run_on_the_local_heads() -> None:
    # MiniMax-M1 lightning layers: 64 heads x head_dim 128 = 8192 channels; tp=8 keeps 8 heads = 1024 channels.
    # Decode, one token. qkv_silu: silu (4 FLOPs) on q|k|v: 3 * 8192 * 4 = 98,304 whole, 3 * 1024 * 4 = 12,288
    # per GPU. lightning_norm (RMSNorm, 4 FLOPs, weight split with the heads, variance all-reduced):
    # 8192 * 4 = 32,768 whole, 1024 * 4 = 4096 per GPU, weight 1024 * 2 B = 2048 B. output_gate_mul
    # (sigmoid 4 + multiply 1): 8192 * 5 = 40,960 whole, 1024 * 5 = 5120 per GPU.
    from tests.test_lightning_attention import M1

    one, tp8 = simulate(config=M1, detail="ops"), simulate(config=M1, tp=8, detail="ops")
    for name, whole, local in (
        ("qkv_silu", 98_304, 12_288),
        ("lightning_norm", 32_768, 4096),
        ("output_gate_mul", 40_960, 5120),
    ):
        assert _op(one, name).sharding == "replicated" and _op(one, name).vector_flops_per_gpu == whole
        assert _op(tp8, name).sharding == "heads /8" and _op(tp8, name).vector_flops_per_gpu == local == whole // 8
    assert _op(tp8, "lightning_norm").weight_bytes_per_gpu == 1024 * 2


def test_dsv4_head_sharded_and_replicated_elementwise_ops() -> None:
    # DeepSeek-V4-Flash: hidden 4096, 64 heads x head_dim 512, rope dims 64, q_lora_rank 1024, hc_mult 4,
    # compressor width 2 * 512 on ratio-4 layers. tp=8: 8 local heads. Decode, one token.
    one, tp8 = simulate("deepseek-v4-flash", detail="ops"), simulate("deepseek-v4-flash", tp=8, detail="ops")
    # q_head_rms, q *= rsqrt(mean(q^2) + eps) per head (reference Attention.forward; no weight): square,
    # accumulate, scale = 3 FLOPs per element on the local heads: 64 * 512 * 3 = 98,304 whole, 8 * 512 * 3 =
    # 12,288 per GPU; reads and writes 8 * 512 bf16 = 8192 B, no weight bytes
    q = _op(tp8, "q_head_rms")
    assert q.sharding == "heads /8" and q.vector_flops_per_gpu == 8 * 512 * 3 == 12_288
    assert q.weight_bytes_per_gpu == 0 and q.bytes_read_per_gpu == q.bytes_written_per_gpu == 8 * 512 * 2
    assert _op(one, "q_head_rms").vector_flops_per_gpu == 64 * 512 * 3 == 98_304
    # rotary_emb (3 FLOPs per element): q and the output's inverse rotation on the local heads plus the one
    # shared kv latent: (2 * 64 + 1) * 64 * 3 = 24,768 whole, (2 * 8 + 1) * 64 * 3 = 3264 per GPU
    rope = _op(tp8, "rotary_emb")
    assert rope.sharding == "heads /8" and rope.vector_flops_per_gpu == 17 * 64 * 3 == 3264
    assert _op(one, "rotary_emb").vector_flops_per_gpu == 129 * 64 * 3 == 24_768
    # replicated at any tp: the hc streams are the whole hidden state on every rank, wq_a / wkv and the
    # compressor are whole on every rank (so are their norms and pooling)
    for name, flops in (
        ("hc_attn_pre.rms", 4 * 4096 * 2 + 24),  # 32,792: square + accumulate hc * H, scale (2 + 4) * 4 mixes
        ("hc_attn_pre.sum", 4 * 4096 * 2),  # 32,768: weighted sum of the streams
        ("hc_attn_post", 4 * 4096 * 2 * (1 + 4)),  # 163,840: post * out + comb @ streams
        ("hc_ffn_post", 4 * 4096 * 2 * (1 + 4)),
        ("q_norm", 1024 * 4),  # 4096
        ("kv_norm", 512 * 4),  # 2048
        ("compressor.pool", 2 * 512 * 4),  # 4096
    ):
        for r in (one, tp8):
            assert _op(r, name).sharding == "replicated" and _op(r, name).vector_flops_per_gpu == flops


def test_msa_index_norm_split_like_the_index_heads() -> None:
    # MiniMax-M3 index branch: 4 index heads of 128 and one replicated index key. index_qk_norm (4 FLOPs) over
    # q and k: (4 + 1) * 128 * 4 = 2560 whole; tp=8 keeps one whole index head per rank (replicated past 4):
    # (1 + 1) * 128 * 4 = 1024, split like index_q_proj ("column /4")
    one, tp8 = simulate("minimax-m3", detail="ops"), simulate("minimax-m3", tp=8, detail="ops")
    assert _op(one, "index_qk_norm").vector_flops_per_gpu == 2560
    norm = _op(tp8, "index_qk_norm")
    assert norm.sharding == "heads /4" and norm.vector_flops_per_gpu == 1024
    assert _op(tp8, "index_q_proj").sharding == "column /4"


def test_dsv4_hyper_connection_rms_has_no_weight() -> None:
    # reference Block.hc_pre and ParallelHead.hc_head: rsqrt(mean(x^2) + eps) over a token's hc * H = 4 * 4096
    # stream values (2 FLOPs each: square, accumulate) scales its mixes (1 FLOP each: (2 + 4) * 4 = 24 in a
    # block, hc = 4 at the head); no weight; reads the 16,384 bf16 values (32,768 B), writes one fp32 per token
    t = 16
    r = simulate("deepseek-v4-flash", batch_size=1, seq_len=t, detail="ops")
    assert r.head_tail_ops is not None
    head = next(o for o in r.head_tail_ops if o.name == "hc_head.rms")
    block = _op(r, "hc_ffn_pre.rms")
    for op, mix in ((block, 24), (head, 4)):
        assert op.vector_flops_per_gpu == t * (2 * 4 * 4096 + mix)  # 524,672 (block), 524,352 (head)
        assert op.weight_bytes_per_gpu == 0
        assert op.bytes_read_per_gpu == t * 4 * 4096 * 2 == 524_288 and op.bytes_written_per_gpu == t * 4


def test_lightning_elementwise_bytes_in_the_dtypes_vllm_runs() -> None:
    # vLLM MiniMaxText01LinearAttention._forward: qkv = qkv_proj(x) (bf16); q, k, v = silu(qkv.to(float32));
    # the core output is fp32 (q's dtype), norm(hidden) stays fp32, sigmoid(gate) * hidden is cast back to bf16.
    # MiniMax-M1 at tp=8, decode, one token: 1024 local channels.
    from tests.test_lightning_attention import M1

    r = simulate(config=M1, tp=8, detail="ops")
    silu, norm, gate = _op(r, "qkv_silu"), _op(r, "lightning_norm"), _op(r, "output_gate_mul")
    assert silu.bytes_read_per_gpu == 3 * 1024 * 2 == 6144  # bf16 q|k|v in
    assert silu.bytes_written_per_gpu == 3 * 1024 * 4 == 12_288  # fp32 out
    assert norm.bytes_written_per_gpu == 1024 * 4 == 4096
    assert norm.bytes_read_per_gpu == 1024 * 4 + 1024 * 2 == 6144  # fp32 core output + bf16 weight
    assert gate.bytes_read_per_gpu == 1024 * (2 + 4) == 6144  # bf16 gate + fp32 normed output
    assert gate.bytes_written_per_gpu == 1024 * 2 == 2048
