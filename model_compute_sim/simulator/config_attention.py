"""How softmax attention (GQA / MHA / MQA and MLA) is read from a config: per-layer windows, chunks,
rope, per-family head overrides and the DSA indexer. The specs are costed by layers/gqa.py and
layers/mla.py."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from model_compute_sim.errors import ConfigError
from model_compute_sim.simulator.config_read import Config, _bool, _int, _ints, _opt_int, _per_layer, check_multiple
from model_compute_sim.simulator.families import GEMMA4_TYPES, QWEN3_VL_TYPES, STEP_TYPES
from model_compute_sim.simulator.linear_attention_config import GDN_TYPES
from model_compute_sim.simulator.spec import AttentionSpec, IndexerSpec

# families whose full-attention layers skip rope (transformers 5.24 Cohere2Attention: rope on sliding layers
# only; Exaone4Attention, ExaoneMoeAttention: the same once the config has a sliding_window); the EXAONE
# ones also norm q and k per head
GLOBAL_NOPE_TYPES = ("cohere2", "exaone4", "exaone_moe")


def _sliding_layers(cfg: Config, model_type: str, n: int) -> list[int | None]:
    """Per-layer sliding window (None = full attention)."""
    window = _opt_int(cfg, "sliding_window", "sliding_window_size", minimum=0) or None
    types = _per_layer(cfg, "layer_types", n)
    if types is not None:
        out: list[int | None] = []
        for t in types:
            if t in ("sliding_attention", "local_attention"):
                if window is None:
                    raise ConfigError(f"layer_types marks {t!r} layers but sliding_window is missing")
                out.append(window)
            else:
                out.append(None)
        return out
    pattern = _per_layer(cfg, "hybrid_layer_pattern", n)  # MiMo-V2: 1 = sliding
    if pattern is not None:
        return [window if p == 1 else None for p in _ints("hybrid_layer_pattern", pattern)]
    if window is None or model_type in STEP_TYPES:  # transformers' Step-3.7 default: every layer full
        return [None] * n
    if model_type == "mimo_v2_flash":  # transformers' default: layer 0 and every 6th layer full
        return [None if (i == 0 or (i + 1) % 6 == 0) else window for i in range(n)]
    if model_type in GEMMA4_TYPES:  # 5 sliding : 1 full, and the last layer is always full
        out = [None if (i + 1) % 6 == 0 else window for i in range(n)]
        out[-1] = None
        return out
    if model_type in GLOBAL_NOPE_TYPES:  # transformers' Cohere2Config / Exaone4Config default: every 4th full
        every = _int(cfg, "sliding_window_pattern", default=4)
        return [None if (i + 1) % every == 0 else window for i in range(n)]
    if model_type == "gemma2":
        return [window if i % 2 == 0 else None for i in range(n)]
    if model_type in ("gemma3", "gemma3_text"):
        every = _int(cfg, "sliding_window_pattern", default=6)
        return [None if (i + 1) % every == 0 else window for i in range(n)]
    if model_type == "qwen3_moe" and _bool(cfg, "use_sliding_window"):
        # transformers 5.24 Qwen3MoeConfig has no max_window_layers / layer_types: every layer slides
        # (tests/golden/sweep_variants.json qwen3_moe window_6, window_6_max_window_layers_2)
        return [window] * n
    if model_type in ("qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "mimo"):
        if not _bool(cfg, "use_sliding_window"):
            return [None] * n
        max_window_layers = _int(cfg, "max_window_layers", default=n, minimum=0)
        return [window if i >= max_window_layers else None for i in range(n)]
    if model_type in ("gpt_oss",):
        return [window if i % 2 == 0 else None for i in range(n)]
    return [window] * n  # Mistral-style: every layer slides


def _chunked_layers(cfg: Config, n: int) -> list[int | None]:
    """Per-layer attention chunk (Llama-4 local attention: a query sees its own chunk only)."""
    chunk = _opt_int(cfg, "attention_chunk_size", minimum=0) or None
    types = _per_layer(cfg, "layer_types", n)
    if chunk is None and types is not None and "chunked_attention" in types:
        raise ConfigError("layer_types marks 'chunked_attention' layers but attention_chunk_size is missing")
    if chunk is None:
        return [None] * n
    if types is not None:
        return [chunk if t == "chunked_attention" else None for t in types]
    no_rope = _no_rope_layers(cfg, n)
    if no_rope is not None:  # Llama-4: rope layers are chunked, NoPE layers are global
        return [chunk if bool(x) else None for x in no_rope]
    return [None] * n


def _no_rope_layers(cfg: Config, n: int) -> list[Any] | None:
    """Per-layer "uses rope" flags (Llama-4); transformers' default puts a NoPE layer every
    `no_rope_layer_interval` (4) layers when the config does not list them."""
    listed = _per_layer(cfg, "no_rope_layers", n)
    if listed or str(cfg.get("model_type")) not in ("llama4", "llama4_text"):
        return listed
    every = _int(cfg, "no_rope_layer_interval", default=4)
    return [int((i + 1) % every != 0) for i in range(n)]


def rotary_dim(cfg: Config, head_dim: int) -> int:
    if cfg.get("rotary_dim") is not None:
        return _int(cfg, "rotary_dim", minimum=0)
    factor = cfg.get("partial_rotary_factor")
    rope = cfg.get("rope_parameters")
    if factor is None and isinstance(rope, Mapping):
        factor = rope.get("partial_rotary_factor")
    f = float(factor) if isinstance(factor, (int, float)) else 1.0
    return int(head_dim * f)


def _indexer(cfg: Config, n: int) -> list[IndexerSpec | None]:
    topk = _opt_int(cfg, "index_topk")
    if not topk:
        return [None] * n
    heads = _int(cfg, "index_n_heads")
    dim = _int(cfg, "index_head_dim")
    q_lora = _int(cfg, "q_lora_rank")
    types = _per_layer(cfg, "indexer_types", n)
    if types is None and cfg.get("index_topk_freq") is not None:
        freq = max(_int(cfg, "index_topk_freq", default=1), 1)
        offset = _int(cfg, "index_skip_topk_offset", default=2, minimum=0)
        types = ["full" if (max(i - offset + 1, 0) % freq) == 0 else "shared" for i in range(n)]
    runs = [True] * n if types is None else [t != "shared" for t in types]
    return [IndexerSpec(heads=heads, head_dim=dim, topk=topk, q_lora_rank=q_lora, runs=r) for r in runs]


def _layer_override(cfg: Config, i: int) -> Mapping[str, Any]:
    per = cfg.get("per_layer_config")
    if isinstance(per, Mapping):
        over = per.get(str(i), per.get(i))
        if isinstance(over, Mapping):
            return over
    return {}


def _step_gate_dim(cfg: Config, head_dim: int) -> int:
    gating = cfg.get("gating")
    gating = True if gating is None else gating
    if gating is True or gating == "per-head":
        return 1
    return head_dim if gating else 0


def _output_gate_dim(cfg: Config, model_type: str, head_dim: int) -> int:
    if model_type in STEP_TYPES:
        return _step_gate_dim(cfg, head_dim)
    if model_type in GDN_TYPES:  # q_proj emits the query and a per-element sigmoid gate (2 * h * d)
        return head_dim
    return 0


_BIAS_KEYS = ("attention_bias", "use_bias", "bias", "qkv_bias", "use_qkv_bias", "add_bias_linear", "enable_bias")


def attention_specs(cfg: Config, model_type: str, hidden: int, n: int) -> list[AttentionSpec]:
    """One softmax-attention spec per layer (MLA when the config has kv_lora_rank)."""
    heads = _int(cfg, "num_attention_heads", "n_head", "num_heads", "n_heads")
    kv_heads = _int(cfg, "num_key_value_heads", "num_kv_heads", "n_kv_heads", default=heads)
    if _bool(cfg, "multi_query") and not _bool(cfg, "new_decoder_architecture"):
        kv_heads = 1  # Falcon / GPT-BigCode multi-query attention: one K/V head whatever num_kv_heads says
    elif model_type == "gpt_bigcode":  # GPTBigCodeAttention: MHA unless multi_query, no KV-head key read
        kv_heads = heads
    windows = _sliding_layers(cfg, model_type, n)
    chunks = _chunked_layers(cfg, n)
    bias = any(_bool(cfg, k) for k in _BIAS_KEYS)
    if cfg.get("kv_lora_rank") is not None:
        return _mla_specs(cfg, model_type, heads, windows, bias, n)
    base = _gqa_base(cfg, model_type, hidden, heads, kv_heads, bias)
    no_rope = _no_rope_layers(cfg, n)
    if model_type == "cohere2" or (model_type in GLOBAL_NOPE_TYPES and cfg.get("sliding_window")):
        no_rope = [w is not None for w in windows]  # rope on sliding layers only, NoPE on full ones
    return [
        _gqa_layer(cfg, model_type, base, i, windows[i], chunks[i], True if no_rope is None else bool(no_rope[i]))
        for i in range(n)
    ]


def _mla_specs(
    cfg: Config, model_type: str, heads: int, windows: list[int | None], bias: bool, n: int
) -> list[AttentionSpec]:
    """Multi-head latent attention, with the DSA indexer when the config has one: what every layer shares,
    then each layer's window and indexer."""
    nope = _int(cfg, "qk_nope_head_dim")
    rope = _int(cfg, "qk_rope_head_dim", minimum=0)
    v = _int(cfg, "v_head_dim")
    base = AttentionSpec(
        kind="mla",
        heads=heads,
        kv_heads=heads,
        head_dim=nope + rope,
        v_head_dim=v,
        qkv_bias=bias,
        o_bias=bias,
        # Kimi-Linear MLA is NoPE: transformers' KimiMLAAttention never rotates k_rot/q (its config has no
        # rope keys), vLLM's KimiMLAAttention asserts mla_use_nope and passes rotary_emb=None. The rope dims
        # still widen q, kv_a_proj and the cache; only the rotation is absent.
        rotary_dim=0 if model_type == "kimi_linear" or cfg.get("mla_use_nope") is True else rope,
        kv_lora_rank=_int(cfg, "kv_lora_rank"),
        q_lora_rank=_opt_int(cfg, "q_lora_rank"),
        qk_nope_dim=nope,
        qk_rope_dim=rope,
        # Kimi-K3 mla_use_output_gate: g_proj hidden -> heads*v_head_dim, sigmoid, times the attention output
        # before o_proj (vLLM models/kimi_k3 KimiMLAAttention g_proj, ColumnParallelLinear; Moonshot
        # modeling_kimi_linear.py KimiMLAAttention.forward: attn_output * g_proj(hidden_states).sigmoid())
        output_gate_dim=v if _bool(cfg, "mla_use_output_gate") else 0,
    )
    return [replace(base, window=w, indexer=x) for w, x in zip(windows, _indexer(cfg, n), strict=True)]


# q/k norm weights of heads x head_dim (MiniMaxM2RMSNorm(heads * head_dim), CohereLayerNorm((heads, head_dim)),
# StableLmLayerNormPerHead)
# (and Olmo2/Olmo3/FlexOlmo/OLMoE RMSNorm(heads * head_dim)); every other family's is one head_dim vector shared
# by the heads
QK_NORM_PER_HEAD_TYPES = ("minimax_m2", "cohere", "stablelm", "olmo2", "olmo3", "flex_olmo", "olmoe")
# families whose q/k norms no config key announces (transformers 5.24 modeling code builds them always)
QK_NORM_ALWAYS_TYPES: tuple[str, ...] = ("olmo2", "olmo3", "flex_olmo", "olmoe", "apertus", "apertus1p5_text")
QK_NORM_ALWAYS_TYPES += ("hunyuan_v1_dense", "hunyuan_v1_moe", "mellum", "dots1", "flint", "kolibri1")
# Qwen3VLTextAttention and Qwen3VLMoeTextAttention build q_norm / k_norm (RMSNorm(head_dim)) unconditionally, as
# vLLM's qwen3_vl.py / qwen3_vl_moe.py text models do (Qwen3Model / Qwen3MoeModel attention)
QK_NORM_ALWAYS_TYPES += QWEN3_VL_TYPES
# families with a learned per-head softmax sink on every layer (transformers 5.24: GptOssAttention, FlintAttention,
# GraniteSWAAttention's sink scale); MiMo-V2-Flash has one on its sliding layers
SINK_TYPES = ("gpt_oss", "flint", "granite_swa", "granitemoe_swa")


def _gqa_base(cfg: Config, model_type: str, hidden: int, heads: int, kv_heads: int, bias: bool) -> AttentionSpec:
    """What every GQA layer of the model shares: head counts and sizes, biases, q/k norms."""
    head_dim = _opt_int(cfg, "head_dim", minimum=1) or hidden // heads
    if head_dim * heads != hidden and cfg.get("head_dim") is None:
        raise ConfigError(
            f"hidden_size {hidden} is not divisible by num_attention_heads {heads} and head_dim is missing"
        )
    check_multiple("num_attention_heads", heads, "num_key_value_heads", kv_heads)
    v_head_dim = _opt_int(cfg, "v_head_dim", minimum=1) or head_dim
    return AttentionSpec(
        kind="gqa",
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        v_head_dim=v_head_dim,
        qkv_bias=bias or model_type in ("qwen2", "mimo") or _family_qkv_bias(cfg, model_type),
        o_bias=_o_bias(cfg, model_type, bias),
        qk_norm=_qk_norm(cfg, model_type),
        qk_norm_shared=model_type not in QK_NORM_PER_HEAD_TYPES,
    )


def _family_qkv_bias(cfg: Config, model_type: str) -> bool:
    """q/k/v biases a family's config class turns on by default (transformers 5.24 Qwen2MoeConfig.qkv_bias,
    GptOssConfig.attention_bias: True; released configs may leave the key out)."""
    if model_type == "qwen2_moe":
        return _bool(cfg, "qkv_bias", True)
    if model_type == "gpt_oss":
        return _bool(cfg, "attention_bias", True)
    return False


def _o_bias(cfg: Config, model_type: str, bias: bool) -> bool:
    """o_proj's bias: the config's attention bias, except in families that keep it on q/k/v only."""
    if "attention_out_bias" in cfg:  # Seed-OSS: its own key for o_proj's bias (attention_bias is q/k/v only)
        return _bool(cfg, "attention_out_bias")
    if model_type == "gpt_oss":  # GptOssConfig.attention_bias, True by default
        return _bool(cfg, "attention_bias", True)
    return bias and model_type not in ("qwen2", "qwen2_moe", "mimo", "mimo_v2_flash", "glm4_moe")


def _qk_norm(cfg: Config, model_type: str) -> bool:
    """Whether q and k are normed (with weights) before rope."""
    if model_type in ("llama4", "llama4_text"):
        return False  # an L2 norm without weights: counted as elementwise via rotary (_gqa_layer)
    return (
        model_type in ("qwen3", "qwen3_moe", "gemma3", "gemma3_text", "minimax_m2", "exaone4", "exaone_moe")
        or model_type in (*STEP_TYPES, *GEMMA4_TYPES, *GDN_TYPES, *QK_NORM_ALWAYS_TYPES)
        or _bool(cfg, "use_qk_norm")
        or _bool(cfg, "qk_layernorm")
    )


def _gqa_layer(
    cfg: Config, model_type: str, base: AttentionSpec, i: int, w: int | None, chunk: int | None, use_rope: bool
) -> AttentionSpec:
    """Layer i's attention: the family's per-layer heads and sizes (sliding / global layers, overrides)."""
    heads, kv_heads, head_dim, v_head_dim = base.heads, base.kv_heads, base.head_dim, base.v_head_dim
    h, kvh, d, dv = heads, kv_heads, head_dim, v_head_dim
    if w is not None and model_type == "mimo_v2_flash":
        h = _int(cfg, "swa_num_attention_heads", default=heads)
        kvh = _int(cfg, "swa_num_key_value_heads", default=kv_heads * 2)
        d = _int(cfg, "swa_head_dim", default=head_dim)
        dv = _int(cfg, "swa_v_head_dim", default=v_head_dim)
    if w is not None and model_type in STEP_TYPES:
        h = _int(cfg, "num_sliding_attention_heads", default=heads)
    k_eq_v = False
    if w is None and model_type in GEMMA4_TYPES:  # global layers: own head size and KV heads, K = V
        d = dv = _int(cfg, "global_head_dim", default=head_dim)
        kvh = _int(cfg, "num_global_key_value_heads", default=kv_heads)
        k_eq_v = _bool(cfg, "attention_k_eq_v")
    over = _layer_override(cfg, i)  # transformers' saved per_layer_config (Gemma-4, Step)
    h = int(over.get("num_attention_heads", h))
    kvh = int(over.get("num_key_value_heads", kvh))
    if "head_dim" in over:
        d = dv = int(over["head_dim"])
    return replace(
        base,
        heads=h,
        kv_heads=kvh,
        head_dim=d,
        v_head_dim=dv,
        window=w,
        rotary_dim=rotary_dim(cfg, d) if use_rope else 0,
        sinks=model_type in SINK_TYPES
        or (w is not None and model_type == "mimo_v2_flash")
        or (w is not None and _bool(cfg, "add_swa_attention_sink_bias"))
        or (w is None and _bool(cfg, "add_full_attention_sink_bias")),
        k_eq_v=k_eq_v,
        output_gate_dim=_output_gate_dim(cfg, model_type, d),
        # Qwen3NextAttention's q_proj (bias=attention_bias) is 2 * heads * head_dim wide: q and the gate
        gate_bias=base.qkv_bias and model_type in GDN_TYPES,
        chunk=chunk,
    )
