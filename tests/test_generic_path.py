"""The generic decoder path never guesses: an unknown model_type comes out exact or is refused by name.

tests/golden/golden_generic.json (tools/golden_generic.py) holds FlopCounterMode counts of the real
transformers 5.24 code for families the simulator has no rule for (gpt2, gpt_neox, phi, falcon, starcoder2,
olmo, bloom, mpt, ...). Every case must either match every tensor category exactly or raise
NotModelledError naming a key.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from model_compute_sim.errors import NotModelledError
from model_compute_sim.simulator.config import normalize
from model_compute_sim.simulator.config_keys import GENERIC_KEYS, NON_STRUCTURAL_KEYS, UNMODELLED_KEYS
from model_compute_sim.simulator.simulate import simulate
from model_compute_sim.simulator.spec import MlpSpec, MoeSpec
from tests.golden_runner import case_id, load, run, tensor_flops

GOLDEN, CASES = load("golden_generic.json")
# families the generic path must model exactly (a refusal here would be a regression)
MUST_BE_EXACT = {"gpt2", "gpt_neox", "phi", "falcon", "falcon_mqa_off", "starcoder2", "olmo", "olmo2", "granite"}
MUST_BE_EXACT |= {"cohere", "persimmon", "gpt_bigcode", "apertus", "arcee", "phi3", "olmoe", "ernie4_5_moe"}
# tools/golden_generic.py's categories predate the shared_mlp rule: there GraniteMoeSharedMoE.shared_mlp (its
# only GEMMs outside the known modules) lands in "other"; tools/sweep_transformers.py attributes it to moe_shared
SHARED_MLP_AS_OTHER = {"granitemoeshared"}
LLAMA = {
    "model_type": "llama",
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "intermediate_size": 96,
    "vocab_size": 128,
    "hidden_act": "silu",
    "rms_norm_eps": 1e-6,
}


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_generic_family_is_exact_or_refused_by_name(case: dict[str, Any]) -> None:
    try:
        r = run(case)
    except NotModelledError as e:
        assert case["family"] not in MUST_BE_EXACT, str(e)
        assert re.search(r"'[a-z_]+'", str(e)), f"refusal names no key: {e}"
        return
    cats = dict(case["categories"])
    if case["family"] in SHARED_MLP_AS_OTHER:
        cats["moe_shared"] = cats.pop("other")
    assert "other" not in cats, "transformers ran GEMMs outside known modules"
    assert tensor_flops(r) == cats
    assert any("no family rule" in a for a in r.assumptions) or case["model_type"] in ("gemma",)


def test_golden_generic_covers_the_exact_families() -> None:
    assert {c["family"] for c in CASES} >= MUST_BE_EXACT


def test_two_matrix_mlp_family_is_not_costed_as_gated() -> None:
    """GPT-NeoX: up/down only. mlp = 2 GEMMs of 2*T*H*I each (T=24, H=64, I=96), not three."""
    case = next(c for c in CASES if c["family"] == "gpt_neox" and c["phase"] == "prefill")
    r = run(case)
    t, h, i, layers = 24, 64, 96, 2
    assert r.by_category["mlp"].flops == layers * 2 * (2 * t * h * i)


@pytest.mark.parametrize("act", ["gelu", "gelu_pytorch_tanh", "relu2"])
def test_unseen_family_with_a_gelu_or_relu_activation_is_refused_not_guessed(act: str) -> None:
    """gelu_pytorch_tanh is two-matrix in StarCoder2 but gated in VaultGemma; relu2 plain in Nemotron, gated
    in BitNet. The same GPT-NeoX config under an unseen model_type must be refused, naming the activation."""
    case = next(c for c in CASES if c["family"] == "gpt_neox" and c["phase"] == "prefill")
    cfg = {**case["config"], "model_type": "someone_new", "hidden_act": act}
    with pytest.raises(NotModelledError, match=f"activation '{act}' runs a two-matrix MLP in some families"):
        normalize(cfg)


@pytest.mark.parametrize(
    ("key", "value", "feature"),
    [
        ("attn_layer_period", 8, "hybrid layer pattern"),
        ("hybrid_override_pattern", "M*M-", "Mamba/attention/MLP"),
        ("mamba_d_state", 128, "Mamba"),
        ("block_configs", [{"attention": {"no_op": True}}], "NAS"),
        ("zero_expert_num", 4, "zero-computation experts"),
        ("compress_ratios", [0, 4], "compressed sparse attention"),
        ("hc_mult", 4, "hyper-connections"),
    ],
)
def test_unmodelled_key_is_refused_by_name_for_any_family(key: str, value: Any, feature: str) -> None:
    for model_type in ("llama", "brand_new_family"):
        with pytest.raises(NotModelledError, match=re.escape(f"'{key}' describes") + ".*" + feature):
            normalize({**LLAMA, "model_type": model_type, key: value})


def test_unknown_structural_key_is_refused_and_harmless_keys_are_ignored() -> None:
    cfg = {**LLAMA, "model_type": "brand_new_family"}
    spec = normalize({**cfg, "bos_token_id": 1, "attention_dropout": 0.0, "foo_flag": True})
    assert spec.generic and any("foo_flag" in n for n in spec.notes)
    with pytest.raises(NotModelledError, match="'num_memory_layers'"):
        normalize({**cfg, "num_memory_layers": 4})
    with pytest.raises(NotModelledError, match=r"activation 'mish'"):
        normalize({**cfg, "hidden_act": "mish"})
    with pytest.raises(NotModelledError, match=r"'layer_types' describes layers of kind \['conv'\]"):
        normalize({**cfg, "layer_types": ["conv", "full_attention"]})


def test_moe_spellings_of_top_k_shared_experts_and_first_moe_layer() -> None:
    """ERNIE-4.5 / AFMoE spellings: moe_k, moe_num_shared_experts, num_dense_layers; Kimi's sampling top_k
    is never read as experts per token."""
    base = {**LLAMA, "model_type": "brand_new_moe", "moe_intermediate_size": 32, "num_hidden_layers": 4}
    spec = normalize({**base, "num_experts": 8, "moe_k": 2, "moe_num_shared_experts": 2, "num_dense_layers": 1})
    moe = [layer.first(MoeSpec) for layer in spec.layers]
    assert moe[0] is None and all(m is not None for m in moe[1:])
    assert moe[1] is not None and moe[1].top_k == 2 and moe[1].shared_intermediate == 2 * 32
    with pytest.raises(Exception, match="num_experts_per_tok"):
        normalize({**base, "num_experts": 8, "n_shared_experts": 0, "top_k": 50})


def test_registry_tables_do_not_overlap() -> None:
    assert not (set(UNMODELLED_KEYS) & GENERIC_KEYS)
    assert not (set(UNMODELLED_KEYS) & NON_STRUCTURAL_KEYS)
    assert not (GENERIC_KEYS & NON_STRUCTURAL_KEYS)


def test_per_layer_expert_counts_and_top_k() -> None:
    """Hunyuan-MoE style lists: layer 0 has 4 experts top-1, layer 1 has 8 experts top-2. Prefill of T = 8
    tokens, H = 64, I = 32: routed experts 6*T*H*I*(1 + 2), routers 2*T*H*(4 + 8)."""
    cfg = {**LLAMA, "model_type": "brand_new_moe", "moe_intermediate_size": 32}
    cfg |= {"num_experts": [4, 8], "moe_topk": [1, 2], "n_shared_experts": 0}
    r = simulate(config=cfg, seq_len=8)
    t, h, i = 8, 64, 32
    assert r.by_category["moe_experts"].flops == 6 * t * h * i * (1 + 2)
    assert r.by_category["moe_router"].flops == 2 * t * h * (4 + 8)


def _exaone4(**over: Any) -> dict[str, Any]:
    return {
        **LLAMA,
        "model_type": "exaone4",
        "num_hidden_layers": 4,
        "head_dim": 16,
        "sliding_window": 8,
        "sliding_window_pattern": 4,
        "layer_types": ["sliding_attention"] * 3 + ["full_attention"],
        "rope_theta": 10000.0,
        **over,
    }


def test_sliding_window_pattern_is_read_only_where_layer_types_spell_it_out() -> None:
    # every 4th layer full (transformers' Exaone4Config), and the "LLLG" spelling of released EXAONE-4 configs
    for pattern in (4, "LLLG"):
        layers = normalize(_exaone4(sliding_window_pattern=pattern)).layers
        assert [ly.mixers[0].window for ly in layers] == [8, 8, 8, None]
    with pytest.raises(NotModelledError, match="'sliding_window_pattern'"):
        normalize(_exaone4(sliding_window_pattern=2))  # disagrees with layer_types: refused, not guessed


def test_global_nope_families_rotate_sliding_layers_only() -> None:
    # Exaone4Attention / Cohere2Attention apply rope only on sliding layers (transformers 5.24)
    assert [ly.mixers[0].rotary_dim for ly in normalize(_exaone4()).layers] == [16, 16, 16, 0]
    no_window = _exaone4(sliding_window=None, sliding_window_pattern=0, layer_types=["full_attention"] * 4)
    assert [ly.mixers[0].rotary_dim for ly in normalize(no_window).layers] == [16] * 4
    cohere2 = {**_exaone4(), "model_type": "cohere2", "layer_norm_eps": 1e-5}
    assert [ly.mixers[0].rotary_dim for ly in normalize(cohere2).layers] == [16, 16, 16, 0]


def test_attention_out_bias_sets_the_output_projection_bias_alone() -> None:
    # Seed-OSS: q/k/v biased (attention_bias), o_proj not (attention_out_bias), SeedOssAttention in 5.24
    mixer = normalize({**LLAMA, "model_type": "seed_oss", "attention_bias": True, "attention_out_bias": False})
    attn = mixer.layers[0].mixers[0]
    assert (attn.qkv_bias, attn.o_bias) == (True, False)


def test_keys_read_only_when_they_add_no_work_are_refused_otherwise() -> None:
    # OPT-350m projects a 512-wide embedding into a 1024-wide decoder (project_in / project_out GEMMs)
    # OPTConfig has no num_key_value_heads / rms_norm_eps (MHA, LayerNorm): foreign keys are refused
    opt = {k: v for k, v in LLAMA.items() if k not in ("hidden_act", "intermediate_size", "num_key_value_heads")}
    opt = {k: v for k, v in opt.items() if k != "rms_norm_eps"}
    opt |= {"model_type": "opt", "activation_function": "relu", "ffn_dim": 96, "enable_bias": True}
    assert normalize({**opt, "word_embed_proj_dim": 64}).layers[0].first(MlpSpec) == MlpSpec(96, gated=False, bias=True)
    with pytest.raises(NotModelledError, match="'word_embed_proj_dim'"):
        normalize({**opt, "word_embed_proj_dim": 32})
    # MiniCPM3 / Youtu store qk_head_dim = qk_nope_head_dim + qk_rope_head_dim beside the MLA sizes
    mla = {**LLAMA, "model_type": "youtu", "kv_lora_rank": 32, "q_lora_rank": 48, "v_head_dim": 16}
    mla |= {"qk_nope_head_dim": 16, "qk_rope_head_dim": 8}
    assert normalize({**mla, "qk_head_dim": 24}).layers[0].mixers[0].head_dim == 24
    with pytest.raises(NotModelledError, match="'qk_head_dim'"):
        normalize({**mla, "qk_head_dim": 32})


def test_granite_shared_mlp_width_is_read_for_its_families_only() -> None:
    # GraniteMoeSharedMoE: experts of intermediate_size plus one gated shared_mlp of shared_intermediate_size
    granite = {**LLAMA, "model_type": "granitemoeshared", "num_local_experts": 8, "num_experts_per_tok": 2}
    moe = normalize({**granite, "shared_intermediate_size": 48}).layers[0].first(MoeSpec)
    assert moe is not None and (moe.intermediate, moe.shared_intermediate) == (96, 48)
    with pytest.raises(NotModelledError, match="'shared_intermediate_size'"):
        normalize({**granite, "model_type": "someone_new", "shared_intermediate_size": 48})
    # Flint: the same shared MLP under Qwen's key name (FlintSparseMoeBlock.shared_expert, no sigmoid gate)
    flint = {k: v for k, v in granite.items() if k != "num_local_experts"} | {"num_experts": 8}  # FlintConfig's key
    moe = normalize({**flint, "model_type": "flint", "shared_expert_intermediate_size": 40}).layers[0].first(MoeSpec)
    assert moe is not None and (moe.shared_intermediate, moe.shared_gate) == (40, False)


def test_peri_ln_mtp_and_lm_head_width_keys() -> None:
    # HyperCLOVAX use_post_norm: a norm after attention and after the MLP too (4 per layer)
    assert normalize({**LLAMA, "model_type": "someone_new", "use_post_norm": True}).layers[0].norms == 4
    # Mellum's MTP layer lists: MellumForCausalLM does not even load the mtp.* weights
    assert normalize({**LLAMA, "model_type": "someone_new", "mtp_layer_types": ["full_attention"]}).layers
    # Apertus-1.5: output_vocab_size is the LM head's width; read only when it is the vocabulary's
    assert normalize({**LLAMA, "model_type": "someone_new", "output_vocab_size": 128}).vocab_size == 128
    with pytest.raises(NotModelledError, match="'output_vocab_size'"):
        normalize({**LLAMA, "model_type": "someone_new", "output_vocab_size": 256})


def test_generic_path_costs_rope_only_where_a_key_describes_it() -> None:
    # GPT-2 / OPT learn absolute positions (no rope key), Falcon with alibi=true replaces rope by ALiBi
    assert normalize(LLAMA | {"model_type": "someone_new"}).layers[0].mixers[0].rotary_dim == 0
    assert normalize(LLAMA | {"model_type": "someone_new", "rope_theta": 1e4}).layers[0].mixers[0].rotary_dim == 16
    alibi = LLAMA | {"model_type": "someone_new", "rope_theta": 1e4, "alibi": True}
    assert normalize(alibi).layers[0].mixers[0].rotary_dim == 0
    assert normalize(LLAMA).layers[0].mixers[0].rotary_dim == 16  # a family rule (llama) keeps its rope


def test_bloom_mlp_is_four_hidden_wide_and_plain() -> None:
    # BloomMLP: dense_h_to_4h, gelu, dense_4h_to_h (both with a bias); the config names neither activation nor
    # width; ALiBi, no rope
    bloom = {"model_type": "bloom", "hidden_size": 64, "n_layer": 2, "n_head": 4, "vocab_size": 128}
    layer = normalize({**bloom, "layer_norm_epsilon": 1e-5}).layers[0]
    assert layer.first(MlpSpec) == MlpSpec(256, gated=False, bias=True) and layer.mixers[0].rotary_dim == 0
