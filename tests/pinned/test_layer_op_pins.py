"""Ops of layer variants the plain-decoder pins do not reach, against closed forms from the configs:
the latent MoE's projections (Nemotron-3 Super), the attention output gate and the shared-expert gate
(Qwen3-Next), the DSA indexer's score op (DeepSeek-V3.2), and the replicated norms under tp.
"""

from __future__ import annotations

from typing import Any

from model_compute_sim.simulator.simulate import simulate


def _ops(r: Any, label: str | None = None) -> dict[str, Any]:
    assert r.layer_groups is not None
    group = next(g for g in r.layer_groups if label is None or g.label == label)
    assert group.ops is not None
    return {o.name: o for o in group.ops}


def test_latent_moe_projections() -> None:
    # NVIDIA-Nemotron-3-Super-120B-A12B: hidden 4096, moe_latent_size 1024, 512 experts of width 2688 (relu2:
    # up / down), top-22, fp8 weights. Tokens enter the experts through fc1 (4096 -> 1024) and leave through
    # fc2 (1024 -> 4096); the experts work in the latent width.
    t, h, lat, i, k = 16, 4096, 1024, 2688, 22
    o = _ops(simulate("nemotron-3-super-120b-a12b", batch_size=1, seq_len=t, detail="ops"), "moe")
    for name in ("experts.fc1_latent_proj", "experts.fc2_latent_proj"):
        assert o[name].category == "moe_experts", name
        assert o[name].flops_per_gpu == 2 * t * h * lat, name  # 134,217,728
        assert o[name].weight_bytes_per_gpu == h * lat * 1 + 8, name  # fp8, FP32 weight_scale and input_scale
    assert o["experts.gate_up_proj"].flops_per_gpu == 2 * t * k * lat * i  # up only (relu2)
    assert o["experts.down_proj"].flops_per_gpu == 2 * t * k * i * lat


def test_qwen3_next_output_gate_and_shared_expert_gate() -> None:
    # Qwen3-Next-80B-A3B: full-attention layers gate the attention output per element (sigmoid(g) * o:
    # 2 FLOPs per element of 16 heads x 256); every MoE block has a shared expert whose output is scaled by
    # sigmoid(shared_expert_gate(x)), a hidden 2048 -> 1 projection counted with the shared expert
    t = 16
    r = simulate("qwen3-next-80b-a3b", batch_size=1, seq_len=t, detail="ops")
    full = _ops(r, "full+moe")
    assert full["output_gate"].vector_flops_per_gpu == 2 * t * 16 * 256
    assert full["output_gate"].category == "elementwise"
    for label in ("full+moe", "gdn+moe"):
        gate = _ops(r, label)["shared_expert_gate"]
        assert gate.category == "moe_shared" and gate.flops_per_gpu == 2 * t * 2048 * 1, label


def test_dsa_indexer_scores() -> None:
    # DeepSeek-V3.2 lightning indexer: index_n_heads 64, index_head_dim 128, index_topk 2048. Score of query t
    # and key s: sum over heads j of w_tj * ReLU(q_tj . k_s): 2 x 128 FLOPs for the dot product and 2 for
    # the weighting and sum, per head and causal pair. Two sequences decoding one token over 4095 cached:
    # 4096 pairs each.
    pairs, heads, d, t = 2 * 4096, 64, 128, 2
    o = _ops(simulate("deepseek-v3.2", batch_size=2, seq_len=1, context_len=4095, detail="ops"))["indexer.scores"]
    assert o.flops_per_gpu == pairs * heads * (2 * d + 2)  # 135,266,304
    # reads q (64 heads x 128) and the head weights (64) of each new token, bf16, and the indexer keys of
    # every position (8192 x 128, bf16); writes the top-2048 indices (int32) and the new tokens' keys
    assert o.bytes_read_per_gpu == t * heads * (d + 1) * 2 + 2 * 4096 * d * 2
    assert o.bytes_written_per_gpu == t * 2048 * 4 + t * d * 2
    assert o.sharding == "replicated"


def test_norms_and_residuals_are_replicated_under_tp() -> None:
    o = _ops(simulate("llama-3.1-8b", batch_size=1, seq_len=16, tp=2, detail="ops"))
    for name in ("input_layernorm", "post_attention_layernorm", "attn_residual_add", "mlp_residual_add"):
        assert o[name].sharding == "replicated", name
        assert o[name].vector_flops_per_gpu == (4 if name.endswith("norm") else 1) * 16 * 4096, name


def test_collective_rows_carry_their_buffers_shape() -> None:
    # DeepSeek-V3 decode of 2 tokens at tp 8, ep 8: the attention output all-reduce moves [2, 7168]; each
    # rank dispatches its 2 / 8 tokens x top-8 experts = 2 token copies of width 7168
    r = simulate("deepseek-v3", batch_size=2, seq_len=1, context_len=10, tp=8, ep=8, detail="ops")
    o = _ops(r, "mla+moe")
    for name in ("attn_allreduce", "moe_dispatch_alltoall", "moe_combine_alltoall", "moe_allreduce"):
        assert (o[name].shape_in, o[name].shape_out) == ([[2, 7168]], [2, 7168]), name


def test_tp1_has_no_collectives_and_names_the_head_and_tail() -> None:
    r = simulate("llama-3.1-8b", batch_size=2, seq_len=1, context_len=10, detail="ops")
    assert r.head_tail_ops is not None
    assert [o.name for o in r.head_tail_ops] == ["embed_tokens", "final_norm", "lm_head"]
    assert not [o.name for o in _ops(r).values() if o.kind == "communication"]
    assert r.totals.communication_bytes_per_gpu == 0


def test_mla_expanded_attention_reads_the_expanded_keys_and_values() -> None:
    # DeepSeek-V3 prefill of 1024 tokens at tp 8 (16 heads per GPU), expanded MLA: the core reads q
    # (1024 x 16 x (128 + 64)) and the up-projected K and V of every position (1024 x 16 x (128 + 64 + 128)),
    # bf16; writes its output (1024 x 16 x 128) and the new tokens' latent cache (1024 x (512 + 64))
    t, h = 1024, 16
    a = _ops(simulate("deepseek-v3", batch_size=1, seq_len=t, tp=8, ep=8, detail="ops"))["attention"]
    assert a.bytes_read_per_gpu == t * h * 192 * 2 + t * h * 320 * 2
    assert a.bytes_written_per_gpu == t * h * 128 * 2 + t * 576 * 2
    # a mixed step runs both paths, each row named by its path
    reqs = [{"count": 1, "new_tokens": 512, "cached_tokens": 0}, {"count": 2, "new_tokens": 1, "cached_tokens": 100}]
    names = _ops(simulate("deepseek-v3", requests=reqs, tp=8, ep=8, detail="ops"))
    assert "attention_expanded" in names and "attention_absorbed" in names and "attention" not in names


def test_latent_projection_is_replicated() -> None:
    o = _ops(simulate("nemotron-3-super-120b-a12b", batch_size=1, seq_len=16, tp=2, detail="ops"), "moe")
    assert o["experts.fc1_latent_proj"].sharding == "replicated"
    assert o["experts.fc2_latent_proj"].sharding == "replicated"
