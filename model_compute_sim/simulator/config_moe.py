"""MoE layout from config.json: experts, experts per token, shared experts, which layers are MoE.

Families spell these differently; every spelling read here is a real config key (transformers 5.24
config classes and released configs): experts per token `num_experts_per_tok` / `experts_per_token` /
`num_experts_per_token` / `moe_k` / `moe_topk` ..., shared experts `n_shared_experts` /
`num_shared_experts` / `moe_num_shared_experts`, the first MoE layer `first_k_dense_replace` /
`num_dense_layers` / `moe_layer_start_index`, layer patterns (`mlp_layer_types`, `moe_layer_freq`,
`decoder_sparse_step` + `mlp_only_layers`, ...), and per-layer lists of expert counts / top-k.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from model_compute_sim.errors import ConfigError, NotModelledError
from model_compute_sim.simulator.config_read import Config, _bool, _first, _int, _ints, _opt_int, _per_layer
from model_compute_sim.simulator.families import GEMMA4_TYPES, STEP_TYPES
from model_compute_sim.simulator.spec import MoeSpec

# transformers' config-class defaults for keys a hand-written config may leave out
FIRST_K_DENSE_DEFAULT = {
    "deepseek_v3": 3,
    "deepseek_v32": 3,
    "kimi_k2": 3,
    "glm_moe_dsa": 3,
    "glm4_moe": 1,
    "kimi_linear": 1,
    "step3p7": 3,
    "step3p5": 3,
}
N_SHARED_DEFAULT = {
    "deepseek_v2": 2,
    "deepseek_v3": 1,
    "deepseek_v32": 1,
    "kimi_k2": 1,
    "glm_moe_dsa": 1,
    "glm4_moe": 1,
    "kimi_linear": 1,
}
# a shared expert of `shared_expert_intermediate_size` behind a sigmoid gate H -> 1
QWEN_GATED_SHARED = ("qwen2_moe", "qwen3_next", "qwen3_5_moe", "qwen3_5_moe_text")
# families with one shared MLP beside the experts, added without a gate, and the key of its width
# (transformers 5.24 GraniteMoeSharedMoE.shared_mlp, FlintSparseMoeBlock.shared_expert,
# Kolibri1SparseMoeBlock.shared_experts)
ONE_SHARED_MLP = {
    "granitemoeshared": "shared_intermediate_size",
    "granitemoe_swa": "shared_intermediate_size",
    "flint": "shared_expert_intermediate_size",
    "kolibri1": "shared_expert_intermediate_size",
}
EXPERT_KEYS = ("n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts")
# the spellings of "experts per token" across families (transformers 5.24 config classes and released configs)
TOP_K_KEYS = (
    "num_experts_per_tok",
    "experts_per_token",
    "num_experts_per_token",
    "moe_top_k",
    "moe_k",
    "moe_topk",
    "top_k_experts",
    "num_selected_experts",
)


def moe_layers(cfg: Config, n: int, experts: int) -> list[bool]:
    """Which layers are MoE, from the config's own keys (never assume all)."""
    if experts <= 0:
        return [False] * n
    mlp_types = _per_layer(cfg, "mlp_layer_types", n)
    if mlp_types is not None:
        return [str(t) in ("sparse", "moe") for t in mlp_types]
    freq = cfg.get("moe_layer_freq")
    if isinstance(freq, Sequence) and not isinstance(freq, str):
        items = _per_layer(cfg, "moe_layer_freq", n)
        assert items is not None
        return [bool(x) for x in _ints("moe_layer_freq", items)]
    moe_layers = cfg.get("moe_layers")
    if isinstance(moe_layers, Sequence) and not isinstance(moe_layers, str):
        chosen = set(_ints("moe_layers", moe_layers))
        return [i in chosen for i in range(n)]
    enum = cfg.get("moe_layers_enum")
    if enum is not None:
        items = enum.split(",") if isinstance(enum, str) else enum
        chosen = set(_ints("moe_layers_enum", [x for x in items if str(x).strip()]))
        return [i in chosen for i in range(n)]
    if "interleave_moe_layer_step" in cfg:
        step = _int(cfg, "interleave_moe_layer_step", default=1)
        return [(i + 1) % step == 0 for i in range(n)]
    if "decoder_sparse_step" in cfg or "mlp_only_layers" in cfg:
        step = _int(cfg, "decoder_sparse_step", default=1)
        only = set(_ints("mlp_only_layers", cfg.get("mlp_only_layers") or []))
        return [(i not in only) and (i + 1) % step == 0 for i in range(n)]
    if "moe_layer_start_index" in cfg or "moe_layer_interval" in cfg:  # ERNIE-4.5: every interval-th layer in a range
        start = _int(cfg, "moe_layer_start_index", default=0, minimum=0)
        end = _int(cfg, "moe_layer_end_index", default=n - 1, minimum=-1)
        every = _int(cfg, "moe_layer_interval", default=1)
        end = n - 1 if end == -1 else end
        return [(i + 1) % every == 0 and start <= i <= end for i in range(n)]
    if "num_dense_layers" in cfg:  # AFMoE, LFM2-MoE: the first num_dense_layers layers are dense
        first = _int(cfg, "num_dense_layers", minimum=0)
        return [i >= first for i in range(n)]
    model_type = str(cfg.get("model_type", ""))
    if model_type == "mimo_v2_flash":  # transformers' default: layer 0 dense, the rest MoE
        return [i > 0 for i in range(n)]
    default_dense = FIRST_K_DENSE_DEFAULT.get(model_type, 0)
    fkd = _int(cfg, "first_k_dense_replace", default=default_dense, minimum=0)
    every = freq if isinstance(freq, int) and freq > 0 else 1
    return [i >= fkd and i % every == 0 for i in range(n)]


# the keys of each way of saying which layers are MoE, in the order moe_layers reads them
PATTERN_KEYS = (
    ("mlp_layer_types",),
    ("moe_layers",),
    ("moe_layers_enum",),
    ("interleave_moe_layer_step",),
    ("decoder_sparse_step", "mlp_only_layers"),
    ("moe_layer_start_index", "moe_layer_end_index", "moe_layer_interval"),
    ("num_dense_layers",),
    ("first_k_dense_replace", "moe_layer_freq"),
)


def pattern_disagreement(cfg: Config, n: int) -> str | None:
    """A key of a second MoE-layer pattern that says otherwise than the first one present (moe_layers reads
    only the first: the other would be silently ignored), or None when every pattern present agrees."""
    base = {k: v for k, v in cfg.items() if not any(k in g for g in PATTERN_KEYS)}
    first: list[bool] | None = None
    for group in PATTERN_KEYS:
        present = {k: cfg[k] for k in group if cfg.get(k) is not None}
        if not present:
            continue
        flags = moe_layers({**base, **present, "model_type": ""}, n, 1)
        if first is None:
            first = flags
        elif flags != first:
            return next(iter(present))
    return None


def moe_specs(cfg: Config, model_type: str, hidden: int, gated: bool, n: int) -> list[MoeSpec | None]:
    """One MoE spec per layer. Expert counts and experts per token may be per-layer lists (Hunyuan-MoE:
    `num_experts`, `moe_topk`): layer i then reads entry i."""
    lists = [k for k in (*EXPERT_KEYS, *TOP_K_KEYS) if isinstance(cfg.get(k), list)]
    if not lists:
        return [moe_spec(cfg, model_type, hidden, gated)] * n
    per = {k: _per_layer(cfg, k, n) or [] for k in lists}
    return [moe_spec({**cfg, **{k: v[i] for k, v in per.items()}}, model_type, hidden, gated) for i in range(n)]


def _top_k(cfg: Config, experts: int) -> int:
    """Experts per token, from the spellings families use; never `top_k`: Kimi configs carry the sampling
    top_k (50) beside it. A MoE config without a known spelling is refused naming its expert key and the
    spellings read, with the config's own keys that may be its spelling."""
    if _first(cfg, *TOP_K_KEYS) is not None:
        return _int(cfg, *TOP_K_KEYS)
    key = next(k for k in EXPERT_KEYS if cfg.get(k))
    maybe = sorted(k for k in cfg if re.search(r"top|_k$|^k_|activ|select|per_tok|per_token|routed", k))
    raise NotModelledError(
        f"config has {key!r} ({experts} routed experts) but none of the experts-per-token keys {list(TOP_K_KEYS)}"
        + (f"; its keys {maybe} may spell it, a spelling not modelled" if maybe else "")
        + ": the MoE FLOPs depend on it, so no estimate is given"
    )


def moe_spec(cfg: Config, model_type: str, hidden: int, gated: bool = True) -> MoeSpec | None:
    experts = _opt_int(cfg, *EXPERT_KEYS)
    if not experts or (model_type in GEMMA4_TYPES and not _bool(cfg, "enable_moe_block")):
        return None
    top_k = _top_k(cfg, experts)
    if model_type == "phimoe" and top_k != 2:  # transformers 5.24 sparsemixer: the best, then the next best
        raise NotModelledError(
            f"num_experts_per_tok={top_k} on PhiMoE: its sparsemixer router picks two experts in code whatever "
            "'num_experts_per_tok' says, so which count runs is ambiguous"
        )
    if top_k > experts:
        raise ConfigError(f"num_experts_per_tok ({top_k}) exceeds the number of experts ({experts})")
    inter = _int(
        cfg, "moe_intermediate_size", "expert_intermediate_size", "expert_ffn_hidden_size", "intermediate_size"
    )
    shared = 0
    n_shared = _opt_int(cfg, "n_shared_experts", "num_shared_experts", "moe_num_shared_experts")
    if n_shared is None:
        n_shared = 0 if "n_shared_experts" in cfg else N_SHARED_DEFAULT.get(model_type, 0)
    if model_type in QWEN_GATED_SHARED:
        shared = _int(cfg, "shared_expert_intermediate_size", default=0, minimum=0)
    elif model_type in ("llama4", "llama4_text"):
        shared = inter  # one shared expert of the routed width
    elif model_type in ONE_SHARED_MLP:  # one ungated-add shared MLP; absent when the width is 0
        shared = _int(cfg, ONE_SHARED_MLP[model_type], default=0, minimum=0)
    elif model_type == "hunyuan_v1_moe":  # transformers 5.24 HunYuanMoEV1Moe.shared_mlp: always one, intermediate_size
        shared = _int(cfg, "intermediate_size")
    elif model_type in STEP_TYPES:
        shared = (n_shared or 1) * _int(cfg, "share_expert_dim", "share_expert_dims", default=0, minimum=0)
    elif n_shared:
        width = _opt_int(cfg, "shared_expert_intermediate_size", "shared_intermediate_size")
        shared = n_shared * (width or _int(cfg, "moe_intermediate_size", "intermediate_size"))
    return MoeSpec(
        experts=experts,
        top_k=top_k,
        intermediate=inter,
        gated=gated,
        expert_bias=model_type == "gpt_oss",
        router_bias=model_type == "gpt_oss",  # a score-correction bias is config_params.correction_bias
        shared_intermediate=shared,
        shared_gate=model_type in QWEN_GATED_SHARED and shared > 0,
    )
