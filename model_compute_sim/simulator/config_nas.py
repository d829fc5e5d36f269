"""Nemotron-NAS / DeciLM (`nemotron-nas`: Llama-3.x-Nemotron Super / Ultra): heterogeneous layers.

`block_configs[i]` gives layer i its own attention (`n_heads_in_group` query heads per KV head, or
`no_op`: no attention and no input norm) and its own gated MLP width (`ffn_mult`, or `no_op`). The
width rule int(2 * ffn_mult * hidden / 3) rounded up to a multiple of 256 is DeciLM's
`_ffn_mult_to_intermediate_size` (HF nvidia/Llama-3_3-Nemotron-Super-49B-v1 modeling_decilm.py; the
same function in vLLM's and SGLang's nemotron_nas models). `replace_with_linear`, sink or windowed
attention and sparsified blocks are refused by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from model_compute_sim.errors import ConfigError, NotModelledError
from model_compute_sim.simulator.spec import AttentionSpec, LayerSpec, MlpSpec

NAS_TYPES = ("nemotron-nas",)
_UNMODELLED_BLOCK_KEYS = ("replace_with_linear", "sparsify", "num_sink_tokens", "window_length", "unshifted_sink")


def ffn_width(ffn_mult: float, hidden: int) -> int:
    """DeciLM: int(2 * ffn_mult * hidden / 3), rounded up to a multiple of 256."""
    width = int(2 * ffn_mult * hidden / 3)
    return width if width % 256 == 0 else width + 256 - width % 256


def _refuse_unmodelled(i: int, part: str, block: Mapping[str, Any]) -> None:
    for key in _UNMODELLED_BLOCK_KEYS:
        if block.get(key):
            raise NotModelledError(
                f"block_configs[{i}].{part}.{key}={block[key]!r} is not modelled (no_op and plain blocks are)"
            )


def nas_layers(cfg: Mapping[str, Any], n: int, hidden: int, rotary_dim: int) -> tuple[LayerSpec, ...]:
    blocks = cfg.get("block_configs")
    if not isinstance(blocks, Sequence) or len(blocks) != n:
        raise ConfigError(f"block_configs must list one block per layer ({n})")
    heads = int(cfg["num_attention_heads"])
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    bias = bool(cfg.get("attention_bias"))
    layers = []
    for i, block in enumerate(blocks):
        attn, ffn = block.get("attention", {}), block.get("ffn", {})
        _refuse_unmodelled(i, "attention", attn)
        _refuse_unmodelled(i, "ffn", ffn)
        attention: AttentionSpec | None = None
        if not attn.get("no_op"):
            group = attn.get("n_heads_in_group")
            if not isinstance(group, int) or group < 1 or heads % group:
                raise ConfigError(f"block_configs[{i}].attention.n_heads_in_group={group!r} must divide {heads}")
            attention = AttentionSpec(
                kind="gqa",
                heads=heads,
                kv_heads=heads // group,
                head_dim=head_dim,
                v_head_dim=head_dim,
                qkv_bias=bias,
                o_bias=bias,
                rotary_dim=rotary_dim,
            )
        mlp: MlpSpec | None = None
        if not ffn.get("no_op"):
            mult = ffn.get("ffn_mult")
            if not isinstance(mult, (int, float)) or mult <= 0:
                raise ConfigError(f"block_configs[{i}].ffn.ffn_mult={mult!r} must be a positive number")
            mlp = MlpSpec(intermediate=ffn_width(float(mult), hidden), bias=bool(cfg.get("mlp_bias")))
        # a no-op attention also drops its input norm: the block is one norm + MLP, as graph builds it
        layers.append(LayerSpec(attention=attention, mlp=mlp))
    return tuple(layers)
