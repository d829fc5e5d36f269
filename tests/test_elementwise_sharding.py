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
