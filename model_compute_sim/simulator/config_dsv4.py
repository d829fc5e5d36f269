"""DeepSeek-V4 (`deepseek_v4`, and SGLang's `deepseek_ref` copies of its configs): per-layer attention specs.

Keys and their meaning from DeepSeek-V4's reference `inference/model.py` (ModelArgs, Attention): one
`compress_ratios` entry per layer (trailing entries describe the MTP layers), `sliding_window` is the
window W of every layer, `head_dim` the single KV latent, `o_groups` / `o_lora_rank` the grouped output
projection, `index_*` the ratio-4 indexer, `hc_mult` the hyper-connection streams.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from model_compute_sim.errors import ConfigError, NotModelledError
from model_compute_sim.simulator.layers.csa import CsaSpec

DSV4_TYPES = ("deepseek_v4", "deepseek_ref")
RATIOS = (0, 4, 128)


def _req(cfg: Mapping[str, Any], key: str, minimum: int = 1) -> int:
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ConfigError(f"DeepSeek-V4 config needs integer {key!r} >= {minimum}, got {v!r}")
    return v


def dsv4_attention(cfg: Mapping[str, Any], n: int) -> list[CsaSpec]:
    """One CsaSpec per layer; refuses ratios or layouts the reference code does not have."""
    if cfg.get("num_key_value_heads", 1) != 1:
        raise NotModelledError(
            f"DeepSeek-V4 attention has one KV latent; num_key_value_heads={cfg.get('num_key_value_heads')!r} "
            "is not modelled"
        )
    ratios = cfg.get("compress_ratios")
    if not isinstance(ratios, Sequence) or isinstance(ratios, str) or len(ratios) < n:
        raise ConfigError(f"compress_ratios must list one ratio per layer ({n}), got {ratios!r}")
    bad = sorted({r for r in ratios[:n] if r not in RATIOS})
    if bad:
        raise NotModelledError(f"compress_ratios values {bad} are not modelled (the reference code has {RATIOS})")
    heads, d = _req(cfg, "num_attention_heads"), _req(cfg, "head_dim")
    base = {
        "heads": heads,
        "head_dim": d,
        "rope_dim": _req(cfg, "qk_rope_head_dim"),
        "q_lora_rank": _req(cfg, "q_lora_rank"),
        "o_groups": _req(cfg, "o_groups"),
        "o_lora_rank": _req(cfg, "o_lora_rank"),
        "window": _req(cfg, "sliding_window"),
        "index_heads": _req(cfg, "index_n_heads"),
        "index_head_dim": _req(cfg, "index_head_dim"),
        "index_topk": _req(cfg, "index_topk"),
        "hc_mult": _req(cfg, "hc_mult"),
    }
    if (heads * d) % base["o_groups"]:
        raise ConfigError(f"num_attention_heads*head_dim={heads * d} is not divisible by o_groups={base['o_groups']}")
    return [CsaSpec(ratio=int(r), **base) for r in ratios[:n]]


def dsv4_notes(cfg: Mapping[str, Any]) -> list[str]:
    """What the result should say about DeepSeek-V4 keys that change no FLOP count."""
    notes = []
    hashed = cfg.get("num_hash_layers")
    if isinstance(hashed, int) and hashed > 0:
        notes.append(
            f"num_hash_layers={hashed}: the first {hashed} MoE layers pick experts by token id (tid2eid); their "
            "router GEMM still runs (its scores weight the experts), so they cost what score-routed layers cost"
        )
    return notes
