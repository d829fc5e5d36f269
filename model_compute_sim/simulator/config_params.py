"""Parameters no config key spells: biases, norm vectors, learned position tables, the LM-head bias.

The FLOP side does not need them (bias adds and norms are not GEMMs), but the parameter count, the
resident weight bytes and the decode roofline do. Each rule is read from the family's transformers 5.24
modeling code (nn.Linear / Conv1D bias flags, nn.LayerNorm defaults) and checked against the transformers
model's own parameter count (tools/golden_params.py, tests/test_params_golden.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from model_compute_sim.simulator.families import GEMMA4_TYPES
from model_compute_sim.simulator.spec import AttentionSpec, LayerSpec, MlpSpec, MoeSpec

# vectors per hidden-size norm where the norm kind the keys give is not what the family builds: 0 = no learned
# weight (OlmoLayerNorm, nanochat's F.rms_norm), 1 = a weight (CohereLayerNorm), 2 = weight and bias
# (nn.LayerNorm: PhiMoE spells rms_norm_eps, Nemotron norm_eps). Others: LayerNorm 2, RMSNorm 1.
NORM_VECTORS = {
    "olmo": 0,
    "nanochat": 0,
    "cohere": 1,
    "cohere2": 1,
    "cohere_compass_text": 1,
    "phimoe": 2,
    "nemotron": 2,
    "opt": 2,  # nn.LayerNorm (no epsilon key; layer_norm_elementwise_affine=False: none)
}
# (q/k/v bias, o_proj bias, MLP bias) fixed by the modeling code whatever the keys say (None: the keys)
FAMILY_BIASES: dict[str, tuple[bool | None, bool | None, bool | None]] = {
    "gpt2": (True, True, True),  # Conv1D c_attn / c_proj / c_fc / c_proj
    # o_proj without bias whatever the q/k/v flag says (transformers 5.24 HeliumAttention, SarvamMoEAttention,
    # SolarOpenAttention, StableLmAttention; tests/golden/sweep_variants.json attention_bias / use_qkv_bias)
    "helium": (None, False, None),
    "sarvam_moe": (None, False, None),
    "solar_open": (None, False, None),
    "stablelm": (None, False, None),
    "gpt-sw3": (True, True, True),
    "gpt_bigcode": (True, True, True),
    "bloom": (True, True, True),  # query_key_value, dense, dense_h_to_4h, dense_4h_to_h
    "phi": (True, True, True),  # q/k/v/dense, fc1/fc2
    "persimmon": (True, True, True),  # query_key_value, dense, dense_h_to_4h, dense_4h_to_h
    "codegen": (False, False, True),  # qkv_proj / out_proj bias=False, fc_in / fc_out with bias
    "gptj": (False, False, True),
    "gpt_neox": (None, None, True),  # dense_h_to_4h / dense_4h_to_h always with bias
    "nemotron_h": (False, False, None),  # NemotronHAttention: bias=False (use_bias is the Mamba projections')
    "glm": (None, False, None),  # attention_bias is q/k/v only: o_proj bias=False
    "glm4": (None, False, None),
}
# an LM head of its own whatever tie_word_embeddings says: transformers 5.24 NemotronHForCausalLM and
# KimiLinearForCausalLM declare no tied weights (_tied_weights_keys = {}), and vLLM's nemotron_h.py / kimi_linear.py
# build a separate ParallelLMHead and never tie it (Kimi-K3 is model_type kimi_linear)
UNTIED_HEAD_TYPES = frozenset({"nemotron_h", "kimi_linear"})
LM_HEAD_BIAS_TYPES = frozenset({"phi", "codegen", "gptj"})  # nn.Linear(hidden, vocab) with its default bias
# learned absolute position tables: the key giving their rows, plus fixed extra rows (OPT's offset of 2)
LEARNED_POSITIONS = {
    "gpt2": ("n_positions", 0),
    "gpt-sw3": ("n_positions", 0),
    "gpt_bigcode": ("n_positions", 0),
    "opt": ("max_position_embeddings", 2),
}
EMBEDDING_NORM_TYPES = frozenset({"bloom"})  # word_embeddings_layernorm after the embedding
# learned scalars of the MLP activation: XIELUActivation alpha_p and alpha_n (its beta and eps are buffers)
ACT_PARAMS = {"apertus": 2, "apertus1p5_text": 2}
# q_layernorm / k_layernorm are nn.LayerNorm (weight and bias): PersimmonAttention, PhiAttention (qk_layernorm)
QK_NORM_BIAS_TYPES = frozenset({"persimmon", "phi"})
# The aux-loss-free router's score-correction bias: one value per routed expert, added to the routing scores
# before top-k, read by the router on every step. A tensor in the checkpoint and in the serving engine's
# weights (DeepSeek-V3's safetensors index lists model.layers.N.mlp.gate.e_score_correction_bias for every MoE
# layer), though transformers 5.24 registers it as a buffer (nn.Buffer(torch.zeros(num_experts, float32)):
# not in model.parameters()) in all these families but ERNIE-4.5 and Laguna (parameters).
# model_type -> (config key, the value that turns it on; None: always there). Sources: vLLM deepseek_v2.py
# DeepseekV2MoE (`topk_method == "noaux_tc"`: nn.Parameter(torch.empty(n_routed_experts, dtype=torch.float32)),
# also Kimi-K2 / GLM-5), minimax_m2.py / minimax_m3 (`use_routing_bias`, fp32), step3p5.py
# (`use_moe_router_bias`: router_bias, fp32), nemotron_h.py NemotronHMoE, glm4_moe.py, deepseek_v4 (every
# score-routed layer; hash-routed layers use tid2eid instead), kimi_linear; transformers' modeling code for the
# families whose vLLM condition was not read here (dots1, MiMo-V2, GLM-4.7-Flash, Sarvam, EXAONE-MoE, Solar-Open,
# Kolibri, lfm2_moe `use_expert_bias`, ERNIE-4.5: always built there). Not AXK1: its released checkpoints route
# without one (transformers AXK1PreTrainedModel._keys_to_ignore_on_load_missing = ["e_score_correction_bias"]).
# Every released config of the index and corpus that has one of these routers sets its key.
_NOAUX = ("topk_method", "noaux_tc")
CORRECTION_BIAS: dict[str, tuple[str, object] | None] = {
    **dict.fromkeys(("deepseek_v3", "deepseek_v32", "kimi_k2", "kimi_k25", "glm_moe_dsa"), _NOAUX),
    **dict.fromkeys(("minimax_m2", "minimax_m3", "minimax_m3_vl"), ("use_routing_bias", True)),
    **dict.fromkeys(("step3p5", "step3p7"), ("use_moe_router_bias", True)),
    "lfm2_moe": ("use_expert_bias", True),
    **dict.fromkeys(
        ("glm4_moe", "glm4v_moe", "sarvam_moe", "nemotron_h", "kimi_linear", "kimi_k3", "deepseek_v4"), None
    ),
    **dict.fromkeys(("deepseek_ref", "exaone_moe", "solar_open", "kolibri1", "laguna"), None),
    **dict.fromkeys(("dots1", "mimo_v2_flash", "glm4_moe_lite", "sarvam_mla"), None),
    **dict.fromkeys(("ernie4_5_moe", "ernie4_5_vl_moe", "hy_v3"), None),
}
# defaults of the turning-on key where the family's config class has one (transformers Lfm2MoeConfig)
CORRECTION_DEFAULTS = {"use_expert_bias": True}
# vLLM's KimiMoE (kimi_linear.py, and kimi_k3 for Kimi-K3, whose config says model_type kimi_linear) builds it
# as nn.Parameter(torch.empty(num_experts)) under the model's default dtype: bf16, where DeepSeek's is fp32
CORRECTION_DTYPE = {"kimi_linear": "bf16", "kimi_k3": "bf16"}
HASH_ROUTED_TYPES = frozenset({"deepseek_v4", "deepseek_ref"})  # first num_hash_layers MoE layers: tid2eid, no bias


def norm_vectors(cfg: Mapping[str, Any], model_type: str, norm_kind: str) -> int:
    """Learned vectors of one hidden-size norm (see NORM_VECTORS)."""
    if model_type == "opt" and cfg.get("layer_norm_elementwise_affine") is False:
        return 0
    return NORM_VECTORS.get(model_type, 2 if norm_kind == "layernorm" else 1)


def model_extras(cfg: Mapping[str, Any], model_type: str, norm_kind: str) -> dict[str, Any]:
    """ModelSpec fields for the parameters outside the layer kinds' matrices."""
    positions = 0
    if model_type in LEARNED_POSITIONS:
        key, extra = LEARNED_POSITIONS[model_type]
        positions = int(cfg.get(key) or 0) + extra
    lm_head_bias = model_type in LM_HEAD_BIAS_TYPES or bool(cfg.get("lm_head_bias"))
    # OPTDecoder builds final_layer_norm only when do_layer_norm_before and not _remove_final_layer_norm
    # (transformers 5.24; vLLM opt.py the same): post-LN OPT (OPT-350m) ends without one
    final_norm = model_type != "opt" or (
        cfg.get("do_layer_norm_before", True) is not False and not cfg.get("_remove_final_layer_norm", False)
    )
    return dict(
        norm_vectors=norm_vectors(cfg, model_type, norm_kind),
        final_norm=final_norm,
        position_embeddings=positions,
        embedding_norm=model_type in EMBEDDING_NORM_TYPES,
        lm_head_bias=lm_head_bias,
    )


# The generic path (a model_type with no rule here) reads the keys that give a router a per-expert bias in the
# families above (their config classes and vLLM models): a score-correction bias (fp32) when one turns it on
GENERIC_CORRECTION_KEYS = (
    ("topk_method", "noaux_tc"),
    ("use_routing_bias", True),
    ("use_moe_router_bias", True),
    ("use_expert_bias", True),
    ("moe_use_aux_free", True),
)


def correction_bias(cfg: Mapping[str, Any], model_type: str, generic: bool = False) -> str:
    """The dtype of the router's score-correction bias of this family and config, "" when it has none: the family's
    rule, else (a model_type without one on the generic path) the keys that turn it on elsewhere."""
    if model_type not in CORRECTION_BIAS:
        return "fp32" if generic and any(cfg.get(key) == on for key, on in GENERIC_CORRECTION_KEYS) else ""
    rule = CORRECTION_BIAS[model_type]
    if rule is not None:
        key, on = rule
        if cfg.get(key, CORRECTION_DEFAULTS.get(key)) != on:
            return ""
    return CORRECTION_DTYPE.get(model_type, "fp32")


def with_router_correction(
    layers: tuple[LayerSpec, ...], cfg: Mapping[str, Any], model_type: str, generic: bool = False
) -> tuple[LayerSpec, ...]:
    """The MoE layers with their router's score-correction bias (CORRECTION_BIAS; GENERIC_CORRECTION_KEYS on the
    generic path, where `router_bias: true` also gives the router an nn.Linear bias, as in longcat_flash and the
    switch-style routers); DeepSeek-V4's first `num_hash_layers` MoE layers route by token id (transformers
    DeepseekV4HashRouter) and carry none: their tid2eid table instead (MoeSpec.hash_table_rows)."""
    dtype = correction_bias(cfg, model_type, generic)
    linear_bias = generic and cfg.get("router_bias") is True
    if not dtype and not linear_bias:
        return layers
    hashed = int(cfg.get("num_hash_layers", 3)) if model_type in HASH_ROUTED_TYPES else 0  # DeepseekV4Config: 3
    # a hash-routed layer holds tid2eid instead: vLLM deepseek_v4 gate.tid2eid = nn.Parameter(torch.zeros(
    # vocab_size, num_experts_per_tok, dtype=torch.int32)) (transformers DeepseekV4HashRouter: a buffer)
    table = {"hash_table_rows": int(cfg.get("vocab_size") or 0)}
    scored: dict[str, Any] = {"correction_bias": dtype, **({"router_bias": True} if linear_bias else {})}
    out = []
    for layer in layers:
        if any(isinstance(x, MoeSpec) for x in layer.ffns):
            fields = table if hashed > 0 else scored
            hashed -= 1
            layer = _with_ffns(layer, tuple(replace(x, **fields) if isinstance(x, MoeSpec) else x for x in layer.ffns))
        out.append(layer)
    return tuple(out)


def _with_ffns(layer: LayerSpec, ffns: tuple[Any, ...]) -> LayerSpec:
    return LayerSpec(
        mixers=layer.mixers,
        ffns=ffns,
        norms=layer.norms,
        parallel=layer.parallel,
        norm_kind=layer.norm_kind,
        attn_res=layer.attn_res,
    )


def with_family_params(
    layers: tuple[LayerSpec, ...], model_type: str, activation: str | None = None
) -> tuple[LayerSpec, ...]:
    """The layers with the biases, q/k norm biases and activation scalars the family's modeling code builds."""
    rule = FAMILY_BIASES.get(model_type)
    qk_bias = model_type in QK_NORM_BIAS_TYPES
    act = ACT_PARAMS.get(model_type, 0) if activation == "xielu" else 0  # ACT2FN[hidden_act]: xielu's only
    gemma4 = model_type in GEMMA4_TYPES  # the MoE block beside the dense MLP (26B-A4B)
    bitnet, axk1 = model_type == "bitnet", model_type == "axk1"
    if rule is None and not qk_bias and not act and not gemma4 and not bitnet and not axk1:
        return layers
    qkv, o, mlp = rule or (None, None, None)

    def fix(x: Any) -> Any:
        if isinstance(x, AttentionSpec) and x.kind == "gqa":
            return replace(
                x,
                qkv_bias=x.qkv_bias if qkv is None else qkv,
                o_bias=x.o_bias if o is None else o,
                qk_norm_bias=qk_bias and x.qk_norm,
                sub_norm=bitnet,  # BitNetAttention's attn_sub_norm (hidden = heads x head_dim)
            )
        if isinstance(x, MlpSpec):  # BitNetMLP: ffn_sub_norm over the intermediate before down_proj
            return replace(x, bias=x.bias if mlp is None else mlp, act_params=act, inner_norm=bitnet)
        if isinstance(x, MoeSpec) and gemma4:  # Gemma4TextRouter scale / per_expert_scale, three more norms
            return replace(x, router_scale=True, block_norms=3)
        if isinstance(x, MoeSpec) and axk1:  # AXK1MoE: post_mlp_layernorm on the MoE output
            return replace(x, block_norms=1)
        return x

    return tuple(
        LayerSpec(
            mixers=tuple(fix(x) for x in layer.mixers),
            ffns=tuple(fix(x) for x in layer.ffns),
            norms=layer.norms,
            parallel=layer.parallel,
            norm_kind=layer.norm_kind,
            attn_res=layer.attn_res,
        )
        for layer in layers
    )
