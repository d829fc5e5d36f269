"""MiniMax-M3 (`minimax_m3`, and the `minimax_m3_vl` wrapper's text model): which layers run sparse attention.

`sparse_attention_config` keys (as read by vLLM / SGLang / TensorRT-LLM's MiniMax-M3 code):
`sparse_attention_freq[i]` = 1 makes layer i sparse; `sparse_block_size` B and `sparse_topk_blocks` k
set the selection; `sparse_num_index_heads` x `sparse_index_dim` the index branch. Only the released
K-only index branch (`sparse_disable_index_value` = 1) with at least one always-kept local block is modelled:
otherwise the attended key count depends on the scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from model_compute_sim.errors import ConfigError, NotModelledError
from model_compute_sim.simulator.layers.msa import MsaSpec
from model_compute_sim.simulator.spec import AttentionSpec, KindSpec

MSA_TYPES = ("minimax_m3", "minimax_m3_vl")


def _engines_agree(cfg: Mapping[str, Any]) -> None:
    """transformers 5.24's MiniMax-M3 builds one shared expert and q / k norms whatever the config says; vLLM's
    reads 'n_shared_experts' and 'use_qk_norm'. Only the released values (1, true) give one model in both."""
    shared, qk = cfg.get("n_shared_experts"), cfg.get("use_qk_norm")
    if shared != 1 or qk is not True:
        raise NotModelledError(
            f"MiniMax-M3 with n_shared_experts={shared!r}, use_qk_norm={qk!r}: transformers builds one shared "
            "expert and q/k norms whatever these keys say, vLLM reads them, so the two engines build different "
            "models; give the released values (n_shared_experts: 1, use_qk_norm: true) if that is the model"
        )


def _flags(sc: Mapping[str, Any], key: str, n: int) -> list[bool]:
    v = sc.get(key)
    if not isinstance(v, Sequence) or isinstance(v, str) or len(v) < n:
        raise ConfigError(f"sparse_attention_config.{key} must list one flag per layer ({n}), got {v!r}")
    return [bool(x) for x in v[:n]]


def _int(sc: Mapping[str, Any], key: str, minimum: int) -> int:
    v = sc.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ConfigError(f"sparse_attention_config.{key} must be an integer >= {minimum}, got {v!r}")
    return v


def msa_mixers(cfg: Mapping[str, Any], attn: Sequence[KindSpec]) -> list[KindSpec]:
    _engines_agree(cfg)
    if cfg.get("attention_output_gate"):
        raise NotModelledError("MiniMax-M3 attention_output_gate=true is not modelled")
    sc = cfg.get("sparse_attention_config")
    if not isinstance(sc, Mapping):
        return list(attn)
    n = len(attn)
    sparse = _flags(sc, "sparse_attention_freq", n)
    no_value = _flags(sc, "sparse_disable_index_value", n) if "sparse_disable_index_value" in sc else [False] * n
    if any(s and not nv for s, nv in zip(sparse, no_value, strict=True)):
        raise NotModelledError(
            "sparse_attention_config.sparse_disable_index_value=0 on a sparse layer: the index value branch is "
            "not modelled"
        )
    if _int(sc, "sparse_local_block", 0) < 1:
        raise NotModelledError(
            "sparse_attention_config.sparse_local_block=0: which blocks a query attends then depends on the scores"
        )
    params = {
        "index_heads": _int(sc, "sparse_num_index_heads", 1),
        "index_dim": _int(sc, "sparse_index_dim", 1),
        "block": _int(sc, "sparse_block_size", 1),
        "topk": _int(sc, "sparse_topk_blocks", 1),
    }
    out: list[KindSpec] = []
    for a, s in zip(attn, sparse, strict=True):
        if s and not isinstance(a, AttentionSpec):
            raise ConfigError(f"sparse attention on a {a.kind!r} layer is not modelled")
        out.append(MsaSpec(attention=a, **params) if s and isinstance(a, AttentionSpec) else a)
    return out
