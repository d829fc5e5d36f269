"""DeepSeek-V4 against hand arithmetic from its reference inference/model.py and DeepSeek's published sizes.

Decode of one token after c = 4096 cached tokens (W = 128 window): a sliding-only layer attends
min(4097, 128) = 128 keys; a ratio-4 layer adds min(floor(4097/4), index_topk) compressed entries; a
ratio-128 layer adds floor(4097/128) = 32. Every pair costs 2*h*(d + d) FLOPs (one d-dim latent is key
and value).
"""

from __future__ import annotations

from typing import Any

import pytest

from model_compute_sim.references import find_model, to_plain
from model_compute_sim.simulator.simulate import simulate


def cfg(name: str) -> dict[str, Any]:
    entry = find_model(name)
    assert entry is not None
    c = to_plain(entry.config)
    return c.get("text_config", c)


@pytest.mark.parametrize("name", ["deepseek-v4-flash", "deepseek-v4-pro"])
def test_decode_attention_core_closed_form(name: str) -> None:
    k = cfg(name)
    n, h, d, w, topk = k["num_hidden_layers"], k["num_attention_heads"], k["head_dim"], 128, k["index_topk"]
    c = 4096
    per_ratio = {0: w, 4: w + min((c + 1) // 4, topk), 128: w + (c + 1) // 128}
    pairs = sum(per_ratio[r] for r in k["compress_ratios"][:n])
    r = simulate(model=name, batch_size=1, seq_len=1, context_len=c)
    assert r.by_category["attention_core"].flops == 2 * pairs * h * (d + d)


def test_flash_decode_projections_indexer_and_hyper_connections_closed_form() -> None:
    k = cfg("deepseek-v4-flash")
    H, h, d, ql, ol, g = (
        k[x] for x in ("hidden_size", "num_attention_heads", "head_dim", "q_lora_rank", "o_lora_rank", "o_groups")
    )
    ih, idim, hc = k["index_n_heads"], k["index_head_dim"], k["hc_mult"]
    ratios = k["compress_ratios"][: k["num_hidden_layers"]]
    c = 4096
    base = 2 * H * ql + 2 * ql * h * d + 2 * H * d + 2 * h * d * ol + 2 * g * ol * H  # wq_a, wq_b, wkv, wo_a, wo_b
    compressor = {0: 0, 4: 2 * 2 * H * (2 * d), 128: 2 * 2 * H * d}  # wkv + wgate, overlapping at ratio 4
    proj = sum(base + compressor[r] for r in ratios)
    indexer = 2 * ql * ih * idim + 2 * H * ih + 2 * 2 * H * (2 * idim) + 2 * ih * idim * ((c + 1) // 4)
    mix = (2 + hc) * hc
    hyper = len(ratios) * 2 * (2 * hc * H * mix) + 2 * hc * H * hc  # two halves per layer, then the head
    r = simulate(model="deepseek-v4-flash", batch_size=1, seq_len=1, context_len=c)
    assert r.by_category["attention_proj"].flops == proj
    assert r.by_category["attention_indexer"].flops == indexer * ratios.count(4)
    assert r.by_category["hyper_connection"].flops == hyper


@pytest.mark.parametrize(
    ("name", "total", "active"),
    [("deepseek-v4-flash", 284e9, 13e9), ("deepseek-v4-pro", 1.6e12, 49e9)],
)
def test_parameter_counts_match_published_sizes(name: str, total: float, active: float) -> None:
    """DeepSeek's model cards: V4-Flash 284B total / 13B activated, V4-Pro 1.6T / 49B."""
    m = simulate(model=name, seq_len=1).model
    assert abs(m.params_total - total) / total < 0.02
    assert abs(m.params_active_per_token - active) / active < 0.07


def test_prefill_is_causal_and_compressed_entries_complete_only() -> None:
    """Prefill of 8 tokens, ratio 4 / 128 layers: entries appear once 4 (128) tokens are in."""
    k = cfg("deepseek-v4-flash")
    n, h, d = k["num_hidden_layers"], k["num_attention_heads"], k["head_dim"]
    s = 8
    window = s * (s + 1) // 2  # every key within W = 128
    comp4 = sum((p + 1) // 4 for p in range(s))  # 0,0,0,1,1,1,1,2 -> 6
    assert comp4 == 6
    pairs = sum(window + (comp4 if r == 4 else 0) for r in k["compress_ratios"][:n])
    r = simulate(model="deepseek-v4-flash", seq_len=s)
    assert r.by_category["attention_core"].flops == 2 * pairs * h * (d + d)


def test_routed_experts_are_costed_in_the_checkpoint_expert_dtype() -> None:
    """DeepSeek-V4 stores routed experts in fp4 (config expert_dtype) beside fp8 block-quantised weights.

    fp4 experts are FP4 E2M1 with one UE8M0 scale per 32 (reference model.py float4_e2m1fn_x2; vLLM's
    deepseek_v4 runs them with its MXFP4 MoE method): 0.5 + 1/32 B per weight. Without expert_dtype the
    experts are fp8 with one fp32 scale per 128 x 128 block: 1 + 4/16384 B. A fp4-expert checkpoint
    stores the fp8 block scales as UE8M0 (1 B, vLLM deepseek_v4 loader): 1 + 1/16384 B.

    Resident routed-expert bytes, tp=ep=1: 43 MoE layers x 256 experts x 3*4096*2048 parameters
    = 277,025,390,592 parameters: 147,169,738,752 B in mxfp4, 277,093,023,744 B in fp8 blocks.
    """
    k = cfg("deepseek-v4-flash")
    n, e, H, i = k["num_hidden_layers"], k["n_routed_experts"], k["hidden_size"], k["moe_intermediate_size"]
    params = n * e * 3 * H * i
    assert params == 277_025_390_592
    assert params * (0.5 + 1 / 32) == 147_169_738_752
    assert params * (1 + 4 / 16384) == 277_093_023_744
    as_fp8 = {key: v for key, v in k.items() if key != "expert_dtype"}
    fp4 = simulate(config=k, batch_size=1, seq_len=1, context_len=1024)
    fp8 = simulate(config=as_fp8, batch_size=1, seq_len=1, context_len=1024)
    assert any("routed_experts mxfp4" in a for a in fp4.assumptions)
    assert fp4.by_category["moe_experts"].flops == fp8.by_category["moe_experts"].flops

    # per op: the expert GEMMs' weight bytes go 1 + 4/16384 -> 0.53125 B per weight (same experts
    # touched); the shared expert stays fp8, its block scales 4 B -> 1 B (UE8M0)
    def op_rows(c: dict[str, Any]) -> dict[str, Any]:
        groups = simulate(config=c, context_len=1024, detail="ops", limit=1000).layer_groups or []
        return {r.name: r for r in groups[0].ops or []}

    rows4, rows8 = op_rows(k), op_rows(as_fp8)
    for name in ("experts.gate_up_proj", "experts.down_proj"):
        ratio = (0.5 + 1 / 32) / (1 + 4 / 16384)
        assert rows4[name].weight_bytes_per_gpu == pytest.approx(ratio * rows8[name].weight_bytes_per_gpu, rel=1e-9)
    shared = [n for n in rows4 if n.startswith("shared_experts.")]
    assert shared
    for name in shared:
        ratio = (1 + 1 / 16384) / (1 + 4 / 16384)
        assert rows4[name].weight_bytes_per_gpu == pytest.approx(ratio * rows8[name].weight_bytes_per_gpu, rel=1e-12)
