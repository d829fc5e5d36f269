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
        assert o[name].weight_bytes_per_gpu == h * lat * 1, name  # fp8
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
