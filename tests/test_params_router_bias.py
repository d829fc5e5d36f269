"""The aux-loss-free router's score-correction bias, counted where the serving engine holds it.

vLLM deepseek_v2.py DeepseekV2MoE.__init__: `if getattr(config, "topk_method", None) == "noaux_tc":
self.gate.e_score_correction_bias = nn.Parameter(torch.empty(config.n_routed_experts, dtype=torch.float32))`,
passed to FusedMoE as `e_score_correction_bias` and added to the sigmoid scores before the grouped top-k on
every step. transformers 5.24's DeepseekV3TopkRouter registers the same tensor as a buffer, so its
parameter count leaves it out (tests/test_params_golden.py adds the buffers, tools/golden_params.py
`weight_buffers`). Expected values below are hand arithmetic from the published configs.
"""

from __future__ import annotations

from typing import Any

import pytest

from model_compute_sim.references import find_model, to_plain
from model_compute_sim.simulator.simulate import simulate


def _config(name: str) -> dict[str, Any]:
    entry = find_model(name)
    assert entry is not None
    return to_plain(entry.config)


def _without(cfg: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in cfg.items() if k != key}


def _topk_bytes(layer: int, **kw: Any) -> float:
    """router_topk's weight bytes in the layer group holding `layer` (one GPU unless kw shards it)."""
    r = simulate(seq_len=1, detail="ops", limit=1000, **kw)
    group = next(g for g in r.layer_groups or [] if layer in g.layers)
    return next(o.weight_bytes_per_gpu for o in group.ops or [] if o.name == "router_topk")


def test_deepseek_v3_counts_one_fp32_bias_per_expert_and_moe_layer() -> None:
    """61 layers, first_k_dense_replace 3: 58 MoE layers x 256 routed experts = 14,848 parameters, 4 B each
    (fp32) = 59,392 B on every GPU (the router is replicated); a decode step reads all of them."""
    cfg = _config("deepseek-v3")
    assert (cfg["num_hidden_layers"], cfg["first_k_dense_replace"], cfg["n_routed_experts"]) == (61, 3, 256)
    shape: dict[str, Any] = dict(seq_len=1, tp=8)
    with_bias = simulate(config=cfg, **shape)
    without = simulate(config=_without(cfg, "topk_method"), **shape)  # vLLM builds no bias then
    assert with_bias.model.params_total - without.model.params_total == 58 * 256 == 14_848
    assert with_bias.model.params_active_per_token - without.model.params_active_per_token == 14_848
    resident = with_bias.memory.weights_bytes_per_gpu - without.memory.weights_bytes_per_gpu
    assert resident == 58 * 256 * 4 == 59_392
    step = with_bias.totals.weight_bytes_per_gpu - without.totals.weight_bytes_per_gpu
    assert step == 59_392


def test_the_top_k_op_reads_the_bias() -> None:
    """vLLM's grouped top-k (fused_moe grouped_topk / noaux_tc kernel) adds the bias to the scores: the
    router_topk op of a MoE layer reads 256 x 4 = 1,024 B of weights, nothing without the bias."""
    cfg = _config("deepseek-v3")
    assert _topk_bytes(3, config=cfg, tp=8) == 1024
    assert _topk_bytes(3, config=_without(cfg, "topk_method"), tp=8) == 0


@pytest.mark.parametrize(
    ("model", "layer", "moe_layers", "experts", "dtype_bytes", "key"),
    [
        ("kimi-k2", 1, 60, 384, 4, "topk_method"),  # 61 layers, first_k_dense_replace 1; deepseek_v2.py, fp32
        ("glm-5", 3, 75, 256, 4, "topk_method"),  # 78 layers, first_k_dense_replace 3; deepseek_v2.py, fp32
        ("minimax-m2.5", 0, 62, 256, 4, "use_routing_bias"),  # every layer MoE; minimax_m2.py, fp32
        ("step-3.7-flash", 3, 42, 288, 4, "use_moe_router_bias"),  # moe_layers_enum 3..44; step3p5.py, fp32
        ("deepseek-v4-flash", 3, 40, 256, 4, None),  # 43 MoE layers, the first 3 hash-routed (tid2eid, no bias)
        ("deepseek-v4-pro", 3, 58, 384, 4, None),  # 61 MoE layers, 3 hash-routed
        ("nemotron-3-super-120b-a12b", 1, 40, 512, 4, None),  # vLLM NemotronHMoE: always, fp32
        ("kimi-k3", 1, 92, 896, 2, None),  # vLLM KimiMoE: torch.empty(num_experts) in the model dtype (bf16)
    ],
)
def test_families_with_a_correction_bias(
    model: str, layer: int, moe_layers: int, experts: int, dtype_bytes: int, key: str | None
) -> None:
    """Each family's bias, from the config's MoE layers and experts: the top-k op of a MoE layer reads it, and
    with it the whole model holds moe_layers x experts more parameters than without."""
    assert _topk_bytes(layer, model=model) == experts * dtype_bytes
    cfg = _config(model)
    text = cfg.get("text_config", cfg)
    if key is not None:  # the families whose vLLM model builds the bias only when the config turns it on
        off = {**cfg, "text_config": _without(text, key)} if "text_config" in cfg else _without(cfg, key)
        delta = simulate(model=model, seq_len=1).model.params_total - simulate(config=off, seq_len=1).model.params_total
        assert delta == moe_layers * experts


def test_hash_routed_layers_carry_no_bias() -> None:
    """DeepSeek-V4's first num_hash_layers (3) MoE layers choose experts with tid2eid[input_ids]
    (transformers DeepseekV4HashRouter; vLLM builds no e_score_correction_bias there): their top-k op reads one
    tid2eid row of 6 int32 for the token instead (test_deepseek_v4_hash_layers_hold_tid2eid)."""
    for layer, want in ((0, 6 * 4), (2, 6 * 4), (3, 256 * 4), (42, 256 * 4)):
        assert _topk_bytes(layer, model="deepseek-v4-flash") == want, layer


def test_deepseek_v4_hash_layers_hold_tid2eid() -> None:
    """A hash-routed layer picks experts by tid2eid[token id] (transformers DeepseekV4HashRouter; vLLM deepseek_v4:
    gate.tid2eid = nn.Parameter(torch.zeros(vocab_size, num_experts_per_tok, dtype=torch.int32))): an int32
    table of 129,280 x 6 = 3,102,720 B per hash layer on every GPU, no correction bias. DeepSeek-V4-Flash's 3
    hash layers against the same config with num_hash_layers 0 (those layers then score-routed, with the
    256-expert fp32 bias): 3 x 3,102,720 - 3 x 1,024 B more resident, 3 x 256 parameters fewer (the table is
    an index, not a parameter). A step gathers one table row per token: 6 x 4 B per token."""
    cfg = _config("deepseek-v4-flash")
    assert (cfg["vocab_size"], cfg["num_experts_per_tok"], cfg["num_hash_layers"]) == (129280, 6, 3)
    hashed = simulate(config=cfg, seq_len=1, tp=8)
    scored = simulate(config={**cfg, "num_hash_layers": 0}, seq_len=1, tp=8)
    table = 129280 * 6 * 4
    assert table == 3_102_720
    assert hashed.memory.weights_bytes_per_gpu - scored.memory.weights_bytes_per_gpu == 3 * table - 3 * 1024
    assert scored.model.params_total - hashed.model.params_total == 3 * 256
    assert _topk_bytes(0, model="deepseek-v4-flash") == 6 * 4
    assert _topk_bytes(0, model="deepseek-v4-flash", batch_size=16) == 16 * 6 * 4


@pytest.mark.parametrize(
    ("extra", "params", "resident"),
    [
        ({}, 0, 0),
        ({"topk_method": "noaux_tc"}, 48 * 128, 48 * 128 * 4),  # DeepSeek-style score-correction bias, fp32
        ({"use_moe_router_bias": True}, 48 * 128, 48 * 128 * 4),  # Step's spelling
        ({"use_expert_bias": True}, 48 * 128, 48 * 128 * 4),  # LFM2-MoE's
        ({"moe_use_aux_free": True}, 48 * 128, 48 * 128 * 4),  # ERNIE's
        ({"router_bias": True}, 48 * 128, 48 * 128 * 2),  # an nn.Linear bias on the router, 16-bit
    ],
)
def test_generic_path_reads_the_router_bias_keys(extra: dict[str, Any], params: int, resident: int) -> None:
    """A model_type without a family rule (Qwen3-30B-A3B's config renamed: 48 MoE layers of 128 experts) gets
    the router bias its keys describe, not a silent zero."""
    base = {k: v for k, v in _config("qwen3-30b-a3b").items() if k != "architectures"}
    base["n_shared_experts"] = 0  # an unseen MoE must say whether shared experts run (config_keys.check_unseen_moe)
    plain = simulate(config={**base, "model_type": "my_moe"}, seq_len=1)
    r = simulate(config={**base, "model_type": "my_moe", **extra}, seq_len=1)
    assert r.model.params_total - plain.model.params_total == params
    assert r.memory.weights_bytes_per_gpu - plain.memory.weights_bytes_per_gpu == resident
