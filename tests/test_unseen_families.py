"""Families no rule names: the generic path is exact or refuses by name, whatever the config adds or renames.

Each test is one class of silent wrong number found by attacking the generic path (tools/sweep_variants.py,
and configs of measured families renamed to a model_type nothing knows); the expected values are closed
forms stated in the test or the FlopCounterMode counts stored in tests/golden/sweep_*.json.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from model_compute_sim.errors import ConfigError, NotModelledError
from model_compute_sim.simulator.config import normalize
from model_compute_sim.simulator.config_keys import ACTIVATION_KEYS
from model_compute_sim.simulator.simulate import simulate
from model_compute_sim.simulator.spec import AttentionSpec, MlpSpec, MoeSpec

# the sweep test's conventions, compared categories, and references whose renamed copy is no check (every
# expert run on every token)
from tests.test_generic_path import LLAMA as GENERIC_LLAMA
from tests.test_sweep_transformers import COMPARED, DENSE_EXPERT_REFERENCES, _simulate

GOLDEN = Path(__file__).parent / "golden"
LLAMA = {**GENERIC_LLAMA, "model_type": "brand_new_family"}  # the generic-path tests' tiny Llama, unnamed


def _mlp(spec_cfg: dict[str, Any]) -> MlpSpec:
    mlp = normalize(spec_cfg).layers[0].first(MlpSpec)
    assert mlp is not None
    return mlp


def test_a_family_keeps_its_mlp_whatever_its_activation() -> None:
    """GPT-NeoX with hidden_act 'silu' still runs dense_h_to_4h / dense_4h_to_h (two matrices), Cohere with
    'gelu' still runs gate / up / down (three): the modeling code fixes the MLP, the activation only its
    element-wise work (tests/golden/sweep_variants.json: act_silu, act_gelu of every generic family).
    Prefill of T = 8 tokens, H = 64, I = 96, 2 layers: plain 2*T*(2*H*I)*2, gated 2*T*(3*H*I)*2."""
    t, h, i = 8, 64, 96
    # GPTNeoXConfig has no num_key_value_heads / rms_norm_eps (its attention is MHA, its norms LayerNorm)
    neox = {k: v for k, v in LLAMA.items() if k not in ("num_key_value_heads", "rms_norm_eps")}
    neox |= {"model_type": "gpt_neox", "hidden_act": "silu", "use_parallel_residual": True, "layer_norm_eps": 1e-5}
    assert simulate(config=neox, seq_len=t).by_category["mlp"].flops == 2 * t * 2 * h * i * 2
    cohere = {**LLAMA, "model_type": "cohere", "hidden_act": "gelu", "layer_norm_eps": 1e-5}
    assert simulate(config=cohere, seq_len=t).by_category["mlp"].flops == 2 * t * 3 * h * i * 2
    assert not _mlp(neox).gated and _mlp(cohere).gated


def test_an_unseen_family_spelling_its_activation_the_gpt2_way_is_not_guessed() -> None:
    """'activation_function' is the GPT-2 / CodeGen / GPT-J / OPT spelling: those MLPs are two-matrix whatever
    the activation, so silu spelled that way does not mean SwiGLU; 'hidden_act' silu does."""
    assert _mlp(LLAMA).gated
    gpt2ish = {k: v for k, v in LLAMA.items() if k != "hidden_act"} | {"activation_function": "silu"}
    with pytest.raises(NotModelledError, match="'activation_function'"):
        normalize(gpt2ish)


# plausible keys of families not yet written, each naming structure the generic path does not model
UNKNOWN_STRUCTURAL_KEYS: dict[str, Any] = {
    "use_mla": True,
    "lambda_std_dev": 0.1,  # DiffLlama: differential attention
    "lambda_init": 0.8,
    "use_alibi": True,
    "d_ff": 128,
    "dim_ff": 128,
    "ffn_dim_multiplier": 1.3,  # a width scalar, despite the non-structural "_multiplier" suffix
    "intermediate_size_scale": 2.0,
    "output_vocab": 100,
    "loop_count": 2,
    "num_loops": 2,
    "glu": False,
    "mixer_type": "mamba",
    "token_mixer": "conv",
    "sequence_mixer": "hyena",
    "hyena_order": 2,
    "retention_heads": 2,
    "sink_tokens": 4,
    "use_sinks": True,
    "num_registers": 4,
    "memory_size": 4,
    "mm_projector": "mlp",
    "attention_type": "linear",
    "norm_type": "layernorm",
    "attn_layer_period": 2,
    "layers_block_type": ["attention", "mamba"],
    "sliding_window_pattern": 2,
    "kv_lora_rank": 32,
    "mamba_d_state": 16,
    "conv_L_cache": 3,
    "linear_attn_config": {"num_heads": 4},
    "local_attention": True,
    "dual_chunk_attention_config": {"chunk_size": 8},
    "cross_attention_layers": [1],
    "global_attn_every_n_layers": 2,
    "full_attention_layers": [1],
    "nope_layers": [1],
    "kv_channels": 16,
    "num_query_groups": 2,
    "moe_num_active_experts": 2,
    "shared_expert_intermediate_size": 48,
    "embedding_size": 32,
    "post_attention_norm": True,
    "altup_num_inputs": 4,
    "use_differential": True,  # an unknown switch turned on
    "enable_sandwich": True,
}


@pytest.mark.parametrize("key", sorted(UNKNOWN_STRUCTURAL_KEYS))
def test_an_unknown_structural_key_is_refused_by_name(key: str) -> None:
    cfg = {**LLAMA, key: UNKNOWN_STRUCTURAL_KEYS[key]}
    with pytest.raises((NotModelledError, ConfigError)) as err:
        normalize(cfg)
    # the refusal names this key, or (kv_lora_rank) the key the feature it starts still needs
    assert f"'{key}'" in str(err.value) or (key == "kv_lora_rank" and "'qk_nope_head_dim'" in str(err.value))


def test_an_unseen_moe_must_say_whether_shared_experts_run() -> None:
    """HunYuanMoEV1Moe (transformers 5.24) adds a shared MLP no key announces: an unseen family's config
    silent on shared experts could be either, so it is refused; n_shared_experts = 0 says none run.
    Prefill of T = 8, H = 64, I = 32, top-2 of 8, 2 layers: experts 2*T*2*(3*H*I)*2, routers 2*T*H*8*2."""
    moe = {**LLAMA, "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 32}
    with pytest.raises(NotModelledError, match="'num_experts' describes routed experts but no key says"):
        normalize(moe)
    r = simulate(config={**moe, "n_shared_experts": 0}, seq_len=8)
    t, h, i = 8, 64, 32
    assert r.by_category["moe_experts"].flops == 2 * t * 2 * 3 * h * i * 2
    assert r.by_category["moe_router"].flops == 2 * t * h * 8 * 2
    assert "moe_shared" not in r.by_category or not r.by_category["moe_shared"].flops
    spec = normalize({**moe, "n_shared_experts": 1}).layers[0].first(MoeSpec)
    assert spec is not None and spec.shared_intermediate == 32


def test_a_moe_without_a_known_top_k_spelling_names_its_expert_key_and_candidates() -> None:
    """A named family (no generic key check) whose config spells top-k some unknown way: refused naming the
    expert key and the config's keys that may be its spelling, not 'config is missing num_experts_per_tok'."""
    cfg = {**LLAMA, "model_type": "qwen3_moe", "num_experts": 8, "moe_intermediate_size": 32, "num_activated": 2}
    with pytest.raises(NotModelledError) as err:
        normalize(cfg)
    assert "'num_experts'" in str(err.value) and "'num_activated'" in str(err.value)
    unseen = {**cfg, "model_type": "brand_new_family", "n_shared_experts": 0}
    with pytest.raises(NotModelledError, match="'num_activated'"):  # generic path: a structural-looking key
        normalize(unseen)


def _measured(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(id, record) of every measured config of a sweep json (families, or families' variants)."""
    out = []
    for mt, fam in doc["families"].items():
        if fam.get("status") == "measured":
            out.append((mt, fam))
        elif "status" not in fam:
            out += [(f"{mt}:{name}", rec) for name, rec in fam.items() if rec.get("status") == "measured"]
    return out


SWEEPS = [json.loads((GOLDEN / f).read_text()) for f in ("sweep_transformers.json", "sweep_variants.json")]


def _renamed_is_a_check(rec: dict[str, Any]) -> bool:
    """Whether the renamed config's reference counts are what the generic path must give. Not so for a variant
    that changed the family's activation: an unseen family's 'hidden_act' silu is read as SwiGLU
    (config_keys.mlp_gated: gated in every transformers 5.24 family whose default it is; the result says so,
    test_an_unseen_silu_mlp_is_costed_gated_and_says_so), so GPT-NeoX given silu has no unseen twin."""
    return rec["config"].get("model_type") not in DENSE_EXPERT_REFERENCES and not (
        set(rec.get("overrides", {})) & set(ACTIVATION_KEYS)
    )


# left out at collection (not skipped at run time): a skipped case would assert nothing
RECORDS = [(i, rec) for doc in SWEEPS for i, rec in _measured(doc) if _renamed_is_a_check(rec)]


@pytest.mark.parametrize("rid,rec", RECORDS, ids=[i for i, _ in RECORDS])
def test_a_measured_config_under_an_unseen_model_type_is_exact_or_refused_by_name(
    rid: str, rec: dict[str, Any]
) -> None:
    """Every config the sweeps measured, its model_type renamed: no family rule applies, so the generic path
    must reproduce the reference's counts or refuse naming a key (a family whose code runs work no key
    describes, refused by model_type when named, is then caught by a key or refused on the way)."""
    cfg = {**rec["config"], "model_type": "unseen_" + str(rec["config"].get("model_type"))}
    try:
        for ph in rec["phases"]:
            want = {k: v for k, v in ph["categories"].items() if k in COMPARED}
            assert _simulate(cfg, ph) == want, (rid, ph["phase"])
    except (NotModelledError, ConfigError) as e:
        assert re.search(r"'[A-Za-z_0-9]+'", str(e)), f"refusal names no key: {e}"


def test_an_unseen_silu_mlp_is_costed_gated_and_says_so() -> None:
    """The one inference the generic path makes from an activation, stated in the result: prefill of T = 8,
    H = 64, I = 96, 2 layers, gate/up/down: 2*T*(3*H*I)*2 FLOPs."""
    r = simulate(config=LLAMA, seq_len=8)
    assert r.by_category["mlp"].flops == 2 * 8 * 3 * 64 * 96 * 2
    assert any("MLP gated (gate/up/down) from activation 'silu'" in a for a in r.assumptions)


def test_renamed_records_leave_out_only_dense_expert_references_and_activation_variants() -> None:
    every = [rec for doc in SWEEPS for _, rec in _measured(doc)]
    left_out = [rec for rec in every if not _renamed_is_a_check(rec)]
    assert len(RECORDS) + len(left_out) == len(every) and len(RECORDS) > 1000
    for rec in left_out:
        assert rec["config"].get("model_type") in DENSE_EXPERT_REFERENCES or set(rec["overrides"]) & set(
            ACTIVATION_KEYS
        )


def test_an_unseen_family_windows_only_the_layers_layer_types_lists() -> None:
    """Qwen2's use_sliding_window = false keeps every layer full (its config still carries sliding_window);
    without layer_types the sliding layers are family code, so an unseen family is refused. Decode of one
    token over C = 100 cached, 4 layers of 4 heads x 16: full attention 4 * 2 * 2 * 4 * 16 * 101 FLOPs
    (QK^T and PV per head, dense convention)."""
    cfg = {**LLAMA, "num_hidden_layers": 4, "sliding_window": 8, "use_sliding_window": False}
    r = simulate(config=cfg, seq_len=1, context_len=100, attention_flops="dense")
    assert r.by_category["attention_core"].flops == 4 * 2 * 2 * 4 * 16 * 101
    with pytest.raises(NotModelledError, match="'sliding_window' describes a sliding window whose layers"):
        normalize({**cfg, "use_sliding_window": True, "max_window_layers": 2})
    with pytest.raises(NotModelledError, match="'use_sliding_window'"):
        normalize({**cfg, "layer_types": ["sliding_attention", "full_attention"] * 2})
    with pytest.raises(NotModelledError, match="'attention_chunk_size'"):
        normalize({**LLAMA, "attention_chunk_size": 8})
    listed = {**cfg, "use_sliding_window": True, "layer_types": ["sliding_attention", "full_attention"] * 2}
    windows = [layer.first(AttentionSpec) for layer in normalize(listed).layers]
    assert [a.window if a else "none" for a in windows] == [8, None, 8, None]


def _params(cfg: dict[str, Any]) -> int:
    return simulate(config=cfg, seq_len=1).model.params_total


def test_biases_a_family_rule_does_not_place_are_refused_by_name() -> None:
    """transformers 5.24 DeepSeek-V2 / Aria give the shared experts mlp_bias, ERNIE-4.5-MoE use_bias,
    DeepSeek-V3.2 ignores it (tests/golden/sweep_variants.json params_total): which MoE parts carry it is
    family code, not modelled, so refused rather than miscounted."""
    mla = {**LLAMA, "model_type": "deepseek_v3", "kv_lora_rank": 32, "q_lora_rank": 48, "qk_nope_head_dim": 16}
    mla |= {"qk_rope_head_dim": 8, "v_head_dim": 16, "n_routed_experts": 8, "num_experts_per_tok": 2}
    mla |= {"moe_intermediate_size": 32, "first_k_dense_replace": 1}
    normalize(mla)
    with pytest.raises(NotModelledError, match="'mlp_bias' on a MoE model"):
        normalize({**mla, "mlp_bias": True})


def test_family_parameters_follow_the_config_that_builds_them() -> None:
    """Apertus' XIELU activation holds alpha_p and alpha_n per MLP only when hidden_act is 'xielu'
    (ACT2FN[hidden_act]); Phi's qk_layernorm builds two nn.LayerNorm(head_dim) per layer, weight and bias.
    2 layers, head_dim 16: 2 * 2 = 4 activation scalars; 2 layers * 2 norms * 2 vectors * 16 = 128."""
    apertus = {**LLAMA, "model_type": "apertus", "hidden_act": "xielu"}
    assert _params(apertus) - _params({**apertus, "hidden_act": "silu"}) == 2 * 2
    phi = {**LLAMA, "model_type": "phi", "hidden_act": "gelu_new", "layer_norm_eps": 1e-5}
    assert _params({**phi, "qk_layernorm": True}) - _params(phi) == 2 * 2 * 2 * 16


def test_a_window_the_family_code_never_applies_is_refused_by_name() -> None:
    """transformers 5.24 LlamaAttention / DeepseekV3Attention never read a bare sliding_window (its cache and
    vLLM's cache config may), yet the Mistral rule windowed every layer: a Llama config with sliding_window 8
    was costed as windowed. Mistral's own attention windows every layer: still modelled."""
    llama = {**LLAMA, "model_type": "llama", "sliding_window": 8}
    with pytest.raises(NotModelledError, match="'sliding_window' describes a sliding window that model_type"):
        normalize(llama)
    mistral = normalize({**llama, "model_type": "mistral"})
    assert [layer.first(AttentionSpec).window for layer in mistral.layers] == [8, 8]  # type: ignore[union-attr]


def test_chunked_layers_without_a_chunk_size_are_refused_by_name() -> None:
    """layer_types 'chunked_attention' with no attention_chunk_size was costed as full attention."""
    cfg = {**LLAMA, "layer_types": ["chunked_attention", "full_attention"]}
    with pytest.raises(ConfigError, match="'chunked_attention' layers but attention_chunk_size is missing"):
        normalize(cfg)
    chunked = normalize({**cfg, "attention_chunk_size": 8}).layers
    assert [layer.first(AttentionSpec).chunk for layer in chunked] == [8, None]  # type: ignore[union-attr]


def test_two_moe_layer_patterns_that_disagree_are_refused_by_name() -> None:
    """The MoE layers are read from the first pattern a config gives (mlp_layer_types, ..., decoder_sparse_step,
    ..., first_k_dense_replace): a second one saying otherwise was silently ignored. Agreeing ones run."""
    moe = {**LLAMA, "num_hidden_layers": 4, "num_experts": 8, "num_experts_per_tok": 2, "n_shared_experts": 0}
    with pytest.raises(NotModelledError, match="'first_k_dense_replace' describes a second MoE-layer pattern"):
        normalize({**moe, "decoder_sparse_step": 1, "first_k_dense_replace": 2})
    agree = normalize({**moe, "mlp_layer_types": ["dense", "sparse", "sparse", "sparse"], "first_k_dense_replace": 1})
    assert [layer.first(MoeSpec) is not None for layer in agree.layers] == [False, True, True, True]
