"""Hugging Face `config.json` -> `ModelSpec`.

The only module of the simulator that reads files. Family quirks live in small, named helpers;
every key read here is a real `config.json` key (aliases listed where families disagree).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from model_compute_sim.errors import ConfigError, NotModelledError
from model_compute_sim.simulator import config_hybrid
from model_compute_sim.simulator import config_keys as K
from model_compute_sim.simulator.config_hybrid import FAMILIES as HYBRID_FAMILIES
from model_compute_sim.simulator.config_quant import weight_dtypes
from model_compute_sim.simulator.spec import (
    AttentionSpec,
    IndexerSpec,
    LayerSpec,
    MlpSpec,
    ModelSpec,
    MoeSpec,
)

Config = Mapping[str, Any]

STEP_TYPES = ("step3p7", "step3p5")  # transformers names Step-3.7's text config "step3p5"
GEMMA_TYPES = ("gemma2", "gemma3", "gemma3_text", "gemma4", "gemma4_text")
GEMMA4_TYPES = ("gemma4", "gemma4_text")
# transformers' config-class defaults for keys a hand-written config may leave out
FIRST_K_DENSE_DEFAULT = {
    "deepseek_v3": 3,
    "deepseek_v32": 3,
    "kimi_k2": 3,
    "glm_moe_dsa": 3,
    "glm4_moe": 1,
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
}

NESTED_TEXT_KEYS = ("text_config", "language_config", "llm_config")

# model types handled by a named family rule; anything else with standard keys runs on the
# generic decoder path and says so in `assumptions`.
KNOWN_MODEL_TYPES = frozenset(
    {
        "llama",
        "mistral",
        "mixtral",
        "qwen2",
        "qwen2_moe",
        "qwen3",
        "qwen3_moe",
        "mimo",
        "deepseek_v2",
        "deepseek_v3",
        "deepseek_v32",
        "kimi_k2",
        "kimi_k25",
        "glm_moe_dsa",
        "glm4_moe",
        "glm4_moe_lite",
        "minimax_m2",
        "gpt_oss",
        "gemma2",
        "gemma3",
        "gemma3_text",
        "llama4",
        "llama4_text",
        "mimo_v2_flash",
        "step3p7",
        "step3p5",
        "gemma4",
        "gemma4_text",
        "qwen3_vl",
        "qwen3_vl_text",
        "qwen3_vl_moe",
        "qwen3_vl_moe_text",
        "gemma",  # Gemma-1: a llama layout with a gated GeLU (GeGLU) MLP
        *HYBRID_FAMILIES,
    }
)

# families whose mixers are not modelled yet (a later issue): name the feature plainly
HYBRID_MODEL_TYPES: dict[str, str] = {
    "qwen3_next": "linear attention (Gated DeltaNet) layers",
    "qwen3_5": "linear attention (Gated DeltaNet) layers",
    "qwen3_5_text": "linear attention (Gated DeltaNet) layers",
    "qwen3_5_moe": "linear attention (Gated DeltaNet) layers",
    "qwen3_5_moe_text": "linear attention (Gated DeltaNet) layers",
    "kimi_linear": "linear attention (Kimi Delta Attention) layers",
    "kimi_k3": "linear attention (Kimi Delta Attention) layers",
    "deepseek_v4": "DeepSeek-V4 compressed attention and hyper-connections",
    "deepseek_ref": "DeepSeek-V4 compressed attention and hyper-connections",
    "minimax_m3": "MiniMax-M3 block-sparse attention",
    "minimax_m3_vl": "MiniMax-M3 block-sparse attention",
    "nemotron-nas": "per-layer heterogeneous (NAS) blocks",
}

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

MAX_LAYERS = 4096  # 30x the deepest published decoder

REQUIRED_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")
_KEY_ALIASES: dict[str, tuple[str, ...]] = {
    "hidden_size": ("hidden_size", "d_model", "n_embd", "dim"),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers", "n_layers"),
    "num_attention_heads": ("num_attention_heads", "n_head", "num_heads", "n_heads"),
    "vocab_size": ("vocab_size",),
}


# --- loading ---------------------------------------------------------------------------------


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a config.json, or the config.json inside a directory (e.g. a HF cache snapshot)."""
    p = Path(path).expanduser()
    if p.is_dir():
        candidate = p / "config.json"
        if not candidate.is_file():
            found = sorted(x.name for x in p.iterdir())[:10]
            raise ConfigError(f"directory {str(p)!r} holds no config.json (found: {found})")
        p = candidate
    if not p.exists():
        raise ConfigError(f"config path {str(p)!r} does not exist; pass a config.json file or a directory holding one")
    if not p.is_file():
        raise ConfigError(f"config path {str(p)!r} is not a regular file")
    if p.stat().st_size > 16 * 1024 * 1024:
        raise ConfigError(f"config file {str(p)!r} is larger than 16 MiB; that is not a config.json")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not UTF-8 text: {e}") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"config file {str(p)!r} is not valid JSON: {e.msg} at line {e.lineno}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(p)!r} holds a JSON {type(data).__name__}, expected an object")
    return data


def text_config(cfg: Config) -> tuple[dict[str, Any], str]:
    """Flatten nested text configs: returns (text config, outer model_type)."""
    outer_type = str(cfg.get("model_type", ""))
    for key in NESTED_TEXT_KEYS:
        inner = cfg.get(key)
        if isinstance(inner, Mapping) and any(k in inner for k in _KEY_ALIASES["hidden_size"]):
            merged = {k: v for k, v in cfg.items() if k not in NESTED_TEXT_KEYS and not k.endswith("_config")}
            merged.update(inner)
            if "quantization_config" in cfg and "quantization_config" not in inner:
                merged["quantization_config"] = cfg["quantization_config"]
            return merged, outer_type
    return dict(cfg), outer_type


# --- small typed readers ----------------------------------------------------------------------


def _first(cfg: Config, *keys: str) -> Any:
    for k in keys:
        if k in cfg and cfg[k] is not None:
            return cfg[k]
    return None


def _int(cfg: Config, *keys: str, default: int | None = None, minimum: int = 1) -> int:
    v = _first(cfg, *keys)
    if v is None:
        if default is None:
            raise ConfigError(f"config is missing {keys[0]!r} (also looked for {list(keys[1:])})")
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or int(v) != v:
        raise ConfigError(f"config field {keys[0]!r} must be an integer, got {v!r}")
    if int(v) < minimum:
        raise ConfigError(f"config field {keys[0]!r} must be >= {minimum}, got {v!r}")
    return int(v)


def _opt_int(cfg: Config, *keys: str, minimum: int = 0) -> int | None:
    v = _first(cfg, *keys)
    return None if v is None else _int(cfg, *keys, minimum=minimum)


def _bool(cfg: Config, key: str, default: bool = False) -> bool:
    v = cfg.get(key)
    return default if v is None else bool(v)


def _per_layer(cfg: Config, key: str, n: int) -> list[Any] | None:
    v = cfg.get(key)
    if isinstance(v, Sequence) and not isinstance(v, str):
        items = list(v)
        if len(items) < n:
            raise ConfigError(f"config field {key!r} has {len(items)} entries but num_hidden_layers is {n}")
        return items[:n]  # trailing entries describe MTP / next-n layers
    return None


# --- families ----------------------------------------------------------------------------------


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
    if model_type == "gemma2":
        return [window if i % 2 == 0 else None for i in range(n)]
    if model_type in ("gemma3", "gemma3_text"):
        every = _int(cfg, "sliding_window_pattern", default=6)
        return [None if (i + 1) % every == 0 else window for i in range(n)]
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


def _ints(key: str, items: Any) -> list[int]:
    """A config list of layer indices / flags as ints, or a ConfigError naming the key."""
    try:
        if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
            raise TypeError
        return [int(str(x).strip()) if isinstance(x, str) else int(x) for x in items]
    except (TypeError, ValueError) as e:
        raise ConfigError(f"config field {key!r} must be a list of integers, got {items!r}") from e


def _moe_layers(cfg: Config, n: int, experts: int) -> list[bool]:
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


def _moe_spec(cfg: Config, model_type: str, hidden: int, gated: bool = True) -> MoeSpec | None:
    experts = _opt_int(cfg, "n_routed_experts", "num_local_experts", "num_experts", "moe_num_experts")
    if not experts or (model_type in GEMMA4_TYPES and not _bool(cfg, "enable_moe_block")):
        return None
    top_k = _int(cfg, *TOP_K_KEYS)  # never `top_k`: Kimi configs carry the sampling top_k (50) beside it
    if top_k > experts:
        raise ConfigError(f"num_experts_per_tok ({top_k}) exceeds the number of experts ({experts})")
    inter = _int(
        cfg, "moe_intermediate_size", "expert_intermediate_size", "expert_ffn_hidden_size", "intermediate_size"
    )
    shared = 0
    n_shared = _opt_int(cfg, "n_shared_experts", "num_shared_experts", "moe_num_shared_experts")
    if n_shared is None:
        n_shared = 0 if "n_shared_experts" in cfg else N_SHARED_DEFAULT.get(model_type, 0)
    if model_type == "qwen2_moe":
        shared = _int(cfg, "shared_expert_intermediate_size", default=0, minimum=0)
    elif model_type in ("llama4", "llama4_text"):
        shared = inter  # one shared expert of the routed width
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
        router_bias=model_type == "gpt_oss",
        shared_intermediate=shared,
        shared_gate=model_type == "qwen2_moe" and shared > 0,
    )


def _dense_width(cfg: Config, model_type: str) -> int:
    if model_type in ("llama4", "llama4_text"):
        return _int(cfg, "intermediate_size_mlp", "intermediate_size")
    if "n_inner" in cfg and cfg["n_inner"] is None and "intermediate_size" not in cfg:
        return 4 * _int(cfg, *_KEY_ALIASES["hidden_size"])  # GPT-2 convention: n_inner=None means 4*n_embd
    return _int(cfg, "dense_intermediate_size", "intermediate_size", "ffn_dim", "n_inner", "ffn_hidden_size")


def _rotary_dim(cfg: Config, head_dim: int) -> int:
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


def _attention_specs(cfg: Config, model_type: str, hidden: int, n: int) -> list[AttentionSpec]:
    heads = _int(cfg, "num_attention_heads", "n_head", "num_heads", "n_heads")
    kv_heads = _int(cfg, "num_key_value_heads", "num_kv_heads", "n_kv_heads", default=heads)
    if _bool(cfg, "multi_query") and not _bool(cfg, "new_decoder_architecture"):
        kv_heads = 1  # Falcon / GPT-BigCode multi-query attention: one K/V head whatever num_kv_heads says
    windows = _sliding_layers(cfg, model_type, n)
    chunks = _chunked_layers(cfg, n)
    bias = any(
        _bool(cfg, k) for k in ("attention_bias", "use_bias", "bias", "qkv_bias", "use_qkv_bias", "add_bias_linear")
    )
    if cfg.get("kv_lora_rank") is not None:  # multi-head latent attention
        nope = _int(cfg, "qk_nope_head_dim")
        rope = _int(cfg, "qk_rope_head_dim", minimum=0)
        v = _int(cfg, "v_head_dim")
        kv_lora = _int(cfg, "kv_lora_rank")
        q_lora = _opt_int(cfg, "q_lora_rank")
        indexers = _indexer(cfg, n)
        return [
            AttentionSpec(
                kind="mla",
                heads=heads,
                kv_heads=heads,
                head_dim=nope + rope,
                v_head_dim=v,
                window=windows[i],
                qkv_bias=bias,
                o_bias=bias,
                rotary_dim=rope,
                q_lora_rank=q_lora,
                kv_lora_rank=kv_lora,
                qk_nope_dim=nope,
                qk_rope_dim=rope,
                indexer=indexers[i],
            )
            for i in range(n)
        ]
    head_dim = _opt_int(cfg, "head_dim", minimum=1) or hidden // heads
    if head_dim * heads != hidden and cfg.get("head_dim") is None:
        raise ConfigError(
            f"hidden_size {hidden} is not divisible by num_attention_heads {heads} and head_dim is missing"
        )
    v_head_dim = _opt_int(cfg, "v_head_dim", minimum=1) or head_dim
    if heads % kv_heads:
        raise ConfigError(f"num_attention_heads ({heads}) is not a multiple of num_key_value_heads ({kv_heads})")
    qkv_bias = bias or model_type in ("qwen2", "qwen2_moe", "mimo", "gpt_oss")
    o_bias = bias and model_type not in ("qwen2", "qwen2_moe", "mimo", "mimo_v2_flash", "glm4_moe")
    if model_type == "gpt_oss":
        o_bias = True
    qk_norm = (
        model_type
        in (
            "qwen3",
            "qwen3_moe",
            "gemma3",
            "gemma3_text",
            "minimax_m2",
            *STEP_TYPES,
            *GEMMA4_TYPES,
        )
        or _bool(cfg, "use_qk_norm")
        or _bool(cfg, "qk_layernorm")
    )
    if model_type in ("llama4", "llama4_text"):
        qk_norm = False  # an L2 norm without weights: counted as elementwise via rotary below
    no_rope = _no_rope_layers(cfg, n)
    specs: list[AttentionSpec] = []
    for i in range(n):
        w = windows[i]
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
        use_rope = True if no_rope is None else bool(no_rope[i])
        specs.append(
            AttentionSpec(
                kind="gqa",
                heads=h,
                kv_heads=kvh,
                head_dim=d,
                v_head_dim=dv,
                window=w,
                qkv_bias=qkv_bias,
                o_bias=o_bias,
                qk_norm=qk_norm,
                rotary_dim=_rotary_dim(cfg, d) if use_rope else 0,
                sinks=model_type == "gpt_oss"
                or (w is not None and _bool(cfg, "add_swa_attention_sink_bias"))
                or (w is None and _bool(cfg, "add_full_attention_sink_bias")),
                k_eq_v=k_eq_v,
                output_gate_dim=_step_gate_dim(cfg, d) if model_type in STEP_TYPES else 0,
                chunk=chunks[i],
            )
        )
    return specs


# --- entry point -------------------------------------------------------------------------------


def _refuse_unmodelled(cfg: Config, model_type: str, outer_type: str, name: str | None) -> None:
    for t in (model_type, outer_type):
        if t in HYBRID_MODEL_TYPES:
            raise NotModelledError(
                f"model_type {t!r} ({name or 'this config'}) uses {HYBRID_MODEL_TYPES[t]}, which are not modelled "
                "yet; its FLOPs would be wrong, so no estimate is given. Supported families include "
                "llama, mistral, mixtral, qwen2/qwen3(+moe), deepseek_v2/v3/v32, kimi_k2, glm4_moe, glm_moe_dsa, "
                "minimax_m2, gpt_oss, gemma2/3, llama4, mimo_v2_flash, step3p7"
            )
    # the hybrid families' readers (config_hybrid.py) understand their own pattern and SSM keys
    understood = config_hybrid.UNDERSTOOD_KEYS.get(model_type, frozenset())
    K.check_unmodelled_keys({k: v for k, v in cfg.items() if k not in understood}, name)


def _layers(
    cfg: Config, model_type: str, hidden: int, n: int, gated: bool, parallel: bool, norms: int
) -> tuple[LayerSpec, ...]:
    attn = _attention_specs(cfg, model_type, hidden, n)
    moe = _moe_spec(cfg, model_type, hidden, gated)
    moe_flags = _moe_layers(cfg, n, moe.experts if moe else 0)
    dense: MlpSpec | None = None
    mlp_bias = any(_bool(cfg, k) for k in ("mlp_bias", "use_bias", "bias", "add_bias_linear"))
    parallel_moe = model_type in GEMMA4_TYPES and moe is not None  # Gemma-4: MoE beside the dense MLP
    if parallel_moe or not all(moe_flags):
        dense = MlpSpec(intermediate=_dense_width(cfg, model_type), gated=gated, bias=mlp_bias)
    return tuple(
        LayerSpec(
            attention=attn[i],
            mlp=dense if (parallel_moe or not moe_flags[i]) else None,
            moe=moe if moe_flags[i] else None,
            norms=norms,
            parallel=parallel,
        )
        for i in range(n)
    )


def normalize(raw: Config, name: str | None = None, hf_id: str | None = None) -> ModelSpec:
    """Turn a (possibly nested) HF config dict into a `ModelSpec`, naming any missing key."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config must be a JSON object, got {type(raw).__name__}")
    cfg, outer_type = text_config(raw)
    model_type = str(cfg.get("model_type") or outer_type or "")
    _refuse_unmodelled(cfg, model_type, outer_type, name)
    if model_type in HYBRID_FAMILIES:
        cfg = config_hybrid.derived_keys(cfg, model_type)
    missing = [k for k in REQUIRED_KEYS if _first(cfg, *_KEY_ALIASES[k]) is None]
    if missing:
        raise ConfigError(
            f"config (model_type {model_type or 'unknown'!r}) is missing required keys {missing}; a decoder config "
            f"needs {list(REQUIRED_KEYS)} (plus optional num_key_value_heads, head_dim, intermediate_size)"
        )
    generic = model_type not in KNOWN_MODEL_TYPES
    notes: list[str] = []
    wrapper = next((k for k in NESTED_TEXT_KEYS if isinstance(raw.get(k), Mapping)), None)
    if wrapper is not None:
        notes.append(
            f"multimodal wrapper (model_type {outer_type or 'unknown'!r}): costed through its text model "
            f"({wrapper}, model_type {model_type!r}); the vision / audio tower and projector are not included"
        )
    gated, parallel, norms, norm_kind = True, False, 4 if model_type in GEMMA_TYPES else 2, "rmsnorm"
    if generic:
        ignored = K.check_generic_keys(cfg, model_type, name)
        gated = K.mlp_gated(cfg, model_type, name)
        norm_kind, parallel, norms, layout_notes = K.generic_layout(cfg, model_type)
        act = next(cfg[k] for k in K.ACTIVATION_KEYS if cfg.get(k))
        notes.append(
            f"model_type {model_type or 'unknown'!r} has no family rule: ran the generic decoder path after checking "
            f"that every structural key is understood; MLP {'gated (gate/up/down)' if gated else 'plain (up/down)'} "
            f"from activation {act!r}"
        )
        notes += layout_notes
        if ignored:
            notes.append(f"keys read as non-structural and ignored: {sorted(ignored)}")
    hidden = _int(cfg, *_KEY_ALIASES["hidden_size"])
    n = _int(cfg, *_KEY_ALIASES["num_hidden_layers"])
    if n > MAX_LAYERS:  # per-layer structures are built: refuse absurd counts instead of exhausting memory
        raise ConfigError(f"num_hidden_layers={n} is not plausible (at most {MAX_LAYERS}); check the config")
    if model_type in HYBRID_FAMILIES:
        attn = _attention_specs(cfg, model_type, hidden, n)
        layers = tuple(config_hybrid.hybrid_layers(cfg, model_type, attn[0], n))
        notes += config_hybrid.notes(cfg)
    else:
        layers = _layers(cfg, model_type, hidden, n, gated, parallel, norms)
    wdtype, wsource, attn_dtype = weight_dtypes(cfg)
    tie = _first(cfg, "tie_word_embeddings", "tie_embedding")
    return ModelSpec(
        name=name or str(cfg.get("_name_or_path") or model_type or "custom"),
        model_type=model_type,
        hidden_size=hidden,
        vocab_size=_int(cfg, "vocab_size"),
        layers=layers,
        tie_word_embeddings=bool(tie) if tie is not None else model_type in (*GEMMA_TYPES, "gemma", "lfm2"),
        norm_kind="layernorm" if norm_kind == "layernorm" else "rmsnorm",
        weight_dtype=wdtype,
        weight_dtype_source=wsource,
        attention_weight_dtype=attn_dtype,
        generic=generic,
        notes=tuple(notes),
        hf_id=hf_id,
    )
