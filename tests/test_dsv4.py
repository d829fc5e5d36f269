"""DeepSeek-V4 against hand arithmetic from its reference inference/model.py and DeepSeek's published sizes.

Decode of one token after c = 4096 cached tokens (W = 128 window): a sliding-only layer attends
min(4097, 128) = 128 keys; a ratio-4 layer adds min(floor(4097/4), index_topk) compressed entries; a
ratio-128 layer adds floor(4097/128) = 32. Every pair costs 2*h*(d + d) FLOPs (one d-dim latent is key
and value).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from model_compute_sim.errors import ConfigError
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


def _quantized(ignore: list[str]) -> dict[str, Any]:
    k = cfg("deepseek-v4-flash")
    return {**k, "quantization_config": {**k["quantization_config"], "ignore": ignore}}


def _ops_and_resident(c: dict[str, Any]) -> tuple[dict[str, Any], float]:
    r = simulate(config=c, batch_size=1, seq_len=1, context_len=1024, detail="ops", limit=1000)
    groups = r.layer_groups or []
    rows = {o.name: o for g in groups for o in g.ops or []}
    return rows, r.memory.weights_bytes_per_gpu


def test_output_projection_and_indexer_take_their_own_weight_classes() -> None:
    """A checkpoint keeping wo_a / wo_b (or the indexer) in bf16 while the other attention weights are fp8.

    V4-Flash: 64 heads x head_dim 512, o_groups 8, o_lora_rank 1024, hidden 4096; fp8 128x128 blocks with
    UE8M0 scales (fp4-expert checkpoint): 1 + 1/16384 B per weight, bf16 2 B. tp = 1.
    wo_a: 64*512*1024 = 33,554,432 weights: 33,556,480 B in fp8 blocks, 67,108,864 B in bf16.
    wo_b: 8*1024*4096 = 33,554,432 weights likewise. wq_a (4096 x 1024 = 4,194,304) stays fp8: 4,194,560 B.
    Resident: 43 layers x 67,108,864 wo weights move from 1 + 1/16384 to 2 B:
    2,885,681,152 x (1 - 1/16384) = 2,885,505,024 B more.
    Indexer (21 ratio-4 layers): wq_b 1024*64*128 = 8,388,608, weights_proj 4096*64 = 262,144, its compressor
    wkv + wgate 2*4096*256 = 2,097,152, ape 4*256 = 1024, norm 128: 10,749,056 weights per layer;
    21 x 10,749,056 x (1 - 1/16384) = 225,716,398.5... B more.
    """
    k = cfg("deepseek-v4-flash")
    assert (k["num_attention_heads"], k["head_dim"], k["o_groups"], k["o_lora_rank"]) == (64, 512, 8, 1024)
    assert (k["hidden_size"], k["q_lora_rank"], k["index_n_heads"], k["index_head_dim"]) == (4096, 1024, 64, 128)
    n = k["num_hidden_layers"]
    assert n == 43 and k["compress_ratios"][:n].count(4) == 21
    fp8 = 1 + 1 / 16384
    rows, resident = _ops_and_resident(k)
    assert rows["wo_a"].weight_bytes_per_gpu == 33_556_480
    assert rows["wo_b"].weight_bytes_per_gpu == 33_556_480
    assert rows["indexer.wq_b"].weight_bytes_per_gpu == pytest.approx(8_388_608 * fp8, rel=1e-12)

    out_rows, out_resident = _ops_and_resident(_quantized(["*.attn.wo_a", "*.attn.wo_b"]))
    assert out_rows["wo_a"].weight_bytes_per_gpu == 67_108_864
    assert out_rows["wo_b"].weight_bytes_per_gpu == 67_108_864
    assert out_rows["wq_a"].weight_bytes_per_gpu == 4_194_560
    assert out_rows["indexer.wq_b"].weight_bytes_per_gpu == rows["indexer.wq_b"].weight_bytes_per_gpu
    assert out_resident - resident == pytest.approx(2_885_505_024, abs=1e-3)

    ix_rows, ix_resident = _ops_and_resident(_quantized(["layers.*.attn.indexer"]))
    assert ix_rows["indexer.wq_b"].weight_bytes_per_gpu == 8_388_608 * 2
    assert ix_rows["indexer.weights_proj"].weight_bytes_per_gpu == 262_144 * 2
    assert ix_rows["indexer.compressor.wkv"].weight_bytes_per_gpu == 4096 * 256 * 2
    assert ix_rows["wo_a"].weight_bytes_per_gpu == 33_556_480
    assert ix_resident - resident == pytest.approx(21 * 10_749_056 * (1 - 1 / 16384), abs=1e-3)


@pytest.mark.parametrize(
    ("ignore", "named"),
    [
        (["*.attn.wo_a"], "['wo_a'] of the attention_out weights"),
        (["*.attn.attn_sink"], "['attn_sink'] is not a DeepSeek-V4 attention projection"),
        (["*.attn.compressor.ape"], "['ape'] is not a DeepSeek-V4 attention projection"),
        (["*.attn.indexer.wq_b"], "['wq_b'] of the attention_indexer weights"),
        (["*.attn.compressor"], "of the attention weights"),
        (["*.hc_attn_fn"], "['hc_attn_fn'] does not name a weight class"),
    ],
)
def test_unmappable_or_partial_attention_modules_are_refused_by_name(ignore: list[str], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        simulate(config=_quantized(ignore), batch_size=1, seq_len=1)
