"""MoE weight bytes (expected distinct experts touched), expert FLOPs and the communication ops.

Closed forms from the configs:
- Qwen3-30B-A3B: hidden 2048, 48 layers, 32 / 4 heads of 128, 128 experts top-8 of width 768, bf16.
- DeepSeek-V3: hidden 7168, 256 experts top-8 of width 2048, 1 shared expert, fp8 weights.
Under uniform routing, T tokens each choosing k of E experts touch E (1 - (1 - k/E)^T) distinct experts
on average (the probability that one expert is missed by one token is 1 - k/E, independently per token);
a rank holding E/ep of them touches that number / ep. Their weights are read once per step.
"""

from __future__ import annotations

from typing import Any

import pytest

from model_compute_sim.simulator.simulate import simulate

QH, QE, QK, QI = 2048, 128, 8, 768


def touched(experts: int, k: int, tokens: int) -> float:
    return experts * (1 - (1 - k / experts) ** tokens)


def moe_rows(r: Any) -> dict[str, Any]:
    assert r.layer_groups is not None
    for g in r.layer_groups:
        if "moe" in g.label:
            assert g.ops is not None
            return {o.name: o for o in g.ops}
    raise AssertionError("no MoE layer group")


@pytest.mark.parametrize("tokens", [1, 4, 16, 64, 512])
def test_qwen3_moe_expert_weight_bytes_follow_expected_experts_touched(tokens: int) -> None:
    r = simulate("qwen3-30b-a3b", batch_size=tokens, seq_len=1, context_len=100, gpu="h100", detail="ops")
    rows = moe_rows(r)
    n = touched(QE, QK, tokens)
    up, down = rows["experts.gate_up_proj"], rows["experts.down_proj"]
    assert up.weight_bytes_per_gpu == pytest.approx(n * QH * 2 * QI * 2, rel=1e-9)
    assert down.weight_bytes_per_gpu == pytest.approx(n * QI * QH * 2, rel=1e-9)
    # routed-expert FLOPs 6 T k H I whatever the routing
    assert up.flops + down.flops == 6 * tokens * QK * QH * QI
    # bytes: weights touched + activations in / out of the T k token-expert rows
    assert up.bytes_read_per_gpu == pytest.approx(n * QH * 2 * QI * 2 + tokens * QK * QH * 2, rel=1e-9)
    assert up.bytes_written_per_gpu == pytest.approx(tokens * QK * 2 * QI * 2, rel=1e-9)
    assert down.bytes_written_per_gpu == pytest.approx(tokens * QK * QH * 2, rel=1e-9)
    moe = r.by_category["moe_experts"]
    assert moe.bytes_per_gpu == pytest.approx(
        48 * (n * 3 * QH * QI * 2 + tokens * QK * (QH + 2 * QI + QI + QH) * 2), rel=1e-9
    )


def test_one_token_touches_exactly_top_k_experts() -> None:
    rows = moe_rows(simulate("qwen3-30b-a3b", batch_size=1, seq_len=1, context_len=10, detail="ops"))
    assert rows["experts.gate_up_proj"].weight_bytes_per_gpu == pytest.approx(8 * QH * 2 * QI * 2, rel=1e-12)


@pytest.mark.parametrize(("wd", "b"), [("fp8", 1.0), ("fp4", 0.5), ("int4", 0.5), ("bf16", 2.0)])
def test_expert_weight_bytes_per_dtype(wd: str, b: float) -> None:
    rows = moe_rows(simulate("qwen3-30b-a3b", batch_size=16, seq_len=1, context_len=10, weight_dtype=wd, detail="ops"))
    assert rows["experts.down_proj"].weight_bytes_per_gpu == pytest.approx(touched(QE, QK, 16) * QI * QH * b, rel=1e-9)
    # the attention projections follow the given weight dtype too; the router stays bf16
    assert rows["q_proj"].weight_bytes_per_gpu == QH * 32 * 128 * b
    assert rows["router"].weight_bytes_per_gpu == QH * QE * 2


def test_expert_parallel_rank_touches_its_share() -> None:
    # tp 4 ep 4: each rank holds 32 experts and sees all 4 tokens' routing; 4 x 8 / 4 = 8 token-expert rows
    r = simulate("qwen3-30b-a3b", batch_size=4, seq_len=1, context_len=100, tp=4, ep=4, gpu="h100", detail="ops")
    rows = moe_rows(r)
    n = touched(QE, QK, 4) / 4
    up = rows["experts.gate_up_proj"]
    assert up.weight_bytes_per_gpu == pytest.approx(n * QH * 2 * QI * 2, rel=1e-9)
    assert up.flops_per_gpu == 2 * 8 * QH * 2 * QI
    assert up.shape_in[0] == [8, QH]
    # all-to-all dispatch / combine: each rank sends (ep-1)/ep of its tokens' top-k copies,
    # T / tp = 1 token per rank here: 1 x 8 x 2048 x 2 B x 3/4 = 24,576 B each way
    for step in ("moe_dispatch_alltoall", "moe_combine_alltoall"):
        assert rows[step].communication_bytes_per_gpu == 1 * 8 * QH * 2 * 3 / 4
        assert rows[step].roofline_time_us == pytest.approx(24576 / 450e9 * 1e6, abs=0.0051)
    # the ring all-reduces after attention and after the MoE block: 2 (n-1)/n x T H 2 B, n = 4
    assert rows["attn_allreduce"].communication_bytes_per_gpu == 2 * 3 / 4 * 4 * QH * 2
    assert rows["moe_allreduce"].communication_bytes_per_gpu == 2 * 3 / 4 * 4 * QH * 2


def test_deepseek_v3_decode_ep8_alltoall_and_fp8_experts() -> None:
    r = simulate("deepseek-v3", batch_size=64, seq_len=1, context_len=100, tp=8, ep=8, gpu="h100", detail="ops")
    rows = moe_rows(r)
    # 64 tokens / tp 8 = 8 tokens per rank x top-8 x 7168 x 2 B = 917,504 B buffer; (8-1)/8 of it leaves
    assert rows["moe_dispatch_alltoall"].communication_bytes_per_gpu == 917_504 * 7 / 8
    assert rows["moe_combine_alltoall"].communication_bytes_per_gpu == 917_504 * 7 / 8
    for name in ("moe_dispatch_alltoall", "moe_combine_alltoall", "attn_allreduce", "moe_allreduce"):
        assert rows[name].peak_dtype == "comm" and rows[name].bound == "communication", name
    assert rows["attn_allreduce"].communication_bytes_per_gpu == 2 * 7 / 8 * 64 * 7168 * 2
    # fp8 expert weights: expected experts touched by 64 tokens, 32 of 256 local, 1 B per parameter plus
    # one fp32 scale per 128 x 128 block (weight_block_size [128, 128]): 1 + 4/16384 B
    fp8 = 1 + 4 / 16384
    n = touched(256, 8, 64) / 8
    assert rows["experts.gate_up_proj"].weight_bytes_per_gpu == pytest.approx(n * 7168 * 4096 * fp8, rel=1e-9)
    assert rows["experts.down_proj"].weight_bytes_per_gpu == pytest.approx(n * 2048 * 7168 * fp8, rel=1e-9)
    # the shared expert: column / row parallel over tp 8 (width 2048 / 8 = 256), fp8
    assert rows["shared_experts.gate_proj"].weight_bytes_per_gpu == pytest.approx(7168 * 256 * fp8, rel=1e-12)
    assert rows["shared_experts.down_proj"].flops_per_gpu == 2 * 64 * 256 * 7168
    # router: bf16, replicated
    assert rows["router"].weight_bytes_per_gpu == 7168 * 256 * 2
    assert rows["router"].flops_per_gpu == 2 * 64 * 7168 * 256
    # total communication: per MoE layer 2 all-to-alls + 2 all-reduces, per dense layer 2 all-reduces,
    # + the embedding's all-reduce (vocab-parallel)
    ar = 2 * 7 / 8 * 64 * 7168 * 2
    a2a = 917_504 * 7 / 8
    comm = 58 * (2 * a2a + 2 * ar) + 3 * 2 * ar + ar
    assert r.totals.communication_bytes_per_gpu == pytest.approx(comm, rel=1e-12)


def test_dp_attention_with_ep_alltoall_has_no_allreduce() -> None:
    # tp 1 dp 8 ep 8: 64 sequences, 8 per rank; each rank dispatches its 8 tokens' top-8 copies
    r = simulate("deepseek-v3", batch_size=64, seq_len=1, context_len=100, tp=1, dp=8, ep=8, detail="ops")
    rows = moe_rows(r)
    assert rows["moe_dispatch_alltoall"].communication_bytes_per_gpu == 8 * 8 * 7168 * 2 * 7 / 8
    assert "attn_allreduce" not in rows and "moe_allreduce" not in rows


def test_dp_without_ep_gathers_tokens() -> None:
    # tp 1 dp 4 ep 1: experts replicated; all-gather + reduce-scatter of the 16 tokens: (n-1)/n x 16 x H x 2 B
    r = simulate("qwen3-30b-a3b", batch_size=16, seq_len=1, context_len=10, tp=1, dp=4, ep=1, detail="ops")
    rows = moe_rows(r)
    assert rows["moe_allgather"].communication_bytes_per_gpu == 3 / 4 * 16 * QH * 2
    assert rows["moe_reducescatter"].communication_bytes_per_gpu == 3 / 4 * 16 * QH * 2
