"""Layer patterns of the state-space hybrid families: `config.json` -> one `LayerSpec` per layer.

Each reader follows the family's transformers config class and modeling code (5.x), keys and defaults
included, and refuses a value it does not understand by name:
- nemotron_h (Nemotron-H, Nemotron-3 Nano/Super/Ultra, Nemotron-3.5): `layers_block_type` (or the older
  `hybrid_override_pattern`, M/E/*/-): one mixer per block (Mamba-2, attention without rope, relu2 MLP, MoE
  with relu2 experts, optional latent MoE `moe_latent_size`), one RMSNorm per block.
- jamba: attention iff i % attn_layer_period == attn_layer_offset, else Mamba-1; MoE iff
  i % expert_layer_period == expert_layer_offset; no rope.
- falcon_h1: Mamba-2 and attention in parallel in every layer, then a SwiGLU MLP.
- granitemoehybrid (Granite-4.0-H): `layer_types` mamba / attention; MoE plus a SwiGLU shared MLP, or the
  shared MLP alone when num_local_experts == 0; rope only when position_embedding_type == "rope".
- lfm2: `layer_types` conv / full_attention (or `full_attn_idxs`); short conv; q/k RMSNorm; the SwiGLU width
  after `block_auto_adjust_ff_dim`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from model_compute_sim.errors import ConfigError, NotModelledError
from model_compute_sim.simulator.config_read import Config, _int, check_multiple
from model_compute_sim.simulator.spec import AttentionSpec, LayerSpec, MlpSpec, MoeSpec, SsmSpec

FAMILIES = ("nemotron_h", "jamba", "falcon_h1", "granitemoehybrid", "lfm2")

_MAMBA2_KEYS = frozenset(
    {
        "mamba_d_state",
        "mamba_d_conv",
        "mamba_expand",
        "mamba_n_heads",
        "mamba_d_head",
        "mamba_n_groups",
        "mamba_chunk_size",
        "mamba_d_ssm",
    }
)
# keys config_keys.UNMODELLED_KEYS names as unmodelled features that these readers do model
UNDERSTOOD_KEYS: dict[str, frozenset[str]] = {
    "nemotron_h": frozenset(
        {
            "hybrid_override_pattern",
            "layers_block_type",
            "layer_types",
            "mamba_num_heads",
            "mamba_head_dim",
            "mamba_n_groups",
            "mamba_d_conv",
            "mamba_chunk_size",
            "ssm_state_size",
            "conv_kernel",
            "time_step_rank",
            "moe_latent_size",
        }
    ),
    "jamba": frozenset(
        {
            "attn_layer_period",
            "attn_layer_offset",
            "expert_layer_period",
            "expert_layer_offset",
            "mamba_d_state",
            "mamba_d_conv",
            "mamba_expand",
            "mamba_dt_rank",
        }
    ),
    "falcon_h1": _MAMBA2_KEYS,
    "granitemoehybrid": _MAMBA2_KEYS | {"layer_types", "layers_block_type", "position_embedding_type"},
    "lfm2": frozenset({"conv_L_cache", "full_attn_idxs", "layer_types"}),
}

_NEMOTRON_CHARS = {"M": "mamba", "E": "moe", "*": "attention", "-": "mlp"}
# layers_block_type names: each block kind by its own name, and the layer_types spellings of two of them
_NEMOTRON_NAMES = {
    **{k: k for k in _NEMOTRON_CHARS.values()},
    "linear_attention": "mamba",
    "full_attention": "attention",
}
_STATE_DTYPES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16", "fp32": "fp32", "bf16": "bf16"}


def nemotron_block_types(cfg: Config) -> list[str]:
    """Block kinds from `layers_block_type` (preferred, as transformers) or `hybrid_override_pattern`."""
    types = cfg.get("layers_block_type")
    if types is None:
        types = cfg.get("layer_types")
    if isinstance(types, Sequence) and not isinstance(types, str):
        bad = sorted({str(t) for t in types if str(t) not in _NEMOTRON_NAMES})
        if bad:
            raise ConfigError(f"layers_block_type has unknown block types {bad}; valid: {sorted(_NEMOTRON_NAMES)}")
        return [_NEMOTRON_NAMES[str(t)] for t in types]
    pattern = cfg.get("hybrid_override_pattern")
    if isinstance(pattern, str) and pattern:
        bad = sorted({c for c in pattern if c not in _NEMOTRON_CHARS})
        if bad:
            raise ConfigError(f"hybrid_override_pattern has unknown characters {bad}; valid: M, E, *, -")
        return [_NEMOTRON_CHARS[c] for c in pattern]
    raise ConfigError("a nemotron_h config needs layers_block_type or hybrid_override_pattern (the layer pattern)")


def derived_keys(cfg: Config, model_type: str) -> dict[str, Any]:
    """Keys the config classes derive: a Nemotron-H pattern's length is its layer count (transformers ignores
    num_hidden_layers there) and its attention head size is head_dim, the older attention_head_dim, or the
    class default 128."""
    out = dict(cfg)
    if model_type == "nemotron_h":
        out["num_hidden_layers"] = len(nemotron_block_types(cfg))
        if out.get("head_dim") is None:
            out["head_dim"] = out.get("attention_head_dim") or 128
    return out


def notes(cfg: Config) -> list[str]:
    """The hybrid families' lines of the result's `assumptions` (each SSM kind adds its own conventions)."""
    out: list[str] = []
    if cfg.get("num_nextn_predict_layers"):
        out.append("multi-token-prediction layers (num_nextn_predict_layers) are not run: plain decoding")
    return out


def _state_dtype(cfg: Config, default: str = "bf16") -> str:
    """SSM state cache dtype: the config's mamba_ssm_cache_dtype, else `default`: vLLM's 'auto' is the model
    dtype, except for Nemotron-H, whose NemotronHForCausalLMConfig defaults it to float32
    (vllm/model_executor/models/config.py, DEFAULT_MAMBA_SSM_CACHE_DTYPE)."""
    v = cfg.get("mamba_ssm_cache_dtype")
    if v is None:
        return default
    if str(v) not in _STATE_DTYPES:
        raise ConfigError(f"mamba_ssm_cache_dtype {v!r} is not understood; valid: {sorted(_STATE_DTYPES)}")
    return _STATE_DTYPES[str(v)]


def _mamba2(cfg: Config, d_inner: int, heads: int, head_dim: int, gated_norm: bool, prefix: str) -> SsmSpec:
    if heads * head_dim != d_inner:
        raise ConfigError(f"Mamba-2 heads ({heads}) x head_dim ({head_dim}) != intermediate width {d_inner}")
    groups = _int(cfg, f"{prefix}n_groups", "mamba_n_groups", "n_groups", default=8 if prefix == "" else 1)
    check_multiple("Mamba-2 heads", heads, "n_groups", groups)
    return SsmSpec(
        kind="mamba2",
        d_inner=d_inner,
        heads=heads,
        head_dim=head_dim,
        state=_int(cfg, "ssm_state_size" if prefix == "" else "mamba_d_state", default=128 if prefix == "" else 256),
        groups=groups,
        conv_kernel=_int(cfg, "conv_kernel" if prefix == "" else "mamba_d_conv", "mamba_d_conv", default=4),
        chunk=_int(
            cfg,
            "chunk_size" if prefix == "" else "mamba_chunk_size",
            "mamba_chunk_size",
            default=128 if prefix == "" else 256,
        ),
        gated_norm=gated_norm,
        state_dtype=_state_dtype(cfg, "fp32" if prefix == "" else "bf16"),  # prefix "": Nemotron-H keys
        **_ssm_biases(cfg, prefix),
    )


def _ssm_biases(cfg: Config, prefix: str) -> dict[str, bool]:
    """conv1d / in_proj / out_proj biases (transformers 5.24: NemotronHMamba2Mixer use_conv_bias / use_bias;
    Jamba, Granite-4.0-H, Bamba mamba_conv_bias / mamba_proj_bias; FalconH1Mixer out_proj projectors_bias)."""
    conv = bool(cfg.get("use_conv_bias" if prefix == "" else "mamba_conv_bias", True))
    proj = bool(cfg.get("use_bias" if prefix == "" else "mamba_proj_bias", False))
    out = bool(cfg.get("projectors_bias", False)) if "projectors_bias" in cfg else proj
    return dict(conv_bias=conv, in_bias=proj, out_bias=out)


def _nemotron(cfg: Config, attn: AttentionSpec, n: int) -> list[LayerSpec]:
    types = nemotron_block_types(cfg)
    # transformers 5.24 NemotronHAttention and vLLM nemotron_h.py build q/k/v/o without bias whatever the config
    # says (FAMILY_BIASES), NVIDIA's remote-code modeling_nemotron_h.py with attention_bias; and under mlp_bias
    # transformers gives the MoE's shared expert biases that vLLM's NemotronHMLP (bias=False there) does not
    if cfg.get("attention_bias"):
        raise NotModelledError(
            "'attention_bias' on Nemotron-H: transformers 5.24 and vLLM build attention without biases, NVIDIA's "
            "remote modeling code with them, so which parameter count a served checkpoint has is ambiguous"
        )
    if cfg.get("mlp_bias") and "moe" in types:
        raise NotModelledError(
            "'mlp_bias' on a Nemotron-H MoE: transformers 5.24 gives the shared expert biases, vLLM does not, so "
            "which parameter count a served checkpoint has is ambiguous"
        )
    heads = _int(cfg, "mamba_num_heads", default=128)
    head_dim = _int(cfg, "mamba_head_dim", default=64)
    mamba = _mamba2(cfg, heads * head_dim, heads, head_dim, True, "")
    mlp = MlpSpec(
        intermediate=_int(cfg, "intermediate_size", default=21504), gated=False, bias=bool(cfg.get("mlp_bias"))
    )
    moe = None
    if "moe" in types:
        experts = _int(cfg, "n_routed_experts", "num_local_experts", default=8)
        top_k = _int(cfg, "num_experts_per_tok", default=2)
        if top_k > experts:
            raise ConfigError(f"num_experts_per_tok ({top_k}) exceeds n_routed_experts ({experts})")
        moe = MoeSpec(
            experts=experts,
            top_k=top_k,
            intermediate=_int(cfg, "moe_intermediate_size", default=7688),
            gated=False,
            # transformers builds one shared relu2 MLP of this width whatever n_shared_experts says
            shared_intermediate=_int(cfg, "moe_shared_expert_intermediate_size", default=7688, minimum=0),
            latent_size=_int(cfg, "moe_latent_size", default=0, minimum=0),
        )
    no_rope = replace(attn, rotary_dim=0)  # NemotronHAttention applies no positional embedding
    kinds = {
        "mamba": LayerSpec(attention=None, ssm=mamba, norms=1),
        "attention": LayerSpec(attention=no_rope, norms=1),
        "mlp": LayerSpec(attention=None, mlp=mlp, norms=1),
        "moe": LayerSpec(attention=None, moe=moe, norms=1),
    }
    if len(types) != n:
        raise ConfigError(f"the layer pattern has {len(types)} entries but {n} layers were expected")
    return [kinds[t] for t in types]


def _jamba(cfg: Config, attn: AttentionSpec, n: int) -> list[LayerSpec]:
    hidden = _int(cfg, "hidden_size")
    a_period = _int(cfg, "attn_layer_period", default=8)
    a_offset = _int(cfg, "attn_layer_offset", default=4, minimum=0)
    e_period = _int(cfg, "expert_layer_period", default=2)
    e_offset = _int(cfg, "expert_layer_offset", default=1, minimum=0)
    if a_offset >= a_period or e_offset >= e_period:
        raise ConfigError("attn_layer_offset / expert_layer_offset must be smaller than their period")
    dt_rank = cfg.get("mamba_dt_rank", "auto")
    rank = math.ceil(hidden / 16) if dt_rank in ("auto", None) else _int(cfg, "mamba_dt_rank")
    mamba = SsmSpec(
        kind="mamba1",
        d_inner=_int(cfg, "mamba_expand", default=2) * hidden,
        conv_kernel=_int(cfg, "mamba_d_conv", default=4),
        state=_int(cfg, "mamba_d_state", default=16),
        dt_rank=rank,
        bcdt_norms=True,
        state_dtype=_state_dtype(cfg),
        **_ssm_biases(cfg, "mamba_"),
    )
    inter = _int(cfg, "intermediate_size", default=14336)
    experts = _int(cfg, "num_experts", "num_local_experts", default=16)
    moe = MoeSpec(experts=experts, top_k=_int(cfg, "num_experts_per_tok", default=2), intermediate=inter)
    mlp = MlpSpec(intermediate=inter)
    no_rope = replace(attn, rotary_dim=0)  # Jamba attention has no positional encoding
    out = []
    for i in range(n):
        is_attn = i % a_period == a_offset
        is_moe = experts > 1 and i % e_period == e_offset
        out.append(
            LayerSpec(
                attention=no_rope if is_attn else None,
                ssm=None if is_attn else mamba,
                mlp=None if is_moe else mlp,
                moe=moe if is_moe else None,
            )
        )
    return out


def _mamba2_expand(cfg: Config, hidden: int, width_key: str | None) -> tuple[int, int, int]:
    """(d_inner, heads, head_dim) of Falcon-H1 / Granite-H: d_inner = mamba_d_ssm or mamba_expand*hidden,
    head_dim = mamba_d_head or d_inner / heads ("auto")."""
    d_inner = cfg.get(width_key) if width_key else None
    d = int(d_inner) if d_inner else _int(cfg, "mamba_expand", default=2) * hidden
    heads = _int(cfg, "mamba_n_heads", default=128)
    head = cfg.get("mamba_d_head", "auto")
    head_dim = d // heads if head in ("auto", None) else _int(cfg, "mamba_d_head")
    return d, heads, head_dim


def _falcon_h1(cfg: Config, attn: AttentionSpec, n: int) -> list[LayerSpec]:
    # biases transformers 5.24 builds under a flag that vLLM's falcon_h1.py does not read the same way: its
    # FalconH1MLP and attention qkv_proj / o_proj have none, and its MambaMixer2 gives out_proj the in_proj bias
    # flag (mamba_proj_bias) where FalconH1Mixer reads projectors_bias
    for key, what in (("mlp_bias", "FalconH1MLP gate/up/down"), ("attention_bias", "q/k/v/o_proj")):
        if cfg.get(key):
            raise NotModelledError(
                f"{key!r} on Falcon-H1: transformers 5.24 builds {what} biases, vLLM (and SGLang's MLP) none, so "
                "which parameter count a served checkpoint has is ambiguous"
            )
    if bool(cfg.get("projectors_bias", False)) != bool(cfg.get("mamba_proj_bias", False)):
        raise NotModelledError(
            "'projectors_bias' differs from mamba_proj_bias on Falcon-H1: transformers 5.24 gives the Mamba out_proj "
            "the projectors_bias flag, vLLM the mamba_proj_bias flag, so its bias count is ambiguous"
        )
    hidden = _int(cfg, "hidden_size")
    d, heads, head_dim = _mamba2_expand(cfg, hidden, "mamba_d_ssm")
    mamba = _mamba2(cfg, d, heads, head_dim, bool(cfg.get("mamba_rms_norm", False)), "mamba_")
    layer = LayerSpec(
        attention=attn, ssm=mamba, mlp=MlpSpec(intermediate=_int(cfg, "intermediate_size", default=14336))
    )
    return [layer] * n


def _granite(cfg: Config, attn: AttentionSpec, n: int) -> list[LayerSpec]:
    hidden = _int(cfg, "hidden_size")
    d, heads, head_dim = _mamba2_expand(cfg, hidden, None)
    mamba = _mamba2(cfg, d, heads, head_dim, True, "mamba_")
    types = cfg.get("layer_types") or cfg.get("layers_block_type") or ["mamba"] * n
    names = {"mamba": "mamba", "linear_attention": "mamba", "attention": "attention", "full_attention": "attention"}
    bad = sorted({str(t) for t in types if str(t) not in names})
    if bad or len(types) < n:
        raise ConfigError(f"layer_types must list {n} of {sorted(names)}; got unknown {bad} or too few")
    shared = _int(cfg, "shared_intermediate_size", default=1024)
    experts = _int(cfg, "num_local_experts", default=8, minimum=0)
    moe = mlp = None
    if experts:
        moe = MoeSpec(
            experts=experts,
            top_k=_int(cfg, "num_experts_per_tok", default=2),
            intermediate=_int(cfg, "intermediate_size", default=11008),
            shared_intermediate=shared,
        )
    else:
        mlp = MlpSpec(intermediate=shared)
    rope = attn if cfg.get("position_embedding_type") == "rope" else replace(attn, rotary_dim=0)
    return [
        LayerSpec(
            attention=rope if names[str(t)] == "attention" else None,
            ssm=mamba if names[str(t)] == "mamba" else None,
            mlp=mlp,
            moe=moe,
        )
        for t in types[:n]
    ]


def lfm2_ff_width(cfg: Config) -> int:
    """LFM2's SwiGLU width: int(2*I/3), times block_ffn_dim_multiplier, rounded up to block_multiple_of."""
    width = _int(cfg, "intermediate_size", "block_ff_dim", default=12288)
    if cfg.get("block_auto_adjust_ff_dim", True):
        width = int(2 * width / 3)
        mult = cfg.get("block_ffn_dim_multiplier", 1.0)
        if mult is not None:
            width = int(float(mult) * width)
            of = _int(cfg, "block_multiple_of", default=256)
            width = of * ((width + of - 1) // of)
    return width


def _lfm2(cfg: Config, attn: AttentionSpec, n: int) -> list[LayerSpec]:
    hidden = _int(cfg, "hidden_size")
    types = cfg.get("layer_types")
    if types is None:
        idxs = cfg.get("full_attn_idxs")
        full = set(range(n)) if idxs is None else {int(i) for i in idxs}
        types = ["full_attention" if i in full else "conv" for i in range(n)]
    bad = sorted({str(t) for t in types if str(t) not in ("conv", "full_attention")})
    if bad or len(types) < n:
        raise ConfigError(f"layer_types must list {n} of ['conv', 'full_attention']; got unknown {bad} or too few")
    bias = bool(cfg.get("conv_bias", False))  # Lfm2ShortConv: conv, in_proj and out_proj
    conv = SsmSpec(
        kind="short_conv",
        d_inner=hidden,
        conv_kernel=_int(cfg, "conv_L_cache", default=3),
        conv_bias=bias,
        in_bias=bias,
        out_bias=bias,
    )
    mlp = MlpSpec(intermediate=lfm2_ff_width(cfg))
    qk = replace(attn, qk_norm=True)
    return [
        LayerSpec(attention=qk if t == "full_attention" else None, ssm=None if t == "full_attention" else conv, mlp=mlp)
        for t in types[:n]
    ]


def hybrid_layers(cfg: Config, model_type: str, attn: AttentionSpec, n: int) -> list[LayerSpec]:
    """Layers of a hybrid family; `attn` is the family's attention layer as the generic reader built it."""
    reader = {
        "nemotron_h": _nemotron,
        "jamba": _jamba,
        "falcon_h1": _falcon_h1,
        "granitemoehybrid": _granite,
        "lfm2": _lfm2,
    }[model_type]
    return reader(cfg, attn, n)
