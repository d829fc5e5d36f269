"""Which config keys the generic decoder path understands, and which keys name a feature it does not model.

A `model_type` without a family rule runs on the generic decoder path only when every structural key of
its config is understood here; otherwise `check_generic_keys` refuses with the key and the feature. Keys
that name an unmodelled feature are refused for every family (`check_unmodelled_keys`). The tables are
data, read top to bottom: UNMODELLED_KEYS, then GENERIC_KEYS (read and modelled by the generic path),
then NON_STRUCTURAL_KEYS / suffixes (training, tokenizer and numerics settings that do not change the
work), then STRUCTURAL_HINT: any other key that looks structural is refused by name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from model_compute_sim.errors import NotModelledError
from model_compute_sim.simulator.config_moe import pattern_disagreement

_SSM = "Mamba (state-space) layers"
_CONV = "short-convolution (LFM2-style) layers"
_LIN = "linear-attention layers"
_ZERO = "zero-computation experts (their cost depends on routing, so no exact count exists)"

# key -> the feature it describes; refused for every family
UNMODELLED_KEYS: dict[str, str] = {
    "attn_layer_period": "a hybrid layer pattern (Jamba: attention every N layers)",
    "attn_layer_offset": "a hybrid layer pattern (Jamba: attention every N layers)",
    "expert_layer_period": "the MoE layer pattern of a Jamba-style hybrid",
    "expert_layer_offset": "the MoE layer pattern of a Jamba-style hybrid",
    "hybrid_override_pattern": "a hybrid Mamba/attention/MLP layer pattern (Nemotron-H)",
    "layers_block_type": "per-layer block types (Mamba / attention / MoE)",
    "layer_block_types": "per-layer block types (recurrent / attention)",
    "block_types": "per-layer block types (recurrent / attention)",
    "mamba_d_state": _SSM,
    "mamba_d_conv": _SSM,
    "mamba_expand": _SSM,
    "mamba_n_heads": _SSM,
    "mamba_num_heads": _SSM,
    "mamba_d_head": _SSM,
    "mamba_head_dim": _SSM,
    "mamba_n_groups": _SSM,
    "mamba_chunk_size": _SSM,
    "mamba_dt_rank": _SSM,
    "ssm_state_size": _SSM,
    "ssm_cfg": _SSM,
    "state_size": _SSM,
    "d_state": _SSM,
    "time_step_rank": _SSM,
    "conv_L_cache": _CONV,
    "full_attn_idxs": _CONV,
    "conv_kernel": _CONV,
    "linear_conv_kernel_dim": _LIN,
    "linear_num_key_heads": _LIN,
    "linear_num_value_heads": _LIN,
    "linear_attn_config": _LIN,
    "full_attention_interval": _LIN,
    "block_configs": "per-layer heterogeneous (NAS) blocks",
    "compress_ratios": "compressed sparse attention (DeepSeek-V4)",
    "hc_mult": "hyper-connections (several residual streams per layer)",
    "num_hash_layers": "hash-routed MoE layers",
    "o_groups": "a grouped low-rank attention output projection",
    "sparse_attention_config": "block-sparse attention",
    "zero_expert_num": _ZERO,
    "zero_expert_type": _ZERO,
    "n_zero_experts": _ZERO,
    "num_zero_experts": _ZERO,
    "moe_latent_size": "latent MoE (experts computed in a smaller latent width)",
    "routed_expert_hidden_size": "latent MoE (experts computed in a smaller latent width)",
    "attn_res_block_size": "block attention residuals (a depth attention over earlier blocks' outputs)",
    "use_residual": "a dense residual MLP beside the MoE block (Arctic)",
    "parallel_attn_mlp_res": "a parallel attention / MLP residual layout (Arctic)",
    "cross_attention_layers": "cross-attention layers",
    "altup_num_inputs": "AltUp blocks (Gemma-3n)",
    "laurel_rank": "LAuReL blocks (Gemma-3n)",
    "hidden_size_per_layer_input": "per-layer input embeddings",
    "num_kv_shared_layers": "KV-cache sharing across layers",
    "attention_layers": "a per-layer global/local attention pattern",
    "attention_types": "a per-layer global/local attention pattern",
    "attention_window": "a per-layer local attention window pattern",
    "sliding_window_pattern": "a sliding/full layer pattern this family does not spell out in layer_types",
    # DiffLlama / Differential Transformer: two softmax maps per head (twice the attention core)
    "lambda_std_dev": "differential attention (a lambda-weighted difference of two softmax maps per head)",
    "lambda_init": "differential attention (a lambda-weighted difference of two softmax maps per head)",
    "use_mla": "multi-head latent attention switched by a flag (its ranks are read from kv_lora_rank only)",
}

# keys a family rule models although they name an unmodelled feature for any other family
_DSV4 = frozenset({"compress_ratios", "hc_mult", "num_hash_layers", "o_groups"})
_MSA = frozenset({"sparse_attention_config"})
FAMILY_HANDLED_KEYS: dict[str, frozenset[str]] = {
    "nemotron-nas": frozenset({"block_configs"}),  # simulator/config_nas.py
    "deepseek_v4": _DSV4,  # simulator/config_dsv4.py, layers/csa.py
    "deepseek_ref": _DSV4,
    "minimax_m3": _MSA,  # simulator/config_msa.py, layers/msa.py
    "minimax_m3_vl": _MSA,
    "kimi_linear": frozenset({"routed_expert_hidden_size", "attn_res_block_size"}),  # simulator/config_kimi_k3.py
}

# keys the generic path reads and models (value checks in config.py / this module)
GENERIC_KEYS = frozenset(
    {
        # sizes (aliases the families use)
        "hidden_size", "d_model", "n_embd", "dim",
        "num_hidden_layers", "n_layer", "num_layers", "n_layers",
        "num_attention_heads", "n_head", "num_heads", "n_heads",
        "num_key_value_heads", "num_kv_heads", "n_kv_heads", "multi_query", "new_decoder_architecture",
        "vocab_size", "head_dim", "v_head_dim",
        "intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size", "dense_intermediate_size",
        # MLP kind, norms, residual layout, biases
        "hidden_act", "activation_function", "hidden_activation", "activation",
        "rms_norm_eps", "rms_norm_epsilon", "layer_norm_eps", "layer_norm_epsilon", "norm_epsilon",
        "layernorm_epsilon",
        "use_parallel_residual", "parallel_attn", "parallel_residual", "num_ln_in_parallel_attn",
        "attention_bias", "attention_out_bias", "mlp_bias", "use_bias", "bias", "add_bias_linear", "qkv_bias",
        "use_qkv_bias", "enable_bias",
        "do_layer_norm_before",  # OPT: pre- or post-LN, the same norms either way (vector work only)
        "tie_word_embeddings", "qk_layernorm", "use_qk_norm",
        # positions
        "rotary_dim", "rotary_pct", "partial_rotary_factor", "rope_parameters", "rope_scaling", "alibi",
        "position_embedding_type", "no_rope_layers", "no_rope_layer_interval",
        # attention layout
        "sliding_window", "sliding_window_size", "layer_types", "use_sliding_window", "max_window_layers",
        "attention_chunk_size",
        # multi-head latent attention and the DSA indexer
        "kv_lora_rank", "q_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim",
        "index_topk", "index_n_heads", "index_head_dim", "indexer_types", "index_topk_freq",
        "index_skip_topk_offset",
        # MoE: experts, top-k, shared experts and which layers are MoE (every spelling normalize reads)
        "n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts",
        "num_experts_per_tok", "experts_per_token", "num_experts_per_token", "moe_top_k", "moe_k", "moe_topk",
        "top_k_experts", "num_selected_experts",
        "moe_intermediate_size", "expert_intermediate_size", "expert_ffn_hidden_size",
        "n_shared_experts", "num_shared_experts", "moe_num_shared_experts",
        "mlp_layer_types", "moe_layer_freq", "moe_layers", "moe_layers_enum", "interleave_moe_layer_step",
        "decoder_sparse_step", "mlp_only_layers", "first_k_dense_replace", "num_dense_layers",
        "moe_layer_start_index", "moe_layer_end_index", "moe_layer_interval",
        # routing functions: they change which experts run, not how many (FLOPs are top-k x experts)
        "n_group", "topk_group", "norm_topk_prob", "routed_scaling_factor", "scoring_func", "topk_method",
        "moe_router_activation", "router_bias", "moe_use_bias", "use_expert_bias", "moe_norm_min",
        "moe_statics", "moe_use_aux_free", "use_moe_router_bias",
        # multi-token prediction layers are not part of the base forward pass
        "num_nextn_predict_layers", "mtp_num_hidden_layers", "num_mtp_layers",
        "mtp_layer_types", "mtp_mlp_layer_types",  # Mellum: its mtp.* weights are not even loaded
        "use_post_norm",  # HyperCLOVAX Peri-LN: a norm after attention and after the MLP (generic_layout)
        # nested configs and dtype
        "is_encoder_decoder", "attn_type_list", "text_config", "quantization_config", "hf_quant_config",
        "torch_dtype", "dtype", "rope_theta",
    }
)  # fmt: skip

# training, tokenizer, numerics and bookkeeping settings: they do not change the work of a forward pass
NON_STRUCTURAL_KEYS = frozenset(
    {
        "architectures", "model_type", "auto_map", "transformers_version", "_name_or_path", "name_or_path",
        "max_position_embeddings", "n_positions", "n_ctx", "max_seq_len", "seq_length", "max_sequence_length",
        "initializer_range", "init_std", "use_cache", "return_dict", "output_attentions",
        "output_hidden_states", "output_router_logits", "router_aux_loss_coef", "router_z_loss_coef",
        "router_jitter_noise", "aux_loss_alpha", "seq_aux", "use_return_dict", "pretraining_tp",
        "is_decoder", "add_cross_attention", "tie_encoder_decoder", "chunk_size_feed_forward",
        "torchscript", "pruned_heads", "problem_type", "id2label", "label2id", "tokenizer_class",
        "prefix", "task_specific_params", "finetuning_task", "summary_type", "summary_use_proj",
        "summary_activation", "summary_proj_to_labels", "summary_first_dropout", "scale_attn_weights",
        "scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn", "apply_residual_connection_post_layernorm",
        "clip_qkv", "logit_scale", "logits_scaling", "residual_multiplier", "embedding_multiplier",
        "attention_multiplier", "final_logit_softcapping", "attn_logit_softcapping", "query_pre_attn_scalar",
        "use_flash_attention", "use_flash_attn", "attn_implementation", "residual_in_fp32", "pad_vocab_size_multiple",
        "slow_but_exact", "use_sdpa", "rope_type", "rope_interleave", "use_rope", "rotary_emb_base",
        "original_max_position_embeddings", "sliding_window_chunk", "eos_token_id", "bos_token_id",
        "pad_token_id", "sep_token_id", "decoder_start_token_id", "image_token_id", "video_token_id",
        "vision_start_token_id", "vision_end_token_id", "keys_to_ignore_at_inference", "gradient_checkpointing",
        "use_scaled_rope", "hidden_dropout", "attention_dropout", "dropout", "resid_pdrop", "embd_pdrop",
        "attn_pdrop", "layer_norm_type", "mup", "use_mup", "tp_plan", "base_model_tp_plan", "base_model_pp_plan",
        "expert_dtype", "scale_fmt", "attention_softmax_in_fp32", "scale_attention_softmax_in_fp32",
        "qk_norm_type", "chat_template", "generation_config", "layerdrop", "layer_norm_elementwise_affine",
        "scale_depth", "scale_emb", "dim_model_base",  # MiniCPM muP scalars: elementwise only
        "lm_head_bias",  # a bias add after the same GEMM (PhiMoE)
        "top_k", "top_p", "temperature", "do_sample", "num_beams", "repetition_penalty", "length_penalty",
        "min_length", "max_length", "no_repeat_ngram_size", "typical_p", "num_return_sequences",
    }
)  # fmt: skip
_SCALARS = ("_multiplier", "_scale", "_scaling", "_coef")
NON_STRUCTURAL_SUFFIXES = (
    "_dropout", "_pdrop", "_token_id", "_token_ids", "_eps", "_epsilon", "_range", "_std", "_theta",
    "_coef", "_multiplier", "_scaling", "_scale", "_softcapping", "_implementation", "_init", "_prob",
)  # fmt: skip
# anything else whose name says it shapes the model: refused by name on the generic path
STRUCTURAL_HINT = re.compile(
    r"layer|expert|head|_dim|dims|size|mamba|ssm|conv|window|block|moe|mlp|ffn|attn|attention|rank|^num_|^n_"
    r"|ratio|period|interval|pattern|sparse|hash|group|kv|query|rope|rotary|parallel|residual|share|gate"
    r"|router|topk|top_k|chunk|compress|latent|mtp|nextn|cross|encoder|decoder|embed|norm|hc_|lora|state"
    r"|width|depth|multi|mult|bias|act|config"
    r"|^d_|_ff|ff_|ffn|glu|mla|alibi|sink|vocab|loop|recurren|repeat|mixer|hyena|retention|rwkv|proj|_type$|kind"
    r"|register|memory|order|vision|audio|image|video|^mm_"
)
# an unknown switch turned on (use_differential: true) turns on a feature the generic path does not know
FEATURE_SWITCH_PREFIXES = ("use_", "enable_", "has_", "with_", "add_", "apply_", "is_")
# a scalar that resizes a weight (ffn_dim_multiplier, intermediate_size_scale) is structural whatever its suffix
SIZE_SCALAR = re.compile(r"dim|size|ffn|mlp|width|expert|intermediate|hidden_|layer|head_count")

# value tables of keys whose meaning depends on the value
LAYER_TYPE_VALUES = frozenset(
    {
        "full_attention",
        "sliding_attention",
        "chunked_attention",
        "local_attention",
        "deepseek_sparse_attention",  # GLM-5: full MLA + the DSA indexer (index_* keys)
        "indexed_attention",  # transformers' DeepSeek-V3.2: the same
    }
)
MLP_LAYER_TYPE_VALUES = frozenset({"dense", "mlp", "sparse", "moe"})
POSITION_EMBEDDING_VALUES = frozenset({"rope", "rotary", "absolute", "learned", "alibi"})
# activation -> gated (gate, up, down: three matrices) or plain (up, down: two). Evidence: the MLP of
# every decoder family in transformers 5.24 with that activation, apart from the Gemma family (GeGLU),
# which has its own rule; tests/golden/golden_generic.json checks it on gpt2, gpt_neox, phi, falcon,
# starcoder2, bloom, persimmon, apertus, arcee (plain) and olmo, granite, cohere, ... (gated).
ACTIVATION_KEYS = ("hidden_act", "activation_function", "hidden_activation", "activation")
GATED_ACTIVATIONS = frozenset({"silu", "swish", "swiglu"})
PLAIN_ACTIVATIONS = frozenset(
    {"gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_python", "quick_gelu", "relu", "relu2", "xielu"}
)
# families whose MLP kind the activation does not decide: relu2 is plain in Nemotron and Arcee (up/down) but
# gated in BitNet (gate/up/down); VaultGemma's gelu_pytorch_tanh MLP is gated (GeGLU) like Gemma's; BLOOM
# names no activation (BloomMLP: gelu, dense_h_to_4h / dense_4h_to_h, 4 x hidden wide);
# transformers 5.24 BitNetMLP, VaultGemmaMLP, BloomMLP (tests/golden/sweep_transformers.json)
MLP_GATED_BY_FAMILY: dict[str, bool] = {"bitnet": True, "vaultgemma": True, "bloom": False}
# Whether a family's MLP is gated is fixed by its modeling code, not by its activation: GPT-NeoX with
# hidden_act "silu" still runs dense_h_to_4h / dense_4h_to_h, Cohere with "gelu" still runs gate/up/down
# (tests/golden/sweep_variants.json measures both ways in every family below). The activation decides only
# for an unseen family, and only where no family disagrees (silu / swish: gated in every transformers 5.24
# family whose default it is); a gelu/relu-type activation there is refused, never guessed.
PLAIN_MLP_FAMILIES = frozenset(
    {
        "apertus", "apertus1p5_text", "arcee", "codegen", "falcon", "gpt-sw3", "gpt2", "gpt_bigcode", "gpt_neox",
        "gptj", "jais2", "nanochat", "nemotron", "opt", "persimmon", "phi", "starcoder2",
    }
)  # fmt: skip
GATED_MLP_FAMILIES = frozenset(
    {
        "aria_text", "axk1", "cohere", "cohere2", "cohere_compass_text", "cwm", "dots1", "emu3_text_model",
        "ernie4_5", "ernie4_5_moe", "exaone", "exaone4", "exaone_moe", "flex_olmo", "flint", "glm", "glm4",
        "granite", "granite_swa", "granitemoe", "granitemoe_swa", "granitemoeshared", "helium", "hunyuan_v1_dense",
        "hunyuan_v1_moe", "hyperclovax", "internlm3", "iquestcoder", "kolibri1", "mellum", "minicpm3", "ministral",
        "ministral3", "olmo", "olmo2", "olmo3", "olmoe", "phi3", "phimoe", "sarvam_mla", "sarvam_moe", "seed_oss",
        "smollm3", "solar_open", "stablelm", "youtu",
    }
)  # fmt: skip

# families whose modeling code runs work that no config key describes, so the generic path cannot see it
# (transformers 5.24; found by tools/sweep_transformers.py): refused by model_type
CODE_ONLY_FEATURES: dict[str, str] = {
    "beam": "an attention output gate (gate_proj, hidden -> heads x head_dim) that no config key describes",
    "diffllama": "differential attention (two softmax maps per head: twice the attention core)",
}


# keys the generic path reads for some families only (config_moe.ONE_SHARED_MLP: the shared MLP's width)
FAMILY_KEYS: dict[str, frozenset[str]] = {
    "granitemoeshared": frozenset({"shared_intermediate_size"}),
    "granitemoe_swa": frozenset({"shared_intermediate_size"}),
    "flint": frozenset({"shared_expert_intermediate_size"}),
    "kolibri1": frozenset({"shared_expert_intermediate_size"}),
}
# keys the generic path understands only when they equal the hidden size (then they add no work)
SAME_AS_HIDDEN_KEYS = {
    "word_embed_proj_dim": "an embedding width other than the hidden size (OPT project_in / project_out GEMMs)",
}
_HIDDEN_KEYS = ("hidden_size", "d_model", "n_embd", "dim")


def _refuse(key: str, feature: str, name: str | None) -> NotModelledError:
    return NotModelledError(
        f"{name or 'this config'}: {key!r} describes {feature}, which is not modelled; its FLOPs would be wrong, "
        "so no estimate is given"
    )


def _pattern_spelled_out(pattern: Any, layer_types: Any) -> bool:
    """True when `layer_types` lists exactly the sliding/full layers `sliding_window_pattern` describes: an
    int p (every p-th layer full, the rest sliding; transformers' Exaone4Config / Cohere2Config) or a string
    of L (local) / G (global) letters repeated over the layers (released EXAONE-4 configs)."""
    if not isinstance(layer_types, Sequence) or isinstance(layer_types, str) or not layer_types:
        return False
    if isinstance(pattern, int) and not isinstance(pattern, bool) and pattern > 0:
        want = ["full_attention" if (i + 1) % pattern == 0 else "sliding_attention" for i in range(len(layer_types))]
    elif isinstance(pattern, str) and pattern and set(pattern) <= {"L", "G"}:
        kind = {"L": "sliding_attention", "G": "full_attention"}
        want = [kind[pattern[i % len(pattern)]] for i in range(len(layer_types))]
    else:
        return False
    return list(layer_types) == want


def check_unmodelled_keys(cfg: Mapping[str, Any], name: str | None, handled: frozenset[str] = frozenset()) -> None:
    """Refuse any config that carries a key naming an unmodelled feature, except the keys its family rule
    models (`handled`: FAMILY_HANDLED_KEYS, config_hybrid.UNDERSTOOD_KEYS)."""
    cfg = {k: v for k, v in cfg.items() if k not in handled}
    if _pattern_spelled_out(cfg.get("sliding_window_pattern"), cfg.get("layer_types")):
        cfg.pop("sliding_window_pattern")  # the old spelling of what layer_types lists (EXAONE-4, Cohere-2)
    for key, feature in UNMODELLED_KEYS.items():
        if not cfg.get(key):  # absent, null, 0, false or empty: the feature is off
            continue
        raise _refuse(key, feature, name)
    for key, allowed in (("layer_types", LAYER_TYPE_VALUES), ("mlp_layer_types", MLP_LAYER_TYPE_VALUES)):
        values = cfg.get(key)
        if isinstance(values, Sequence) and not isinstance(values, str):
            bad = sorted({str(t) for t in values} - allowed)
            if bad:
                raise _refuse(key, f"layers of kind {bad} (modelled kinds: {sorted(allowed)})", name)
    kinds = cfg.get("attn_type_list")  # MiniMax: 0 = lightning (linear) attention, 1 = softmax attention
    if isinstance(kinds, Sequence) and not isinstance(kinds, str) and any(k == 0 for k in kinds):
        raise _refuse("attn_type_list", "lightning (linear) attention layers (entries 0)", name)
    if cfg.get("is_encoder_decoder"):
        raise _refuse("is_encoder_decoder", "an encoder-decoder model", name)
    pos = cfg.get("position_embedding_type")
    if pos is not None and str(pos) not in POSITION_EMBEDDING_VALUES:
        raise _refuse("position_embedding_type", f"position embeddings of type {pos!r}", name)


def check_generic_keys(cfg: Mapping[str, Any], model_type: str, name: str | None) -> list[str]:
    """Generic path: every structural key must be understood. Returns the ignored keys (for the notes)."""
    if model_type in CODE_ONLY_FEATURES:
        raise NotModelledError(
            f"{name or 'this config'}: model_type {model_type!r} runs {CODE_ONLY_FEATURES[model_type]}, which is "
            "not modelled; its FLOPs would be wrong, so no estimate is given"
        )
    ignored: list[str] = []
    for key, feature in SAME_AS_HIDDEN_KEYS.items():
        if cfg.get(key) is not None and cfg.get(key) != next((cfg[k] for k in _HIDDEN_KEYS if k in cfg), None):
            raise _refuse(key, feature, name)
    out_vocab = cfg.get("output_vocab_size")  # Apertus-1.5: the LM head's width when set
    if out_vocab is not None and out_vocab != cfg.get("vocab_size"):
        raise _refuse("output_vocab_size", "an LM head wider or narrower than the vocabulary", name)
    qk = cfg.get("qk_head_dim")  # MLA families that also store the sum (MiniCPM3, Youtu, Sarvam-MLA)
    if qk is not None and qk != (cfg.get("qk_nope_head_dim") or 0) + (cfg.get("qk_rope_head_dim") or 0):
        raise _refuse("qk_head_dim", "a query/key head width other than qk_nope_head_dim + qk_rope_head_dim", name)
    for key in cfg:
        if key in (*SAME_AS_HIDDEN_KEYS, "qk_head_dim", "output_vocab_size") or key in FAMILY_KEYS.get(model_type, ()):
            continue
        # 0 is Exaone4Config's "no pattern" (sliding_window null); otherwise it must agree with layer_types
        if key == "sliding_window_pattern" and (not cfg[key] or _pattern_spelled_out(cfg[key], cfg.get("layer_types"))):
            continue
        if key in GENERIC_KEYS or key in NON_STRUCTURAL_KEYS:
            continue
        if key.endswith(NON_STRUCTURAL_SUFFIXES) and not (key.endswith(_SCALARS) and SIZE_SCALAR.search(key)):
            continue
        if key.startswith("_") or (key.endswith("_config") and key != "text_config"):
            if isinstance(cfg[key], Mapping) and cfg[key]:
                raise _refuse(key, "nested settings the generic decoder path does not read", name)
            continue
        if STRUCTURAL_HINT.search(key) or (cfg[key] is True and key.startswith(FEATURE_SWITCH_PREFIXES)):
            raise NotModelledError(
                f"{name or 'this config'} (model_type {model_type or 'unknown'!r}, no family rule): key {key!r} looks "
                "structural and the generic decoder path does not understand it; refusing rather than guessing"
            )
        ignored.append(key)
    return ignored


ROPE_KEYS = (
    "rope_parameters", "rope_theta", "rope_scaling", "rotary_dim", "rotary_pct", "partial_rotary_factor",
    "rotary_emb_base",
)  # fmt: skip


def uses_rope(cfg: Mapping[str, Any]) -> bool:
    """Generic path: rotary embeddings only where a key describes them. GPT-2, GPT-BigCode, OPT learn absolute
    positions and their configs carry no rope key; ALiBi (Falcon alibi=true, BLOOM) replaces rope."""
    if cfg.get("alibi") or str(cfg.get("position_embedding_type")) in ("absolute", "learned", "alibi"):
        return False
    return str(cfg.get("position_embedding_type")) in ("rope", "rotary") or any(
        cfg.get(k) is not None for k in ROPE_KEYS
    )


def mlp_gated(cfg: Mapping[str, Any], model_type: str, name: str | None) -> bool:
    """Generic path: gated (three-matrix) or plain (two-matrix) MLP from the activation; unknown refuses."""
    if model_type in MLP_GATED_BY_FAMILY:
        return MLP_GATED_BY_FAMILY[model_type]
    if model_type in PLAIN_MLP_FAMILIES or model_type in GATED_MLP_FAMILIES:
        return model_type in GATED_MLP_FAMILIES
    act = next((cfg[k] for k in ACTIVATION_KEYS if cfg.get(k)), None)
    if act is None:
        raise NotModelledError(
            f"{name or 'this config'} (model_type {model_type or 'unknown'!r}, no family rule) names no activation "
            "('hidden_act' / 'activation_function'), so whether its MLP is gated (3 matrices) or plain (2) is unknown"
        )
    if str(act) in GATED_ACTIVATIONS and "hidden_act" in cfg:
        return True
    if str(act) in GATED_ACTIVATIONS:  # GPT-2 lineage spelling: plain in every family that uses it
        raise NotModelledError(
            f"{name or 'this config'} (model_type {model_type or 'unknown'!r}, no family rule): activation {act!r} "
            f"spelled {next(k for k in ACTIVATION_KEYS if cfg.get(k))!r}, the GPT-2 / Falcon lineage spelling whose "
            "families run a two-matrix MLP whatever the activation (CodeGen, GPT-J, OPT), so this MLP is not guessed"
        )
    if str(act) in PLAIN_ACTIVATIONS:
        raise NotModelledError(
            f"{name or 'this config'} (model_type {model_type or 'unknown'!r}, no family rule): activation {act!r} "
            "runs a two-matrix MLP in some families (GPT-2, Phi, StarCoder2) and a gated one in others (Gemma, "
            "VaultGemma, BitNet), so this MLP is not guessed"
        )
    raise NotModelledError(
        f"{name or 'this config'} (model_type {model_type or 'unknown'!r}, no family rule): activation {act!r} does "
        f"not say whether the MLP is gated or plain (known: gated {sorted(GATED_ACTIVATIONS)}, plain "
        f"{sorted(PLAIN_ACTIVATIONS)})"
    )


# every model_type the sweeps measured on the generic path (tests/golden/sweep_transformers.json,
# sweep_variants.json): its modeling code is known to run what its keys say
MEASURED_GENERIC_FAMILIES = PLAIN_MLP_FAMILIES | GATED_MLP_FAMILIES | frozenset(MLP_GATED_BY_FAMILY)
SHARED_EXPERT_KEYS = ("n_shared_experts", "num_shared_experts", "moe_num_shared_experts")
_EXPERT_KEYS = ("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts")


def check_unseen_moe(cfg: Mapping[str, Any], model_type: str, name: str | None) -> None:
    """An unseen family's MoE runs only when its config says how many shared experts run beside the routed
    ones (0 included): transformers 5.24 HunYuanMoEV1Moe adds a shared MLP that no key announces, so a
    config silent on it could be either."""
    key = next((k for k in _EXPERT_KEYS if cfg.get(k)), None)
    n = next((cfg[k] for k in ("num_hidden_layers", "n_layer", "num_layers", "n_layers") if cfg.get(k)), None)
    other = pattern_disagreement(cfg, n) if key and isinstance(n, int) and n <= 4096 else None
    if other is not None:
        raise _refuse(other, "a second MoE-layer pattern that disagrees with the first one the config gives", name)
    if model_type in MEASURED_GENERIC_FAMILIES or any(k in cfg for k in SHARED_EXPERT_KEYS):
        return
    if key is not None:
        raise NotModelledError(
            f"{name or 'this config'} (model_type {model_type or 'unknown'!r}, no family rule): {key!r} describes "
            f"routed experts but no key says whether shared experts run beside them ({list(SHARED_EXPERT_KEYS)}; "
            "some families add one in code alone), so the MoE is not guessed"
        )


def _listed(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str) and bool(value)


def check_unseen_attention(cfg: Mapping[str, Any], model_type: str, name: str | None) -> dict[str, Any]:
    """Which layers of an unseen family slide or chunk is said by `layer_types` alone: without it the pattern
    is family code (every layer: Mistral; alternating: Gemma-2, gpt-oss; every 4th full: Cohere-2; from
    max_window_layers up: Qwen2; chunked rope layers: Llama-4). Returns the config with a window that
    use_sliding_window = false switches off removed."""
    if model_type in MEASURED_GENERIC_FAMILIES:
        return dict(cfg)
    out = dict(cfg)
    types = cfg.get("layer_types")
    window_key = next((k for k in ("sliding_window", "sliding_window_size") if cfg.get(k)), None)
    if window_key and cfg.get("use_sliding_window") is False:
        if _listed(types) and {"sliding_attention", "local_attention"} & {str(t) for t in types or ()}:
            raise _refuse("use_sliding_window", "windows switched off while layer_types lists sliding layers", name)
        out.pop(window_key)
    elif window_key and not _listed(types):
        raise _refuse(window_key, "a sliding window whose layers no 'layer_types' lists (family code decides)", name)
    if cfg.get("attention_chunk_size") and not _listed(types):
        raise _refuse("attention_chunk_size", "chunked attention whose layers no 'layer_types' lists", name)
    return out


# named families whose transformers 5.24 attention never reads a bare `sliding_window` (no layer_types), while
# its DynamicCache and vLLM's cache config may still window by it (Nemotron-H's decode is windowed, its
# prefill not: tests/golden/sweep_variants.json): which window runs is ambiguous
WINDOW_IGNORED_TYPES = frozenset(
    {
        "llama", "gemma", "deepseek_v2", "deepseek_v3", "deepseek_v32", "kimi_k2", "kimi_k25", "glm4_moe",
        "glm4_moe_lite", "glm_moe_dsa", "minimax_m2", "llama4", "llama4_text", "qwen3_vl", "qwen3_vl_text",
        "qwen3_vl_moe", "qwen3_vl_moe_text", "kimi_linear", "qwen3_next", "qwen3_5", "qwen3_5_text", "qwen3_5_moe",
        "qwen3_5_moe_text", "jamba", "falcon_h1", "granitemoehybrid", "lfm2", "nemotron_h",
    }
)  # fmt: skip


def check_bare_window(cfg: Mapping[str, Any], model_type: str, name: str | None) -> None:
    """A window on a named family whose attention applies none without layer_types: refused by name (costing
    it windowed or full would be a guess)."""
    key = next((k for k in ("sliding_window", "sliding_window_size") if cfg.get(k)), None)
    if key and model_type in WINDOW_IGNORED_TYPES and not _listed(cfg.get("layer_types")):
        raise _refuse(key, f"a sliding window that model_type {model_type!r}'s attention does not apply", name)


# families whose decoder layer runs attention and MLP in parallel on one normalized input although no
# config key says so (transformers 5.24 modeling code: PhiDecoderLayer, CohereDecoderLayer, GPTJBlock,
# CodeGenBlock); the keys use_parallel_residual / parallel_attn / parallel_residual say it for the others
PARALLEL_RESIDUAL_FAMILIES = frozenset({"phi", "cohere", "cohere2", "cohere_compass_text", "gptj", "codegen"})
# transformers 5.24 Glm4DecoderLayer, Kolibri1DecoderLayer: a norm after each block too, no key says so
POST_NORM_FAMILIES = frozenset({"glm4", "kolibri1"})
_LAYERNORM_EPS_KEYS = ("layer_norm_eps", "layer_norm_epsilon", "norm_epsilon", "layernorm_epsilon")


def generic_layout(cfg: Mapping[str, Any], model_type: str) -> tuple[str, bool, int, list[str]]:
    """(norm kind, parallel attention+MLP, norms per layer, notes) of a generic decoder layer.

    The layout changes vector work only (norms and residual adds), never the GEMM count."""
    notes: list[str] = []
    if any(k in cfg for k in _LAYERNORM_EPS_KEYS):
        norm_kind = "layernorm"
    elif "rms_norm_eps" in cfg or "rms_norm_epsilon" in cfg:
        norm_kind = "rmsnorm"
    else:
        norm_kind = "rmsnorm"
        notes.append("no norm epsilon key says LayerNorm or RMSNorm: RMSNorm assumed (vector work only)")
    parallel = model_type in PARALLEL_RESIDUAL_FAMILIES or any(
        bool(cfg.get(k)) for k in ("use_parallel_residual", "parallel_attn", "parallel_residual")
    )
    # HyperCLOVAX: Peri-LN, a norm before and after each block; GLM-4: post_self_attn / post_mlp_layernorm
    norms = 4 if cfg.get("use_post_norm") or model_type in POST_NORM_FAMILIES else 2
    if parallel:
        two = model_type != "stablelm" and (  # StableLmDecoderLayer: no post_attention_layernorm when parallel
            cfg.get("use_parallel_residual")
            or cfg.get("num_ln_in_parallel_attn") == 2
            or (cfg.get("new_decoder_architecture") and cfg.get("num_ln_in_parallel_attn") is None)
        )
        norms = 2 if two else 1
        notes.append(f"attention and MLP run in parallel on the normalized input ({norms} norm(s) per layer)")
    return norm_kind, parallel, norms, notes
