"""Kimi-K3 (model_type kimi_k3 around a kimi_linear text config): every K3 operator against a closed form
written here from the reference code, and the parameter count against the config, term by term.

transformers has no kimi_k3, so no FlopCounterMode golden exists. The references (read, not copied):
vLLM's kimi_k3 model (KimiMoE, KimiMLAAttention, KimiDecoderLayer._pre_attn_norm / _post_attn_norm,
KimiLinearModel.forward), the pure-PyTorch reference of its attn_res op, and Moonshot's
modeling_kimi_linear.py (SituAndMul, KimiSparseMoeBlock, KimiDeltaAttention, _forward_attn_residual).

The config (fixtures/configs/corpus/moonshotai--Kimi-K3.json, text_config): hidden H = 7168, 93 layers
(full_attn_layers 1-indexed [4, 8, ..., 92, 93]: 24 MLA, the other 69 KDA), first_k_dense_replace 1 (layer 0
a dense MLP of 33792, layers 1..92 MoE), 896 experts top-16, moe_intermediate_size I = 3072, 2 shared experts
(width 6144), routed_expert_hidden_size L = 3584, KDA 96 heads x 128, MLA 96 heads, q_lora 1536, kv_lora 512,
qk 128 + 64, v 128, attn_res_block_size 12, vocab 163840, untied head.
"""

from __future__ import annotations

from typing import Any

import pytest

from model_compute_sim.errors import ConfigError, NotModelledError
from model_compute_sim.references import find_model, to_plain
from model_compute_sim.simulator.simulate import simulate

H, L_LAT, E, K, I, V = 7168, 3584, 896, 16, 3072, 163840
HEADS, D = 96, 128
HD = HEADS * D  # 12288
T = 8  # decode: 8 sequences x 1 new token
DECODE = {"batch_size": 8, "seq_len": 1, "context_len": 4096}


def _k3_config() -> dict[str, Any]:
    entry = find_model("kimi-k3")
    assert entry is not None
    return dict(to_plain(entry.config))


def _decode(**kw: Any) -> Any:
    return simulate(model="kimi-k3", detail="ops", **DECODE, **kw)


def _ops(r: Any, layer: int) -> dict[str, Any]:
    g = next(g for g in r.layer_groups if layer in g.layers)
    return {o.name: o for o in g.ops}


def _sources(layer: int, block: int = 12) -> tuple[int, int]:
    """(sources before the mixer, before the feed-forward block) of 0-based `layer`, from vLLM's
    KimiDecoderLayer: prev_valid_blocks = cdiv(layer, block); the pre-mixer op sees those blocks plus the
    partial sum; the pre-feed-forward op sees prev_valid_blocks + is_block_write_layer blocks plus the sum."""
    closed = -(-layer // block)
    write = 1 if layer % block == 0 else 0
    return closed + 1, closed + write + 1


def test_attention_residual_source_counts_by_hand() -> None:
    """Sum over the 93 layers of ceil(i/12): i = 1..12 -> 1 (12 layers), ..., 73..84 -> 7, 85..92 -> 8
    (8 layers): 12*(1+2+...+7) + 8*8 = 336 + 64 = 400. Pre-mixer sources: 400 + 93 = 493; pre-feed-forward:
    400 + 8 block-closing layers (0, 12, ..., 84) + 93 = 501; after the last layer: ceil(93/12) = 8 blocks
    + 1 = 9. In all 493 + 501 + 9 = 1003."""
    assert sum(sum(_sources(i)) for i in range(93)) + 9 == 493 + 501 + 9 == 1003
    r = _decode()
    # scores 2*S*h and weighted sum 2*S*h per token and site: 4 * 8 * 7168 * 1003
    assert r.by_category["hyper_connection"].flops == 4 * T * H * 1003 == 230_064_128
    # vector: RMSNorm of every source (4 FLOPs per element), softmax over S (5 per score), the partial-sum
    # add (h per token) on 92 pre-mixer sites (not layer 0), 85 pre-feed-forward sites (not the 8
    # block-closing layers) and the output site: 178 adds
    vector = T * (4 * H * 1003 + 5 * 1003 + 178 * H)
    assert r.by_category["hyper_connection"].vector_flops == vector


@pytest.mark.parametrize("layer", [0, 1, 12, 13, 84, 92])
def test_attention_residual_ops_per_layer(layer: int) -> None:
    pre, post = _sources(layer)
    ops = _ops(_decode(), layer)
    assert ops["self_attention_res"].flops == 4 * T * H * pre
    assert ops["mlp_res"].flops == 4 * T * H * post
    pre_add = H if layer > 0 else 0  # the previous layer's feed-forward output joins the partial sum
    post_add = H if layer % 12 else 0  # a block-closing layer restarts the partial sum at the mixer output
    assert ops["self_attention_res"].vector_flops_per_gpu == T * (4 * H * pre + 5 * pre + pre_add)
    assert ops["mlp_res"].vector_flops_per_gpu == T * (4 * H * post + 5 * post + post_add)
    # attention residuals replace the residual adds; the sublayer norms stay (fused into attn_res in vLLM)
    assert "attn_residual_add" not in ops and "mlp_residual_add" not in ops
    assert "input_layernorm" in ops and "post_attention_layernorm" in ops


def test_output_attention_residual_before_the_final_norm() -> None:
    r = _decode()
    names = [o.name for o in r.head_tail_ops]
    out = next(o for o in r.head_tail_ops if o.name == "output_attn_res")
    assert names.index("output_attn_res") < names.index("final_norm")
    assert out.flops == 4 * T * H * 9  # 8 closed blocks + the partial sum
    assert out.vector_flops_per_gpu == T * (4 * H * 9 + 5 * 9 + H)


def test_attention_residuals_on_a_small_block_by_hand() -> None:
    """Block size 2 over 5 layers, traced through vLLM's KimiDecoderLayer by hand: layer 0 pre 1 (the
    embedding alone), post 2 (it closed block 0); layer 1: 2, 2; layer 2 (closes block 1): 2, 3; layer 3:
    3, 3; layer 4 (closes block 2): 3, 4; output: cdiv(5, 2) = 3 blocks + 1 = 4. Sum 29."""
    cfg = _k3_config()
    text = cfg["text_config"]
    text.update(
        num_hidden_layers=5,
        attn_res_block_size=2,
        linear_attn_config={**text["linear_attn_config"], "kda_layers": [1, 2, 3, 5], "full_attn_layers": [4]},
    )
    r = simulate(config={**cfg, "text_config": text}, **DECODE)
    assert r.by_category["hyper_connection"].flops == 4 * T * H * 29


def test_mla_output_gate() -> None:
    """g_proj H -> 96*128 and a sigmoid gate (2 FLOPs per element) before o_proj, on the MLA layers
    (0-based 3, 7, ...: full_attn_layers is 1-indexed)."""
    ops = _ops(_decode(), 3)
    assert "kv_b_proj" in ops or "q_absorb_uk" in ops  # an MLA layer
    assert ops["g_proj"].flops == 2 * T * H * HD == 1_409_286_144
    assert ops["output_gate"].vector_flops_per_gpu == 2 * T * HD
    names = list(ops)
    assert names.index("output_gate") < names.index("o_proj")


def test_kda_full_rank_output_gate() -> None:
    """use_full_rank_gate: g_proj H -> 96*128 replaces g_a_proj / g_b_proj; the forget gate stays rank 128."""
    ops = _ops(_decode(), 1)
    assert ops["g_proj"].flops == 2 * T * H * HD
    assert "g_a_proj" not in ops and "g_b_proj" not in ops
    assert ops["f_a_proj"].flops == 2 * T * H * D
    assert ops["f_b_proj"].flops == 2 * T * D * HD


def test_latent_moe_and_situ() -> None:
    """KimiMoE: routed_expert_down_proj H -> L on every token, 16 experts of width I in the latent space
    (gate_up L -> 2I, down I -> L), the weighted combine in L, routed_expert_norm over L, routed_expert_up_proj
    L -> H; shared experts (2 x 3072) on the full hidden input. SiTU with activation_situ_linear_beta:
    11 vector FLOPs per element (formulas.SITU_LINEAR_FLOPS_PER_ELEMENT, counted in SituAndMul's forward)."""
    ops = _ops(_decode(), 1)
    assert ops["routed_expert_down_proj"].flops == 2 * T * H * L_LAT == 411_041_792
    assert ops["routed_expert_up_proj"].flops == 2 * T * L_LAT * H
    assert ops["experts.gate_up_proj"].flops == 2 * T * K * L_LAT * 2 * I
    assert ops["experts.down_proj"].flops == 2 * T * K * I * L_LAT
    assert ops["routed_expert_norm"].vector_flops_per_gpu == 4 * T * L_LAT
    assert ops["moe_combine"].vector_flops_per_gpu == 2 * T * K * L_LAT
    assert ops["experts.act_fn"].vector_flops_per_gpu == 11 * T * K * I
    assert ops["shared_experts.gate_proj"].flops == 2 * T * H * 2 * I
    assert ops["shared_experts.act_fn"].vector_flops_per_gpu == 11 * T * 2 * I
    assert ops["router"].flops == 2 * T * H * E
    dense = _ops(_decode(), 0)
    assert dense["mlp.gate_proj"].flops == 2 * T * H * 33792
    assert dense["mlp.act_fn"].vector_flops_per_gpu == 11 * T * 33792
    assert "router" not in dense


def _params() -> tuple[int, int]:
    """(total, active) written out from the modules of Moonshot's modeling_kimi_linear.py / vLLM kimi_k3."""
    # fmt: off
    kda = (
        3 * H * HD  # q_proj, k_proj, v_proj
        + H * HD  # g_proj (full-rank output gate)
        + H * HEADS  # b_proj
        + H * D + D * HD  # f_a_proj, f_b_proj (forget gate, rank 128)
        + HD * H  # o_proj
        + 3 * HD * 4  # q/k/v short convolutions, kernel 4, no bias
        + HEADS + HD + D  # A_log per head, dt_bias per channel, o_norm weight
    )
    mla = (
        H * 1536 + 1536 + 1536 * HEADS * 192  # q_a_proj, q_a_layernorm, q_b_proj (qk 128 + 64)
        + H * (512 + 64) + 512 + 512 * HEADS * (128 + 128)  # kv_a_proj_with_mqa, kv_a_layernorm, kv_b_proj
        + HEADS * 128 * H  # o_proj
        + H * HD  # g_proj (MLA output gate)
    )
    experts = E * 3 * L_LAT * I  # w1, w3 (gate, up) L -> I and w2 I -> L per expert
    moe_rest = H * E + 3 * H * 2 * I + 2 * H * L_LAT + L_LAT  # router, shared experts, latent projections, norm
    moe_rest += E  # the router's e_score_correction_bias (vLLM kimi_k3 KimiMoE: nn.Parameter(torch.empty(E)))
    # fmt: on
    dense = 3 * H * 33792
    per_layer = 2 * H + 4 * H  # input / post-attention norms; attn-res norms and h -> 1 projections (x2)
    total = 69 * kda + 24 * mla + 92 * (experts + moe_rest) + dense + 93 * per_layer
    total += 2 * V * H + H + 2 * H  # embedding, lm_head, final norm, output attn-res norm and projection
    active = total - 92 * (E - K) * 3 * L_LAT * I
    return total, active


def test_parameter_count_from_the_config() -> None:
    """Exact against the module-by-module count (the router's e_score_correction_bias, 896 per MoE layer, a
    buffer in transformers' Kimi-Linear, is a weight in the checkpoint and in vLLM: counted, 92 x 896 = 82,432)."""
    total, active = _params()
    assert (total, active) == (2_779_484_393_568 + 82_432, 105_363_935_328 + 82_432)
    info = simulate(model="kimi-k3", seq_len=1).model
    assert (info.params_total, info.params_active_per_token) == (total, active)


def test_parameter_count_matches_the_published_checkpoint_size() -> None:
    """Moonshot publishes no total / active figure in the config or the model files read here. What is
    published is the checkpoint: moonshotai/Kimi-K3 holds 1.56 TB (third-party inspection of the HF repo,
    read through the search corpus), with only the routed experts in mxfp4 (4 bits + one uint8 scale per
    32 weights = 4.25 bits) and everything else bf16 (quantization_config.ignore); the vision tower
    (27 layers of width 1024, about 0.4 B parameters) adds under 0.001 TB. Press reports before release
    said "more than 2.5 T parameters"."""
    total, _ = _params()
    routed = 92 * E * 3 * L_LAT * I
    checkpoint_bytes = routed * 4.25 / 8 + (total - routed) * 2
    assert checkpoint_bytes == pytest.approx(1.56e12, rel=0.004)
    assert total > 2.5e12
    # the simulator's own memory report on one GPU (no sharding): every weight of the text model
    assert simulate(model="kimi-k3", seq_len=1).memory.weights_bytes_per_gpu == pytest.approx(1.56e12, rel=0.004)


@pytest.mark.parametrize("shape", [DECODE, {"seq_len": 2048}, {"batch_size": 4, "seq_len": 512}])
def test_simulates_at_tp8_ep8(shape: dict[str, int]) -> None:
    r = simulate(model="kimi-k3", tp=8, ep=8, gpu="h200", **shape)
    assert r.totals.flops > 0 and r.memory.weights_bytes_per_gpu > 0
    assert r.model.attention.startswith("Kimi Delta Attention on 69 of 93 layers")
    assert any("attention residuals" in a for a in r.assumptions)
    assert any("SiTU" in a for a in r.assumptions)


def test_kimi_linear_refuses_an_activation_it_does_not_run() -> None:
    cfg = _k3_config()
    text = {**cfg["text_config"], "hidden_act": "gelu"}
    with pytest.raises(ConfigError, match=r"hidden_act 'gelu'.*known: \['silu', 'situ'\]"):
        simulate(config={**cfg, "text_config": text}, seq_len=1)


@pytest.mark.parametrize("key", ["attn_res_block_size", "routed_expert_hidden_size"])
def test_k3_keys_on_another_family_are_refused_by_name(key: str) -> None:
    """Only the Kimi-Linear reader knows these keys; any other family refuses them instead of ignoring them."""
    entry = find_model("deepseek-v3")
    assert entry is not None
    cfg = {**to_plain(entry.config), key: 12}
    with pytest.raises(NotModelledError, match=f"'{key}'"):
        simulate(config=cfg, seq_len=1)


def test_weights_per_gpu_routed_experts_fp4_rest_bf16() -> None:
    """tp 8, ep 8: quantization_config (mxfp4, compressed-tensors) ignores self_attn (MLA and, in this family,
    KDA: both are the layer's self_attn), shared_experts and mlp.*_proj, so only the routed experts are
    4-bit: 0.5 byte per weight plus one uint8 scale per group of 32 (group_size 32, scale_dtype uint8) =
    0.53125 B; vLLM builds the latent projections with quant_config=None (bf16)."""
    tp, hl = 8, HEADS // 8  # 12 heads per rank
    # fmt: off
    routed = (E // 8) * 3 * L_LAT * I * (0.5 + 1 / 32)  # 112 local experts
    moe = routed + (H * E + 3 * H * (2 * I // tp) + 2 * H * L_LAT + L_LAT) * 2  # router, shared, latent, norm
    moe += E * 2  # e_score_correction_bias in the model dtype (vLLM KimiMoE: torch.empty(E) under bf16)
    kda = (
        4 * H * (HD // tp)  # q, k, v, g_proj (column)
        + H * hl  # b_proj (column)
        + H * D + D * (HD // tp)  # f_a_proj (replicated), f_b_proj (column)
        + (HD // tp) * H  # o_proj (row)
        + 3 * (HD // tp) * 4 + D  # convs, o_norm
    ) * 2 + (hl + HD // tp) * 4  # A_log, dt_bias: float32 (KimiDeltaAttention torch.empty(..., dtype=torch.float32))
    mla = (
        H * 1536 + 1536 + 1536 * hl * 192  # q_a (replicated), q_a_layernorm, q_b (column)
        + H * 576 + 512 + 512 * hl * 256  # kv_a (replicated), kv_a_layernorm, kv_b (column)
        + hl * 128 * H + H * hl * 128  # o_proj (row), g_proj (column)
    ) * 2
    # fmt: on
    dense = 3 * H * (33792 // tp) * 2
    norms = 93 * 6 * H * 2  # input / post-attention norms, attn-res norms and projections
    embed = 2 * V * H // tp * 2  # embedding and LM head, vocab-parallel
    final_norm = H * 2
    expected = 92 * moe + 69 * kda + 24 * mla + dense + norms + embed + final_norm
    r = simulate(model="kimi-k3", tp=8, ep=8, **DECODE)
    assert r.memory.weights_bytes_per_gpu == expected
    assert any("routed_experts mxfp4" in a and "recurrent" in a.split("routed_experts")[0] for a in r.assumptions)
