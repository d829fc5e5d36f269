"""Config keys of the MiniMax lightning-attention hybrids -> which layers are lightning, and their spec.

transformers `minimax` (MiniMaxConfig, e.g. MiniMaxAI/MiniMax-Text-01-hf): `layer_types` of
'linear_attention' / 'full_attention'; without it transformers alternates, layer i full when (i+1) is odd.
The remote-code checkpoints (`minimax_text_01` MiniMax-Text-01, `minimax_m1` MiniMax-M1) spell the pattern
`attn_type_list` (0 = lightning, 1 = softmax attention; vLLM minimax_text_01.py reads it the same way) and the
residual scales `layernorm_{full_attention,linear_attention,mlp}_{alpha,beta}`. Every layer is MoE
(num_local_experts experts of intermediate_size, softmax top-k). A shared expert
(`shared_intermediate_size` > 0: vLLM's shared_mlp + coefficient gate) is refused by name: no released
checkpoint uses it and it is not modelled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from model_compute_sim.errors import ConfigError, NotModelledError
from model_compute_sim.simulator.config_read import _int, _per_layer, without_family_keys
from model_compute_sim.simulator.layers.lightning_attention import LightningAttentionSpec

LIGHTNING_TYPES = ("minimax", "minimax_text_01", "minimax_m1")
_KINDS = {"linear_attention": True, "full_attention": False}
# keys read here or that only scale the residual (element-wise; see lightning_formulas.lightning_assumptions)
_FAMILY_KEYS = (
    "attn_type_list",
    "block_size",
    "postnorm",
    "shared_moe_mode",
    "shared_intermediate_size",
    *(f"{b}_attn_{ab}_factor" for b in ("full", "linear") for ab in ("alpha", "beta")),
    "mlp_alpha_factor",
    "mlp_beta_factor",
    *(f"layernorm_{b}_{ab}" for b in ("full_attention", "linear_attention", "mlp") for ab in ("alpha", "beta")),
)


def lightning_layers(cfg: Mapping[str, Any], model_type: str, n: int) -> list[bool]:
    """Per layer: True for a lightning-attention layer, False for softmax (full) attention."""
    types = _per_layer(cfg, "layer_types", n)
    if types is not None:
        bad = sorted({str(t) for t in types} - set(_KINDS))
        if bad:
            raise ConfigError(f"layer_types has {bad}; MiniMax knows {sorted(_KINDS)}")
        return [_KINDS[str(t)] for t in types]
    kinds = _per_layer(cfg, "attn_type_list", n)
    if kinds is not None:
        bad = sorted({repr(k) for k in kinds if isinstance(k, bool) or k not in (0, 1)})
        if bad:
            raise ConfigError(f"attn_type_list has {bad}; entries are 0 (lightning attention) or 1 (softmax)")
        return [k == 0 for k in kinds]
    if model_type == "minimax":
        return [(i + 1) % 2 == 0 for i in range(n)]  # MiniMaxConfig.__post_init__ default
    raise ConfigError(
        f"model_type {model_type!r} needs 'attn_type_list' (0 = lightning, 1 = softmax attention per layer) "
        "or 'layer_types'"
    )


def _shared_width(cfg: Mapping[str, Any]) -> list[int]:
    raw = cfg.get("shared_intermediate_size") or 0
    items = raw if isinstance(raw, Sequence) and not isinstance(raw, str) else [raw]
    if any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in items):
        raise ConfigError(f"shared_intermediate_size must be a non-negative integer or a list of them, got {raw!r}")
    return [int(x) for x in items]


def lightning_spec(cfg: Mapping[str, Any]) -> LightningAttentionSpec:
    if any(_shared_width(cfg)):
        raise NotModelledError(
            f"config key 'shared_intermediate_size' ({cfg.get('shared_intermediate_size')!r}) describes a shared "
            "expert MLP with a coefficient gate beside MiniMax's routed experts, which is not modelled yet"
        )
    heads = _int(cfg, "num_attention_heads")
    # vLLM LinearAttention: config.head_dim, else hidden_size // heads
    head_dim = _int(cfg, "head_dim", default=_int(cfg, "hidden_size") // heads)
    return LightningAttentionSpec(heads=heads, head_dim=head_dim, block_size=_int(cfg, "block_size", default=256))


def without_lightning_keys(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The config minus what this module reads (for the check of keys no family models)."""
    return without_family_keys(cfg, _FAMILY_KEYS, "linear_attention")


def lightning_notes(cfg: Mapping[str, Any], layers: list[bool]) -> list[str]:
    source = "layer_types" if "layer_types" in cfg else "attn_type_list" if "attn_type_list" in cfg else None
    where = source or "transformers' default (alternating, layer 0 softmax)"
    return [
        f"MiniMax: {sum(layers)} lightning-attention and {len(layers) - sum(layers)} softmax-attention layers "
        f"(from {where}); every layer MoE"
    ]
