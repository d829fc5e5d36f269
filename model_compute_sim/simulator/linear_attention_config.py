"""Config keys of the linear-attention hybrids -> which layers are linear, and their `LinearAttentionSpec`.

Qwen3-Next (`qwen3_next`), Qwen3.5 / Qwen3.6 (`qwen3_5*`, text configs nested in the VL wrappers): Gated
DeltaNet layers from `layer_types` or, when absent, `full_attention_interval` (transformers' default 4:
layer i is full attention when (i+1) % interval == 0). Kimi-Linear (`kimi_linear`): Kimi Delta Attention
layers from `layer_types` or `linear_attn_config.kda_layers` / `full_attn_layers` (1-indexed in the
checkpoint). Keys a family adds that change the mixer and are not modelled are refused by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from model_compute_sim.errors import ConfigError
from model_compute_sim.simulator.config_read import _int, check_multiple, without_family_keys
from model_compute_sim.simulator.layers.linear_attention import LinearAttentionSpec

GDN_TYPES = ("qwen3_next", "qwen3_5", "qwen3_5_text", "qwen3_5_moe", "qwen3_5_moe_text")
KDA_TYPES = ("kimi_linear",)
LINEAR_MODEL_TYPES = (*GDN_TYPES, *KDA_TYPES)
_STATE_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def _types(cfg: Mapping[str, Any], n: int) -> list[str] | None:
    types = cfg.get("layer_types")
    if types is None:
        return None
    if not isinstance(types, Sequence) or isinstance(types, str) or len(types) < n:
        raise ConfigError(f"config field 'layer_types' must list {n} layer types, got {types!r}")
    bad = sorted({str(t) for t in types[:n]} - {"linear_attention", "full_attention"})
    if bad:
        raise ConfigError(f"layer_types has {bad}; this family knows 'linear_attention' and 'full_attention'")
    return [str(t) for t in types[:n]]


def linear_layers(cfg: Mapping[str, Any], model_type: str, n: int) -> list[bool]:
    """Per layer: True for a linear-attention layer, False for full attention."""
    types = _types(cfg, n)
    if types is not None:
        return [t == "linear_attention" for t in types]
    if model_type in GDN_TYPES:
        every = _int(cfg, "full_attention_interval", default=4)
        return [(i + 1) % every != 0 for i in range(n)]
    lac = cfg.get("linear_attn_config")
    if isinstance(lac, Mapping) and "kda_layers" in lac and "full_attn_layers" in lac:
        kda = {int(x) - 1 for x in lac["kda_layers"]}
        full = {int(x) - 1 for x in lac["full_attn_layers"]}
        missing = sorted(i + 1 for i in range(n) if (i in kda) == (i in full))
        if missing:
            raise ConfigError(
                f"linear_attn_config: layers {missing[:8]} are in neither or both of kda_layers / full_attn_layers"
            )
        return [i in kda for i in range(n)]
    return [not (i and i % 4 == 0) for i in range(n)]  # transformers' KimiLinearConfig default


def _state_dtype(cfg: Mapping[str, Any]) -> str:
    raw = cfg.get("mamba_ssm_dtype")
    if raw is None:
        return "bf16"  # vLLM's mamba_ssm_cache_dtype="auto": the model dtype
    if str(raw) not in _STATE_DTYPES:
        raise ConfigError(f"mamba_ssm_dtype {raw!r} is not one of {sorted(_STATE_DTYPES)}")
    return _STATE_DTYPES[str(raw)]


def gdn_spec(cfg: Mapping[str, Any], model_type: str) -> LinearAttentionSpec:
    """Gated DeltaNet: Qwen3-Next fuses q|k|v|z and b|a into two projections, Qwen3.5 splits them."""
    hk, hv = _int(cfg, "linear_num_key_heads", default=16), _int(cfg, "linear_num_value_heads", default=32)
    dk, dv = _int(cfg, "linear_key_head_dim", default=128), _int(cfg, "linear_value_head_dim", default=128)
    check_multiple("linear_num_value_heads", hv, "linear_num_key_heads", hk)
    kd, vd = hk * dk, hv * dv
    if model_type == "qwen3_next":
        proj: tuple[tuple[str, int], ...] = (("in_proj_qkvz", 2 * kd + 2 * vd), ("in_proj_ba", 2 * hv))
    else:
        proj = (("in_proj_qkv", 2 * kd + vd), ("in_proj_z", vd), ("in_proj_b", hv), ("in_proj_a", hv))
    return LinearAttentionSpec(
        kind="gated_deltanet",
        k_heads=hk,
        v_heads=hv,
        head_k_dim=dk,
        head_v_dim=dv,
        conv_kernel=_int(cfg, "linear_conv_kernel_dim", default=4),
        projections=proj,
        state_dtype=_state_dtype(cfg),
    )


def kda_spec(cfg: Mapping[str, Any]) -> LinearAttentionSpec:
    """Kimi Delta Attention: q/k/v/b projections, rank-head_dim forget and output gates (Kimi-K3
    use_full_rank_gate: a full-rank H -> heads*head_dim output gate g_proj instead of g_a/g_b)."""
    lac = cfg.get("linear_attn_config")
    lac = lac if isinstance(lac, Mapping) else {}
    heads = _int(lac, "num_heads") if "num_heads" in lac else _int(cfg, "linear_num_heads", default=32)
    d = _int(lac, "head_dim") if "head_dim" in lac else _int(cfg, "linear_head_dim", default=128)
    kernel = (
        _int(lac, "short_conv_kernel_size")
        if "short_conv_kernel_size" in lac
        else _int(cfg, "linear_conv_kernel_dim", default=4)
    )
    hd = heads * d
    full_rank = lac.get("use_full_rank_gate") is True
    gate: tuple[tuple[str, int], ...] = (("g_proj", hd),) if full_rank else ()
    return LinearAttentionSpec(
        kind="kimi_delta_attention",
        k_heads=heads,
        v_heads=heads,
        head_k_dim=d,
        head_v_dim=d,
        conv_kernel=kernel,
        projections=(("q_proj", hd), ("k_proj", hd), ("v_proj", hd), *gate, ("b_proj", heads)),
        gate_rank=d,
        full_rank_gate=full_rank,
        state_dtype=_state_dtype(cfg),
    )


def linear_spec(cfg: Mapping[str, Any], model_type: str) -> LinearAttentionSpec:
    return kda_spec(cfg) if model_type in KDA_TYPES else gdn_spec(cfg, model_type)


_FAMILY_KEYS = (
    "linear_conv_kernel_dim",
    "linear_num_key_heads",
    "linear_num_value_heads",
    "linear_key_head_dim",
    "linear_value_head_dim",
    "linear_attn_config",
    "full_attention_interval",
)


def without_linear_keys(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The config minus what this module reads (for the check of keys no family models)."""
    return without_family_keys(cfg, _FAMILY_KEYS, "linear_attention")
